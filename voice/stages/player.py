"""Paced playback: one 20 ms frame every 20 ms, stopped at once when the caller barges in."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable

from voice.frames import FRAME_BYTES, FRAME_MS, AudioOut, Dtmf, EndCall, Frame, Hangup, PlaybackFinished, SpeechStarted
from voice.pipeline import Stage
from voice.transports.base import CallSink


class Player(Stage):
    """Sends bot audio to the transport at real-time pace; barge-in clears it."""

    def __init__(self, sink: CallSink, feedback: Callable[[Frame], None]) -> None:
        self.sink = sink
        self.feedback = feedback
        self.chunks: deque[AudioOut] = deque()
        self.offset = 0
        self.task: asyncio.Task[None] | None = None
        self.pending_end: EndCall | None = None
        self.ending = False
        self.frames_sent = 0
        self.late_frames = 0
        self.interruptions = 0

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        """Queue audio, cut it on caller speech or keys, end the call once the audio has played."""
        if isinstance(frame, AudioOut):
            if not self.ending:
                self.chunks.append(frame)
                self._ensure_running()
        elif isinstance(frame, (SpeechStarted, Dtmf)) and self.chunks:
            uid = self.chunks[0].utterance_id
            self.chunks.clear()
            self.offset = 0
            self.interruptions += 1
            await self.sink.clear()
            self.feedback(PlaybackFinished(utterance_id=uid, at=frame.at, interrupted=True))
        elif isinstance(frame, EndCall):
            self.pending_end = frame
            self.ending = True
            self._ensure_running()
        elif isinstance(frame, Hangup) and self.task is not None:
            self.task.cancel()
        yield frame

    def _ensure_running(self) -> None:
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._pace())

    async def _pace(self) -> None:
        loop = asyncio.get_running_loop()
        step = FRAME_MS / 1000
        next_at = loop.time()
        while self.chunks:
            chunk = self.chunks[0]
            piece = chunk.pcm[self.offset : self.offset + FRAME_BYTES]
            self.offset += FRAME_BYTES
            if len(piece) < FRAME_BYTES:
                piece += b"\x00" * (FRAME_BYTES - len(piece))
            await self.sink.send_audio(piece)
            self.frames_sent += 1
            if self.offset >= len(chunk.pcm) and self.chunks and self.chunks[0] is chunk:
                self.chunks.popleft()
                self.offset = 0
                if chunk.last:
                    self.feedback(PlaybackFinished(utterance_id=chunk.utterance_id, at=loop.time()))
            next_at += step
            delay = next_at - loop.time()
            if delay < -step:  # the loop was too busy: count it and resynchronise
                self.late_frames += 1
                next_at = loop.time()
            await asyncio.sleep(max(0.0, delay))
        if self.pending_end is not None:
            end, self.pending_end = self.pending_end, None
            await self.sink.end(end.action, end.queue)
