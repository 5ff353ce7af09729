"""Spoken Chinese digits (幺/两/洞/叉…) in final transcripts become written digits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

from voice.frames import NUMBER_EXPECTATIONS, Frame, ListenFor, Transcript
from voice.numbers import extract_number, normalise_spoken_digits
from voice.pipeline import Stage


class NumberNormaliser(Stage):
    """Rewrites digit runs; when a number was asked for, keeps only the number."""

    def __init__(self) -> None:
        self.expect = "free"

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        """Normalise final transcripts; pass everything else through."""
        if isinstance(frame, ListenFor):
            self.expect = frame.expect
        elif isinstance(frame, Transcript) and frame.final and frame.text:
            number = extract_number(frame.text) if self.expect in NUMBER_EXPECTATIONS else None
            text = number or normalise_spoken_digits(frame.text)
            frame = replace(frame, text=text.replace(" ", "") if number or _is_cjk(text) else text)
        yield frame


def _is_cjk(text: str) -> bool:
    """Vosk separates Chinese words with spaces; Rasa's tokenizer wants them joined."""
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)
