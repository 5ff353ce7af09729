"""A new conversation session (Rasa starts one after an hour of silence, or when the client asks).

Nothing personal carries over: the previous session's card verification is revoked and its
identity answers are dropped. Only the knowledge entry last answered is kept.
"""
from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.card_service import end_verification

CARRY_OVER = ("kb_last_entry",)


class ActionSessionStart(Action):
    """Start the session, revoke what belonged to the previous one."""

    def name(self) -> str:
        """Rasa's session-start action, replaced."""
        return "action_session_start"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[EventType]:
        """SessionStarted, the revocation, the slots that carry over, then listen."""
        events: list[EventType] = [SessionStarted()]
        events += await end_verification(tracker.sender_id)
        events += [SlotSet(k, tracker.get_slot(k)) for k in CARRY_OVER if tracker.get_slot(k) is not None]
        events.append(ActionExecuted("action_listen"))
        return events
