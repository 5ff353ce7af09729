"""Voice activity and end-of-utterance detection on 8 kHz phone audio."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

from voice.audio import level_dbfs
from voice.frames import (
    AnswerComplete,
    AudioIn,
    Frame,
    ListenFor,
    SpeechStarted,
    Tick,
    UtteranceDiscarded,
    UtteranceEnded,
    UtteranceStarted,
)
from voice.pipeline import Stage
from voice.settings import ListenTimings

_BYTES_PER_MS = 16  # 8 kHz × 2 bytes


class Endpointer(Stage):
    """Marks utterance start, confirmed speech (barge-in guard) and end after trailing silence."""

    def __init__(self, timings: ListenTimings) -> None:
        self.timings = timings
        self.eou_silence_ms = timings.eou_silence_ms
        self.active = False
        self.confirmed = False
        self.voiced_ms = 0
        self.silence_ms = 0
        self.length_ms = 0
        self.last_voice_at = 0.0
        self.last_audio_at = 0.0
        self.complete = False  # the recogniser says the words so far already answer the prompt

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        """Pass audio through, adding utterance boundary frames around it."""
        if isinstance(frame, ListenFor):
            self.eou_silence_ms = frame.eou_silence_ms
            yield frame
            return
        if isinstance(frame, AnswerComplete):
            if self.active and self.confirmed:
                self.complete = True
            yield frame
            return
        if isinstance(frame, Tick):
            yield frame
            # Asterisk sends nothing while the caller is silent: the clock ends the utterance.
            if self.active and (frame.now - self.last_audio_at) * 1000 >= self._silence_limit():
                yield self._end(frame.now)
            return
        if not isinstance(frame, AudioIn):
            yield frame
            return

        ms = len(frame.pcm) // _BYTES_PER_MS
        voiced = level_dbfs(frame.pcm) > self.timings.speech_threshold_dbfs
        frame = replace(frame, voiced=voiced)
        self.last_audio_at = frame.at
        if not self.active:
            if not voiced:
                yield frame
                return
            self.active, self.confirmed, self.complete = True, False, False
            self.voiced_ms = self.silence_ms = self.length_ms = 0
            yield UtteranceStarted(at=frame.at)
        yield frame

        self.length_ms += ms
        if voiced:
            self.voiced_ms += ms
            self.silence_ms = 0
            self.last_voice_at = frame.at
            if not self.confirmed and self.voiced_ms >= self.timings.min_speech_ms:
                self.confirmed = True
                yield SpeechStarted(at=frame.at)
        else:
            self.silence_ms += ms
        if self.silence_ms >= self._silence_limit() or self.length_ms >= self.timings.max_utterance_ms:
            yield self._end(frame.at)

    def _silence_limit(self) -> int:
        """Trailing silence that ends the utterance."""
        if not self.confirmed:  # an unconfirmed burst (a click, a cough) is dropped sooner than real speech ends
            return min(self.eou_silence_ms, 300)
        if self.complete:  # a full ID number, 是/不是: no need to wait out the long pause
            return min(self.eou_silence_ms, self.timings.eou_silence_complete_ms)
        return self.eou_silence_ms

    def _end(self, at: float) -> Frame:
        self.active = self.complete = False
        if self.confirmed:
            return UtteranceEnded(at=at, speech_ms=self.voiced_ms, last_voice_at=self.last_voice_at)
        return UtteranceDiscarded(at=at)
