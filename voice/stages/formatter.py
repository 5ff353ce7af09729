"""Bot replies become one speakable text per reply."""

from __future__ import annotations

from collections.abc import AsyncIterator

from voice.frames import BotReply, Frame, SpeakText
from voice.pipeline import Stage
from voice.speech_text import reply_text


class SpeechFormatter(Stage):
    """BotReply → SpeakText: voice answers preferred, buttons as spoken options, no URLs."""

    def __init__(self) -> None:
        self.utterance_id = 0

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        """Replace each BotReply by the text to speak (the reply itself stops here)."""
        if not isinstance(frame, BotReply):
            yield frame
            return
        text = "".join(reply_text(message) for message in frame.messages)
        if text:
            self.utterance_id += 1
            yield SpeakText(text=text, utterance_id=self.utterance_id)
