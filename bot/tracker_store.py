"""A SQL tracker store that never writes citizens' personal data to the database.

User messages, their parse data and metadata and every slot value are masked (ID numbers, phone
numbers, card numbers, names; personal slots by their kind, other slots as free text, since a slot
filled from text holds whatever the citizen typed) in the copy that is stored; the running conversation keeps the
values it needs in memory for the current turn only. Raw values needed across turns live in the
action server's short-lived verification state, never in the tracker.
"""
import copy
import itertools
from collections.abc import Iterator
from typing import Any

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import BotUttered, Event, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot import action_guard
from common.privacy import install_masking, mask_json, mask_text, mask_value

install_masking()  # Rasa loads this module at start (endpoints.yml): its own log lines are masked from then on
action_guard.install()  # and custom actions time out as suits a live chat, a failed one ends the turn

PERSONAL = ("id_number", "phone", "person_name", "card_number", "phone_last4", "otp_code")


def _mask_parse(parse: dict[str, Any], names: tuple) -> dict[str, Any]:
    parse = copy.deepcopy(parse or {})
    for key, value in parse.items():
        if key != "entities":  # text, metadata, response selector…: free text
            parse[key] = mask_json(value, names)
    for ent in parse.get("entities") or []:
        if ent.get("entity") in PERSONAL and ent.get("value") is not None:
            ent["value"] = mask_value(ent["entity"], str(ent["value"]))
        elif isinstance(ent.get("value"), (str, list, dict)):
            ent["value"] = mask_json(ent["value"], names)
    return parse


def _mask_slot(key: str, value: Any) -> Any:
    """A slot value as stored: personal slots by their kind, any other text as free text."""
    if value is None:
        return value
    if key in PERSONAL:
        return mask_value(key, str(value))
    return mask_json(value)


def mask_event(event: Event) -> Event:
    """A copy of the event with personal data masked (other events are returned unchanged)."""
    if isinstance(event, UserUttered):
        names = tuple(str(e.get("value")) for e in event.entities or [] if e.get("entity") == "person_name")
        return UserUttered(text=mask_text(event.text or "", names) if event.text else event.text,
                           intent=event.intent, entities=_mask_parse({"entities": event.entities}, names)["entities"],
                           parse_data=_mask_parse(event.parse_data, names), timestamp=event.timestamp,
                           input_channel=event.input_channel, message_id=event.message_id,
                           metadata=mask_json(event.metadata, names) if event.metadata else event.metadata)
    # every slot: a from_text slot (person_name, loss_code…) holds whatever the citizen typed
    if isinstance(event, SlotSet) and event.value is not None:
        return SlotSet(event.key, _mask_slot(event.key, event.value), timestamp=event.timestamp, metadata=event.metadata)
    if isinstance(event, BotUttered) and event.text:
        return BotUttered(text=mask_text(event.text), data=event.data, metadata=event.metadata, timestamp=event.timestamp)
    return event


class MaskingSQLTrackerStore(SQLTrackerStore):
    """SQLTrackerStore (SQLite by default, PostgreSQL by URL) that stores masked events only."""

    def __init__(self, domain=None, host: str | None = None, **kwargs: Any) -> None:
        if not host or "://" not in host:
            raise ValueError("TRACKER_STORE_URL must be a database URL such as sqlite:///var/rasa_tracker.db")
        super().__init__(domain=domain, host=host, **kwargs)
        # a pooled connection the database dropped (PostgreSQL restarted, a failover, an idle timeout) is noticed
        # and replaced before use, instead of failing the citizen's turn, whose tracker Rasa would then replace
        # with an empty in-memory one (slots, a form in progress and a verified identity lost: scripts/faults.py
        # --postgres saw it after every database restart). Rasa 3.6 builds the engine itself without the option.
        self.engine.pool._pre_ping = True

    def _additional_events(self, session: Any, tracker: DialogueStateTracker) -> Iterator:
        """The new events of the tracker, masked."""
        return (mask_event(e) for e in super()._additional_events(session, tracker))

    async def stream_events(self, tracker: DialogueStateTracker) -> None:
        """Publish the events of the turn that are not stored yet (called by `save`, before they are stored).

        Rasa 3.6 finds them by loading the whole conversation session from the database again and replaying
        it into a second tracker, only to take its length: a fifth of the Rasa server's time per message
        (profiled, docs/bench_stack.md). The stored events are counted instead (the same query `save` uses),
        which gives the same events: Rasa's diff is `tracker.events[len(stored session):]`.
        """
        if self.event_broker is None:
            return
        with self.session_scope() as session:
            stored = self._event_query(session, tracker.sender_id, fetch_events_from_all_sessions=False).count()
        new_events = list(itertools.islice(tracker.events, stored, len(tracker.events)))
        await self._stream_new_events(self.event_broker, new_events, tracker.sender_id)

    async def _stream_new_events(self, event_broker: Any, new_events: list[Event], sender_id: str) -> None:
        """Publish the new events masked, whatever the broker (`type: SQL`, `type: pika`, Kafka…).

        Rasa streams the tracker's in-memory events, which still hold what the citizen typed; masking here
        (rather than in one broker class) keeps raw ID and phone numbers out of every broker's store.
        """
        masked = [mask_event(e) for e in new_events]
        publish_many = getattr(event_broker, "publish_many", None)
        if publish_many is not None:  # analytics.rasa_broker: one transaction for the turn, not one per event
            publish_many([{"sender_id": sender_id, **e.as_dict()} for e in masked])
            return
        await super()._stream_new_events(event_broker, masked, sender_id)
