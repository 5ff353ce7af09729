"""The phone conversation: greeting, bot turns, re-prompts, confirmation, keypad and hand-off."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from common.privacy import mask_text
from common.routing_phrases import asks_for_a_person
from voice import prompts
from voice.engines.bot import BotClient, BotUnavailable
from voice.frames import (
    NUMBER_EXPECTATIONS,
    BotReply,
    CallerTurn,
    CallStarted,
    Dtmf,
    EndCall,
    Expectation,
    Frame,
    Hangup,
    HumanRequested,
    KeypadEntry,
    ListenFor,
    PlaybackFinished,
    SpeechStarted,
    Tick,
    Transcript,
)
from voice.pipeline import Stage
from voice.settings import Settings
from voice.transports.base import is_safe_queue

log = logging.getLogger(__name__)

_WEB_SOURCE = re.compile(r"web:[0-9A-Za-z.:+_\-]{1,64}")  # the card system's source format (actions/card_service.py)
_ASKS = re.compile(r"请(?:说|输入|告诉|提供|报)|是多少|是什么|[？?]")
_KINDS: tuple[tuple[str, Expectation], ...] = (
    ("身份证", "id_number"), ("手机号", "phone_number"), ("电话号码", "phone_number"),
    ("联系电话", "phone_number"), ("社保卡号", "card_number"), ("卡号", "card_number"), ("验证码", "code"),
)


def expectation_of(messages: tuple[dict[str, Any], ...]) -> Expectation:
    """What the bot's last message asks for: custom.voice.expect, else guessed from its text."""
    if not messages:
        return "free"
    last = messages[-1]
    voice = (last.get("custom") or {}).get("voice") if isinstance(last.get("custom"), dict) else None
    if isinstance(voice, dict) and voice.get("expect") in ("free", "yes_no", "menu", *NUMBER_EXPECTATIONS):
        return voice["expect"]
    text = str(last.get("text") or "")
    if last.get("buttons"):
        return "free"  # a menu: keys pick buttons, they are not digits of a number
    if _ASKS.search(text):
        for word, kind in _KINDS:
            if word in text:
                return kind
    return "free"


def custom_field(messages: Sequence[dict[str, Any]], key: str) -> dict[str, Any] | None:
    """The first `custom.<key>` of the messages ({} for `true`), or None when none has it."""
    for message in messages:
        custom = message.get("custom")
        if isinstance(custom, dict) and isinstance(custom.get(key), dict):
            return custom[key]
        if isinstance(custom, dict) and custom.get(key) is True:
            return {}
    return None


@dataclass
class _Prompt:
    reply: BotReply
    listen: ListenFor


class Dialogue(Stage):
    """Turns caller input into Rasa turns and decides what the bot says and when to hand off."""

    def __init__(self, bot: BotClient, settings: Settings, feedback: Callable[[Frame], None],
                 opening: Sequence[dict[str, Any]] = (), keypad_only: bool = False) -> None:
        """`opening`: what the call starts with (default: the spoken greeting); `keypad_only`: no recogniser."""
        self.bot = bot
        self.settings = settings
        self.feedback = feedback
        self.keypad_only = keypad_only
        self.call_id = ""
        self.source = ""  # phone:<caller number> when known (per-source verification limits)
        first = tuple(opening) or ({"text": prompts.GREETING},)
        self.last = _Prompt(BotReply(messages=first), self._listen(expectation_of(first), []))
        self.listening_since: float | None = None
        self.silences = 0
        self.confirming: str | None = None
        self.ended = False

    def _listen(self, expect: Expectation, buttons: list[dict[str, Any]]) -> ListenFor:
        t = self.settings.timings
        if expect in NUMBER_EXPECTATIONS:
            return ListenFor(expect=expect, eou_silence_ms=t.eou_silence_number_ms, grammar=prompts.DIGIT_GRAMMAR)
        if expect == "menu":  # keys only: the keypad service reads them
            return ListenFor(expect="menu", eou_silence_ms=t.eou_silence_ms)
        titles = tuple(str(b.get("title", "")) for b in buttons if b.get("title"))
        payloads = tuple(str(b.get("payload") or b.get("title") or "") for b in buttons)
        answers: tuple[str, ...] = (*titles, *prompts.YES_WORDS, *prompts.NO_WORDS, "人工")
        if expect == "yes_no":  # a confirmation: only its answers
            grammar: tuple[str, ...] = answers
        elif titles and self.settings.open_grammar:
            # a menu, but the caller may also ask something else ("换个说法再问"): options + open phrases
            grammar = (*answers, *self.settings.open_grammar)
        elif titles:
            grammar = ()  # no phrase list configured: free-form, and the options are matched in the text
        else:  # open question: the knowledge base's phrases, if the centre configured a list
            grammar = self.settings.open_grammar
        return ListenFor(expect=expect, eou_silence_ms=t.eou_silence_ms, grammar=grammar, choices=payloads)

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        """React to call events and caller input; pass every frame on."""
        yield frame
        if self.ended and not isinstance(frame, Hangup):
            return
        if isinstance(frame, CallStarted):
            self.call_id = frame.call_id
            # the caller's number, when the transport has one (a signed media stream's start message): the
            # card system limits failed identity checks per source too; AudioSocket carries none
            digits = "".join(ch for ch in frame.caller if ch.isdigit() or ch == "+")[:32]
            self.source = f"phone:{digits}" if len(digits.lstrip("+")) >= 5 else ""
            if _WEB_SOURCE.fullmatch(frame.source):  # the web softphone's client address (webapp/softphone.py)
                self.source = frame.source
            async for out in self._say(self.last):
                yield out
        elif isinstance(frame, PlaybackFinished):
            self.listening_since = frame.at
        elif isinstance(frame, (SpeechStarted, Dtmf)):
            self.listening_since = None
        elif isinstance(frame, Tick):
            async for out in self._on_tick(frame.now):
                yield out
        elif isinstance(frame, Transcript) and frame.final:
            async for out in self._on_speech(frame):
                yield out
        elif isinstance(frame, KeypadEntry):
            async for out in self._on_keys(frame):
                yield out
        elif isinstance(frame, HumanRequested):
            async for out in self._hand_off("caller_pressed_0", prompts.TRANSFER):
                yield out
        elif isinstance(frame, Hangup):
            self.ended = True

    async def _say(self, prompt: _Prompt, prefix: str = "") -> AsyncIterator[Frame]:
        self.listening_since = None
        self.feedback(prompt.listen)
        messages = prompt.reply.messages
        if prefix:
            messages = ({"text": prefix}, *messages)
        yield BotReply(messages=messages, at=prompt.reply.at)

    async def _on_tick(self, now: float) -> AsyncIterator[Frame]:
        limit = self.settings.timings.no_input_timeout_ms / 1000
        if self.listening_since is None or now - self.listening_since < limit:
            return
        self.silences += 1
        if self.silences > self.settings.no_input_max_reprompts:
            say = prompts.KEYPAD_TRANSFER_NO_INPUT if self.keypad_only else prompts.TRANSFER_NO_INPUT
            async for out in self._hand_off("no_input", say):
                yield out
            return
        async for out in self._say(self.last, prefix=prompts.KEYPAD_NO_INPUT if self.keypad_only else prompts.NO_INPUT):
            yield out

    async def _on_speech(self, transcript: Transcript) -> AsyncIterator[Frame]:
        text = transcript.text.strip()
        if not text:
            self.silences += 1
            if self.silences > self.settings.no_input_max_reprompts:
                async for out in self._hand_off("not_understood", prompts.TRANSFER):
                    yield out
                return
            async for out in self._say(self.last, prefix=prompts.NOT_UNDERSTOOD):
                yield out
            return
        if self.confirming is not None:
            answer = "yes" if _is_yes(text) else "no"
            async for out in self._on_confirmation(answer, transcript.at):
                yield out
            return
        if transcript.confidence < self.settings.confirm_below:
            self.confirming = text
            confirm = _Prompt(BotReply(messages=({"text": prompts.CONFIRM.format(text=text)},)),
                              self._listen("yes_no", []))
            async for out in self._say(confirm):
                yield out
            return
        async for out in self._turn(text, "speech", transcript.at):
            yield out

    async def _on_keys(self, entry: KeypadEntry) -> AsyncIterator[Frame]:
        if self.confirming is not None and entry.digits in ("1", "2"):
            async for out in self._on_confirmation("yes" if entry.digits == "1" else "no", entry.at):
                yield out
            return
        self.confirming = None  # typing something else answers the confirmation question too
        choices = self.last.listen.choices
        text = entry.digits
        if len(text) == 1 and text.isdigit() and choices and 1 <= int(text) <= len(choices):
            text = choices[int(text) - 1]
        async for out in self._turn(text, "keypad", entry.at):
            yield out

    async def _on_confirmation(self, answer: str, at: float) -> AsyncIterator[Frame]:
        heard, self.confirming = self.confirming, None
        if answer == "yes" and heard:
            async for out in self._turn(heard, "speech", at):
                yield out
        else:
            async for out in self._say(self.last, prefix=prompts.CONFIRM_AGAIN):
                yield out

    async def _turn(self, text: str, source: str, at: float) -> AsyncIterator[Frame]:
        self.silences = 0
        yield CallerTurn(text=text, source=source, at=at)  # type: ignore[arg-type]
        log.info("call %s caller (%s): %s", self.call_id, source, mask_text(text))
        try:
            # speech False: a keypad-only call (no speech model); the card service then asks for keys only
            metadata = {"input": source, **({"source": self.source} if self.source else {}),
                        **({"speech": False} if self.keypad_only else {})}
            messages = tuple(await self.bot.send(self.call_id, text, metadata))
        except BotUnavailable as exc:
            log.error("call %s: %s", self.call_id, exc)
            async for out in self._hand_off("bot_unavailable", prompts.BOT_DOWN):
                yield out
            return
        if not any(m.get("text") or (m.get("custom") or {}).get("kb") for m in messages):
            messages = (*messages, {"text": prompts.NO_ANSWER})
        handoff = custom_field(messages, "handoff")
        if handoff is None and asks_for_a_person(text):
            # the bot's hand-off action did not run (action server down or too slow): the caller asked for a
            # person, so the gateway transfers the call and sends the desk its ticket itself
            async for out in self._hand_off("caller_asked", prompts.TRANSFER):
                yield out
            return
        if handoff is not None and handoff.get("status") == "unavailable":
            handoff = None  # the bot could not reach the desk and told the caller so: stay with the bot
        reply = BotReply(messages=messages, at=at)
        if handoff is not None:
            self.ended = True
            yield reply
            queue = str(handoff.get("queue") or "")
            queue = self.settings.queue_map.get(queue, queue if is_safe_queue(queue) else self.settings.handoff_queue)
            yield EndCall(action="transfer", queue=queue, reason=str(handoff.get("reason") or "bot_handoff"),
                          details=handoff)
            return
        if custom_field(messages, "end_call") is not None:
            self.ended = True
            yield reply
            yield EndCall(action="hangup", reason="completed")
            return
        expect = expectation_of(messages)
        buttons = [b for m in messages for b in (m.get("buttons") or [])]
        listen = self._listen(expect, buttons)
        if expect in NUMBER_EXPECTATIONS:
            messages = (*messages, {"text": prompts.KEYPAD_HINT[expect]})
        self.last = _Prompt(BotReply(messages=messages, at=at), listen)
        async for out in self._say(self.last):
            yield out

    async def _hand_off(self, reason: str, say: str) -> AsyncIterator[Frame]:
        self.ended = True
        yield BotReply(messages=({"text": say},))
        yield EndCall(action="transfer", queue=self.settings.handoff_queue, reason=reason)


def _is_yes(text: str) -> bool:
    if any(text.startswith(word) for word in prompts.NO_WORDS):
        return False
    return any(word in text for word in prompts.YES_WORDS)
