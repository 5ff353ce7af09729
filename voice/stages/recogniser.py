"""Streaming recognition of each utterance, with the blocking recogniser off the event loop."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor

from cardsys.idnumber import is_valid_id
from voice import prompts
from voice.engines.recognition import CallRecognizer, RecognizerFactory
from voice.frames import (
    AnswerComplete,
    AudioIn,
    Expectation,
    Frame,
    ListenFor,
    Transcript,
    UtteranceDiscarded,
    UtteranceEnded,
    UtteranceStarted,
)
from voice.numbers import extract_number
from voice.pipeline import Stage

PREROLL_FRAMES = 15  # 300 ms of audio before the first voiced frame: soft word onsets
FEED_BYTES = 3200  # feed the recogniser every 200 ms of speech
HANGOVER_BYTES = 3200  # 200 ms of the trailing silence still belongs to the last word


def answers_completely(expect: Expectation, text: str) -> bool:
    """True when the words so far are already a whole answer to the prompt (nothing more needs to be waited for).

    A valid 18-character ID number, an 11-digit mobile number, or a bare 是/不是 to a confirmation. Open
    questions, menus, card numbers and SMS codes are never complete early: their long silence stays.
    """
    if expect == "id_number":
        number = extract_number(text, min_digits=15)
        return bool(number) and len(number) == 18 and is_valid_id(number)
    if expect == "phone_number":
        number = extract_number(text, min_digits=11)
        return bool(number) and len(number) == 11 and number.startswith("1")
    if expect == "yes_no":
        return "".join(text.split()) in (*prompts.YES_WORDS, *prompts.NO_WORDS, "是的", "对的", "不是的", "不对的")
    return False


class Recogniser(Stage):
    """Turns the audio of each utterance into a final Transcript (and partial ones on the way).

    With ``push`` (the pipeline's head), a partial result that already answers the prompt completely sends
    AnswerComplete, so the endpointer need not wait out the long silence of a number prompt.
    """

    def __init__(self, factory: RecognizerFactory, executor: Executor | None = None,
                 push: Callable[[AnswerComplete], None] | None = None) -> None:
        self.factory = factory
        self.executor = executor
        self.push = push
        self.expect: Expectation = "free"
        self.told_complete = False
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
            self.expect = frame.expect
            if frame.grammar != self.grammar or self.recognizer is None:
                self.grammar = frame.grammar
                self.recognizer = await self._blocking(self.factory.create, self.grammar)
        elif isinstance(frame, UtteranceStarted):
            if self.recognizer is None:
                self.recognizer = await self._blocking(self.factory.create, self.grammar)
            self.active = True
            self.told_complete = False
            self.last_partial = ""
            self.pending = bytearray(b"".join(self.preroll))
            self.tail.clear()
        elif isinstance(frame, AudioIn):
            if not self.active:
                self.preroll.append(frame.pcm)
            elif not frame.voiced:
                # The end-of-utterance silence is not decoded: it costs CPU, and models without
                # a garbage word (no [unk]) turn long silence into a grammar word.
                first_silence = not self.tail
                self.tail += frame.pcm
                if first_silence and self.pending and self._may_complete():
                    # a pause: decode the last words now, they may complete the answer
                    partial = await self._partial(frame.at)
                    if partial is not None:
                        yield frame
                        yield partial
                        return
            else:
                self.pending += self.tail + frame.pcm
                self.tail.clear()
                if len(self.pending) >= FEED_BYTES and self.recognizer is not None:
                    partial = await self._partial(frame.at)
                    if partial is not None:
                        yield frame
                        yield partial
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

    def _may_complete(self) -> bool:
        return (self.push is not None and not self.told_complete and self.recognizer is not None
                and self.expect in ("id_number", "phone_number", "yes_no"))

    async def _partial(self, at: float) -> Transcript | None:
        """Feed the pending audio; a new partial transcript, or None when the words did not change."""
        assert self.recognizer is not None
        partial = await self._blocking(self._feed, self.recognizer, bytes(self.pending))
        self.pending.clear()
        if not partial or partial == self.last_partial:
            return None
        self.last_partial = partial
        if self._may_complete() and answers_completely(self.expect, partial):
            self.told_complete = True
            self.push(AnswerComplete(at=at))  # type: ignore[misc]
        return Transcript(text=partial, confidence=0.0, final=False, at=at)

    def _feed(self, recognizer: CallRecognizer, pcm: bytes) -> str:
        self.cpu_audio_ms += len(pcm) // 16
        recognizer.accept(pcm)
        return recognizer.partial()

    def _finish(self, recognizer: CallRecognizer, pcm: bytes) -> tuple[str, float]:
        if pcm:
            self.cpu_audio_ms += len(pcm) // 16
            recognizer.accept(pcm)
        return recognizer.finish()
