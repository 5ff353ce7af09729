"""One call's keypad service: walks the generated menu and hands card self-service to the bot.

It answers like a bot (`BotClient`: one key in, Rasa-style messages out), so the Dialogue stage keeps
doing what it does for every call: greeting, re-prompts on silence, 0 for a person, transfers.
Keys: 1-n choose, 9 repeats what was said last, * goes back a level, 0 is a person (KeypadCollector).
When the menu is rebuilt during the call (the desk published, voice/ivr/live.py), the call takes the new
one each time the main menu is said again; below the top it keeps the levels it went down, so a key
always means what the caller last heard.
A self-service option sends its intent payload to the bot; until the bot's flow ends, numbers go to
the bot as typed (where * is the letter X), and its buttons are read as keys.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from voice import prompts
from voice.engines.bot import BotClient, BotUnavailable
from voice.frames import NUMBER_EXPECTATIONS
from voice.ivr.menu import Answer, Menu, SelfService
from voice.numbers import integer_to_chinese
from voice.stages.dialogue import custom_field, expectation_of

log = logging.getLogger(__name__)
Message = dict[str, Any]
FOR_KEYS = {"voice": {"expect": "menu"}}  # the Dialogue listens for single keys after these messages


def options_text(titles: list[str]) -> str:
    """Options as keys: 社保卡业务，请按一；参保缴费，请按二。"""
    return "；".join(prompts.KEYPAD_OPTION.format(title=t, key=integer_to_chinese(i))
                    for i, t in enumerate(titles, start=1)) + "。"


def menu_prompt(menu: Menu, top: bool) -> str:
    """What a caller hears for one level: its title (below the top), its options, then the fixed keys."""
    title = "" if top else f"{menu.title}。"
    keys = prompts.KEYPAD_KEYS_TOP if top else prompts.KEYPAD_KEYS
    return title + options_text([option.title for option in menu.options]) + keys


def answer_messages(answer: Answer) -> list[Message]:
    """An entry's voice answer as the bot would send it, then the keys that follow an answer."""
    return [{"text": answer.voice_answer, "custom": {"kb": {"id": answer.entry_id, "voice_answer": answer.voice_answer}}},
            {"text": prompts.KEYPAD_KEYS, "custom": FOR_KEYS}]


def spoken_texts(menu: Menu, top: bool = True) -> list[str]:
    """Every level prompt and answer of the menu (synthesised into the speech cache at start-up)."""
    texts = [menu_prompt(menu, top)]
    for option in menu.options:
        if isinstance(option, Menu):
            texts += spoken_texts(option, top=False)
        elif isinstance(option, Answer):
            texts.append(option.voice_answer)
    return texts


@dataclass
class _Flow:
    """A bot flow in progress and what its last reply asks of the keypad."""

    asks: Literal["number", "choice", "words"]
    cancel: bool  # the bot asked explicitly (custom.voice.expect): leaving with * cancels the flow (/deny)
    choices: tuple[str, ...] = ()  # button payloads on keys 1..n
    said: list[Message] = field(default_factory=list)


class KeypadService:
    """A `BotClient` for one call in keypad mode (see the module docstring)."""

    def __init__(self, menu: Menu, bot: BotClient, latest: Callable[[], Menu] | None = None) -> None:
        self.bot = bot
        self.latest = latest  # the gateway's current main menu, taken whenever the main menu is said again
        self.path: list[Menu] = [menu]  # the levels the caller went down
        self.after_answer = False  # the last thing said was an answer under path[-1]
        self.flow: _Flow | None = None
        self.said: list[Message] = self._level()  # what 9 repeats

    def opening(self) -> list[Message]:
        """The greeting and the main menu, said when the call starts."""
        return [{"text": prompts.KEYPAD_GREETING}, *self._level()]

    def _level(self, fresh: bool = False) -> list[Message]:
        """The current level's prompt; `fresh` (said and remembered for 9): at the top, the newest main menu."""
        if fresh and len(self.path) == 1 and self.latest is not None:
            self.path[0] = self.latest()
        return [{"text": menu_prompt(self.path[-1], top=len(self.path) == 1), "custom": FOR_KEYS}]

    async def send(self, sender: str, text: str, metadata: dict[str, Any]) -> list[Message]:
        """One key (or a typed number during a bot flow) in, what to say out."""
        if self.flow is not None:
            return await self._in_flow(sender, text, metadata)
        return await self._in_menu(sender, text, metadata)

    async def _in_menu(self, sender: str, key: str, metadata: dict[str, Any]) -> list[Message]:
        level = self.path[-1]
        if key == "9":
            return self.said
        if key == "*":
            if self.after_answer:
                self.after_answer = False
            elif len(self.path) > 1:
                self.path.pop()
            else:
                return self._say([{"text": prompts.KEYPAD_AT_TOP}, *self._level(fresh=True)])
            return self._say(self._level(fresh=True))
        if not (key.isdigit() and 1 <= int(key) <= len(level.options)):
            again = [{"text": prompts.KEYPAD_KEYS, "custom": FOR_KEYS}] if self.after_answer else self._level()
            return [{"text": prompts.KEYPAD_INVALID}, *again]
        option = level.options[int(key) - 1]
        log.info("call %s keypad menu: %s › %s", sender, level.title, option.title)
        if isinstance(option, Menu):
            self.path.append(option)
            self.after_answer = False
            return self._say(self._level())
        if isinstance(option, Answer):
            self.after_answer = True
            return self._say(answer_messages(option))
        assert isinstance(option, SelfService)
        self.after_answer = False
        return await self._ask_bot(sender, option.payload, metadata)

    async def _in_flow(self, sender: str, text: str, metadata: dict[str, Any]) -> list[Message]:
        flow = self.flow
        assert flow is not None
        if flow.asks == "number":
            return await self._ask_bot(sender, text, metadata)
        if text == "9":
            return flow.said
        if text == "*":
            self.flow = None
            said: list[Message] = []
            if flow.cancel:  # the bot's flow stops and forgets what it was told (Rasa: /deny cancels)
                try:
                    reply = await self.bot.send(sender, "/deny", metadata)
                    said = [_without_buttons(m) for m in reply if m.get("text")]
                except BotUnavailable as exc:  # the caller still goes back; the bot's flow expires on its own
                    log.warning("call %s: could not cancel the bot's flow: %s", sender, exc)
            return self._say([*said, *self._level(fresh=True)])
        if text.isdigit() and 1 <= int(text) <= len(flow.choices):
            return await self._ask_bot(sender, flow.choices[int(text) - 1], metadata)
        return [{"text": prompts.KEYPAD_INVALID}, *flow.said]

    async def _ask_bot(self, sender: str, text: str, metadata: dict[str, Any]) -> list[Message]:
        """A bot turn; its reply decides whether the flow goes on and what the keys mean next."""
        reply = list(await self.bot.send(sender, text, metadata))
        handoff = custom_field(reply, "handoff")
        if (handoff is not None and handoff.get("status") != "unavailable") or custom_field(reply, "end_call") is not None:
            self.flow = None
            return reply  # the Dialogue transfers the call or says goodbye
        expect = expectation_of(tuple(reply))
        explicit = custom_field(reply[-1:], "voice") is not None
        if expect in NUMBER_EXPECTATIONS:
            self.flow = _Flow("number", cancel=True, said=reply)
            return self._say(reply)  # typed as asked; the Dialogue adds the keypad hint
        buttons = [b for m in reply for b in (m.get("buttons") or []) if b.get("title")]
        texts = [_without_buttons(m) for m in reply if m.get("text") or (m.get("custom") or {}).get("kb")]
        if buttons:
            choices = tuple(str(b.get("payload") or b["title"]) for b in buttons)
            keys = options_text([str(b["title"]) for b in buttons]) + prompts.KEYPAD_KEYS
            self.flow = _Flow("choice", cancel=explicit, choices=choices)
            self.flow.said = [*texts, {"text": keys, "custom": FOR_KEYS}]
            return self._say(self.flow.said)
        if explicit and expect == "free":  # the bot asks for words (a name): the keypad cannot give them
            self.flow = _Flow("words", cancel=True)
            self.flow.said = [*texts, {"text": prompts.KEYPAD_NEEDS_SPEECH, "custom": FOR_KEYS}]
            return self._say(self.flow.said)
        self.flow = None  # the flow has ended (told the progress, reported, cancelled): back to the menu's keys
        self.after_answer = True
        return self._say([*texts, {"text": prompts.KEYPAD_KEYS, "custom": FOR_KEYS}])

    def _say(self, messages: list[Message]) -> list[Message]:
        if self.flow is None:
            self.said = messages
        return messages


def _without_buttons(message: Message) -> Message:
    """The message without buttons (the keypad service reads them as keys itself)."""
    return {k: v for k, v in message.items() if k != "buttons"}

