"""Shows the call's lines to the caller's side while the call runs (our web softphone only; masked)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from common.privacy import mask_text
from voice.frames import BotReply, CallerTurn, Frame
from voice.pipeline import Stage
from voice.speech_text import reply_text
from voice.store import CallRecord
from voice.transports.base import CallSink, TranscriptSink


class TranscriptFeed(Stage):
    """Caller turns (masked as the call store masks them) and bot replies → the sink's transcript events.

    Sinks that cannot show text (AudioSocket) or streams that did not ask for it (every PBX) get nothing.
    """

    def __init__(self, sink: CallSink, record: CallRecord) -> None:
        self.sink = sink if isinstance(sink, TranscriptSink) else None
        self.record = record

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        """Send the line; pass every frame on."""
        if self.sink is not None and isinstance(frame, CallerTurn):
            name = self.record.slots.get("person_name")
            names = (str(name),) if name and "*" not in str(name) else ()
            await self.sink.send_transcript("caller", mask_text(frame.text, names))
        elif self.sink is not None and isinstance(frame, BotReply):
            # the bot's answers are shown as the chat page shows them: they carry hotlines and office numbers
            text = "".join(reply_text(m) for m in frame.messages).strip()
            if text:
                await self.sink.send_transcript("bot", text)
        yield frame
