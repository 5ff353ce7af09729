"""Streaming recognition of each utterance, with the blocking recogniser off the event loop."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import Executor

from voice.engines.recognition import CallRecognizer, RecognizerFactory
from voice.frames import (
    AudioIn,
    Frame,
    ListenFor,
    Transcript,
    UtteranceDiscarded,
    UtteranceEnded,
    UtteranceStarted,
)
from voice.pipeline import Stage

PREROLL_FRAMES = 15  # 300 ms of audio before the first voiced frame: soft word onsets
FEED_BYTES = 3200  # feed the recogniser every 200 ms of speech
HANGOVER_BYTES = 3200  # 200 ms of the trailing silence still belongs to the last word


class Recogniser(Stage):
    """Turns the audio of each utterance into a final Transcript (and partial ones on the way)."""

    def __init__(self, factory: RecognizerFactory, executor: Executor | None = None) -> None:
        self.factory = factory
        self.executor = executor
        self.grammar: tuple[str, ...] = ()
        self.recognizer: CallRecognizer | None = None
        self.preroll: deque[bytes] = deque(maxlen=PREROLL_FRAMES)
        self.pending = bytearray()
        self.tail = bytearray()  # unvoiced audio since the last voiced frame, held back
        self.active = False
        self.last_partial = ""
        self.cpu_audio_ms = 0  # audio fed, for the benchmark's cost per audio second

    async def _blocking(self, fn, *args):  # type: ignore[no-untyped-def]
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        """Feed utterance audio to the recogniser and emit transcripts."""
        if isinstance(frame, ListenFor):
            if frame.grammar != self.grammar or self.recognizer is None:
                self.grammar = frame.grammar
                self.recognizer = await self._blocking(self.factory.create, self.grammar)
        elif isinstance(frame, UtteranceStarted):
            if self.recognizer is None:
                self.recognizer = await self._blocking(self.factory.create, self.grammar)
            self.active = True
            self.last_partial = ""
            self.pending = bytearray(b"".join(self.preroll))
            self.tail.clear()
        elif isinstance(frame, AudioIn):
            if not self.active:
                self.preroll.append(frame.pcm)
            elif not frame.voiced:
                # The end-of-utterance silence is not decoded: it costs CPU, and models without
                # a garbage word (no [unk]) turn long silence into a grammar word.
                self.tail += frame.pcm
            else:
                self.pending += self.tail + frame.pcm
                self.tail.clear()
                if len(self.pending) >= FEED_BYTES and self.recognizer is not None:
                    partial = await self._blocking(self._feed, self.recognizer, bytes(self.pending))
                    self.pending.clear()
                    if partial and partial != self.last_partial:
                        self.last_partial = partial
                        yield frame
                        yield Transcript(text=partial, confidence=0.0, final=False, at=frame.at)
                        return
        elif isinstance(frame, UtteranceEnded) and self.active and self.recognizer is not None:
            self.active = False
            self.preroll.clear()
            final_audio = bytes(self.pending + self.tail[:HANGOVER_BYTES])
            self.pending.clear()
            self.tail.clear()
            text, confidence = await self._blocking(self._finish, self.recognizer, final_audio)
            yield frame
            yield Transcript(text=text, confidence=confidence, final=True, at=frame.at)
            return
        elif isinstance(frame, UtteranceDiscarded) and self.active:
            self.active = False
            self.pending.clear()
            self.tail.clear()
            if self.recognizer is not None:
                await self._blocking(self.recognizer.reset)
        yield frame

    def _feed(self, recognizer: CallRecognizer, pcm: bytes) -> str:
        self.cpu_audio_ms += len(pcm) // 16
        recognizer.accept(pcm)
        return recognizer.partial()

    def _finish(self, recognizer: CallRecognizer, pcm: bytes) -> tuple[str, float]:
        if pcm:
            self.cpu_audio_ms += len(pcm) // 16
            recognizer.accept(pcm)
        return recognizer.finish()
