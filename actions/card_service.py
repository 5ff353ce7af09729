"""Social-security card self-service: loss reports and card progress.

Until identity verification and the card-system adapter exist, these goals are answered from
the knowledge base with the entry that explains how to do it.
"""
from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.kb_service import kb_service
from actions.knowledge import ActionAnswerFromKb, utter_entry


class _KbGuided:
    """Mixin: answer the citizen's words from the knowledge base, falling back to a canonical question.

    Not an Action itself: rasa-sdk registers every Action subclass, and this one has no name.
    """

    canonical_question = ""

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[EventType]:
        """Answer confidently from the citizen's words, else with the goal's canonical entry."""
        kb = kb_service.get()
        if kb is None:
            return await ActionAnswerFromKb().run(dispatcher, tracker, domain)
        decision = kb.decide(tracker.latest_message.get("text") or "")
        if decision.band != "confident":
            decision = kb.decide(self.canonical_question)
        if not decision.hits:
            return await ActionAnswerFromKb().run(dispatcher, tracker, domain)
        top = decision.hits[0]
        utter_entry(dispatcher, top.entry, decision.confidence, "goal")
        return [SlotSet("kb_last_entry", top.entry.id), SlotSet("failed_turns", 0.0)]


class ActionCardLossEntry(_KbGuided, Action):
    """The citizen's own card is lost: explain how to report the loss."""

    canonical_question = "社保卡丢了怎么挂失"

    def name(self) -> str:
        """Action name in domain.yml."""
        return "action_card_loss_entry"


class ActionCardProgressEntry(_KbGuided, Action):
    """The citizen asks how far their card has got: explain how to check the progress."""

    canonical_question = "怎么查询社保卡制卡进度"

    def name(self) -> str:
        """Action name in domain.yml."""
        return "action_card_progress_entry"
