"""Rasa's SQL event broker, masking personal data before an event is written (loaded by the Rasa server).

Rasa streams the tracker's in-memory events to the broker, and those still hold what the citizen typed
(ID numbers, phone numbers, names): `bot.tracker_store.MaskingSQLTrackerStore` masks only the copy it
stores. This broker applies the same `mask_event` to what it publishes, so the events database holds
masked text only, like the tracker store. Table `events(id, sender_id, data)` as Rasa's `SQLEventBroker`.
"""
from __future__ import annotations

import json
from typing import Any

from rasa.core.brokers.sql import SQLEventBroker
from rasa.shared.core.events import Event

from bot.tracker_store import mask_event


def mask_published(event: dict[str, Any]) -> dict[str, Any]:
    """The published event dict with personal data masked (unchanged when nothing personal is in it)."""
    parsed = Event.from_parameters(event)
    if parsed is None:
        return event
    masked = mask_event(parsed)
    if masked is parsed:
        return event
    return {"sender_id": event.get("sender_id"), **masked.as_dict()}


class MaskingSQLEventBroker(SQLEventBroker):
    """SQLEventBroker (SQLite by default, PostgreSQL by URL) that publishes masked events only."""

    def publish(self, event: dict[str, Any]) -> None:
        """Mask, then write the event as one row of `events`."""
        super().publish(mask_published(event))

    def publish_many(self, events: list[dict[str, Any]]) -> None:
        """Mask, then write a turn's events in one transaction (in order; all or none), not one commit each."""
        if not events:
            return
        with self.session_scope() as session:
            for event in events:
                masked = mask_published(event)
                session.add(self.SQLBrokerEvent(sender_id=masked.get("sender_id"), data=json.dumps(masked)))
            session.commit()
