"""Keypad (DTMF) input: numbers ended by #, * as X, menu keys, and 0 for a person."""

from __future__ import annotations

from collections.abc import AsyncIterator

from voice.frames import DTMF_DIGITS, NUMBER_EXPECTATIONS, Dtmf, Frame, HumanRequested, KeypadEntry, ListenFor, Tick
from voice.pipeline import Stage

MAX_DIGITS = 32  # longer than any number asked for (an ID number has 18): a full buffer is submitted as it is


class KeypadCollector(Stage):
    """Collects key presses into KeypadEntry frames, or a HumanRequested frame for 0."""

    def __init__(self, timeout_ms: int, max_digits: int = MAX_DIGITS) -> None:
        self.timeout_s = timeout_ms / 1000
        self.max_digits = max_digits
        self.expect = "free"
        self.buffer = ""
        self.last_key_at = 0.0

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        """Turn Dtmf frames into entries; Dtmf still passes on so playback can stop."""
        if isinstance(frame, ListenFor):
            self.expect = frame.expect
            self.buffer = ""
            yield frame
            return
        if isinstance(frame, Tick):
            yield frame
            # A caller who forgets # is not left waiting: submit after a quiet spell.
            if self.buffer and frame.now - self.last_key_at >= self.timeout_s:
                digits, self.buffer = self.buffer, ""
                yield KeypadEntry(digits=digits, at=frame.now)
            return
        if not isinstance(frame, Dtmf):
            yield frame
            return
        if frame.digit not in DTMF_DIGITS:  # transports check too; a key no phone has is no input at all
            return

        yield frame
        key = frame.digit
        self.last_key_at = frame.at
        collecting = self.expect in NUMBER_EXPECTATIONS
        # 0 reaches a person, unless it is part of a number being typed. ID numbers never
        # start with 0, so a leading 0 still means "a person" there; phone numbers may.
        if key == "0" and (not collecting or (self.expect == "id_number" and not self.buffer)):
            self.buffer = ""
            yield HumanRequested(at=frame.at)
        elif not collecting:
            # a keypad menu takes every key (* goes back); elsewhere only digits choose
            if key.isdigit() or self.expect == "menu":
                yield KeypadEntry(digits=key, at=frame.at)
        elif key == "#":
            if self.buffer:
                digits, self.buffer = self.buffer, ""
                yield KeypadEntry(digits=digits, at=frame.at)
        else:
            self.buffer += "X" if key == "*" else key
            if len(self.buffer) >= self.max_digits:  # a held key or a flood: the bot answers what it got
                digits, self.buffer = self.buffer, ""
                yield KeypadEntry(digits=digits, at=frame.at)
