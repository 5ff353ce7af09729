"""Speakable text becomes 8 kHz audio, sentence by sentence so playback starts early."""

from __future__ import annotations

from collections.abc import AsyncIterator

from voice.engines.synthesis import SpeechCache
from voice.frames import AudioOut, Frame, SpeakText
from voice.pipeline import Stage
from voice.speech_text import split_sentences


class Synthesiser(Stage):
    """SpeakText → AudioOut chunks (one per sentence, the last one flagged)."""

    def __init__(self, speech: SpeechCache) -> None:
        self.speech = speech

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        """Synthesise each sentence in turn; the player starts on the first one."""
        if not isinstance(frame, SpeakText):
            yield frame
            return
        sentences = split_sentences(frame.text)
        for index, sentence in enumerate(sentences):
            pcm = await self.speech.speak(sentence)
            yield AudioOut(pcm=pcm, utterance_id=frame.utterance_id, last=index == len(sentences) - 1)
