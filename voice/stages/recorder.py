"""Keeps the call record (transcript, slots, outcome) and saves it when the call ends."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

from voice.engines.desk import TranscriptLine
from voice.frames import NUMBER_EXPECTATIONS, BotReply, CallerTurn, CallStarted, EndCall, Frame, Hangup, ListenFor
from voice.pipeline import Stage
from voice.speech_text import reply_text
from voice.store import CallRecord, CallStore

log = logging.getLogger(__name__)


class Recorder(Stage):
    """Writes what was said into the shared CallRecord and saves it on hang-up, whatever happened."""

    def __init__(self, record: CallRecord, store: CallStore) -> None:
        self.record = record
        self.store = store
        self.expect = "free"

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        """Record conversation frames; pass everything on."""
        record = self.record
        if isinstance(frame, CallStarted):
            record.call_id, record.transport, record.caller = frame.call_id, frame.transport, frame.caller
            record.started_at = time.time()
            self.store.started(record)  # an event for the analytics: queued, never waited for
        elif isinstance(frame, ListenFor):
            self.expect = frame.expect
        elif isinstance(frame, CallerTurn):
            record.transcript.append(TranscriptLine("caller", frame.text, time.time()))
            if record.outcome == "in_progress":
                record.outcome = "answered_by_bot"
            if self.expect in NUMBER_EXPECTATIONS:
                record.slots[self.expect] = frame.text
        elif isinstance(frame, BotReply):
            text = "".join(reply_text(m) for m in frame.messages)
            record.transcript.append(TranscriptLine("bot", text, time.time()))
            for message in frame.messages:
                handoff = (message.get("custom") or {}).get("handoff")
                if isinstance(handoff, dict) and isinstance(handoff.get("slots"), dict):
                    record.slots.update(handoff["slots"])
        elif isinstance(frame, EndCall):
            record.outcome = "transferred" if frame.action == "transfer" else "completed"
            record.reason = frame.reason
        elif isinstance(frame, Hangup):
            if record.outcome == "in_progress":
                record.outcome = "caller_hangup"
            record.ended_at = time.time()
            try:
                await asyncio.to_thread(self.store.save, record)
            except Exception:  # never lose the call silently: the log has it
                log.exception("call %s: could not save the call record", record.call_id)
            self.store.ended(record)  # published even when saving failed: the event has what the figures need
        yield frame
