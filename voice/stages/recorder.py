"""Keeps the call record (transcript, slots, outcome): saved when the call starts, after every bot reply, and when
it ends, so a gateway that dies mid-call leaves what was said (voice/store.py closes it at the next start)."""

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
            await self._save("started")
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
            await self._save("turn")
        elif isinstance(frame, EndCall):
            record.outcome = "transferred" if frame.action == "transfer" else "completed"
            record.reason = frame.reason
        elif isinstance(frame, Hangup):
            if record.outcome == "in_progress":
                record.outcome = "caller_hangup"
            record.ended_at = time.time()
            await self._save("ended")
            self.store.ended(record)  # published even when saving failed: the event has what the figures need
        yield frame

    async def _save(self, when: str) -> None:
        try:
            await asyncio.to_thread(self.store.save, self.record)
        except Exception:  # never lose the call silently: the log has it
            log.exception("call %s: could not save the call record (%s)", self.record.call_id, when)
