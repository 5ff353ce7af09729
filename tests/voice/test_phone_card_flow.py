"""Card self-service over the PHONE: keypad digits end to end against the real stack.

The caller is a Twilio-compatible media stream (MediaStreamCaller) talking to the real gateway app;
speech is scripted (ScriptedRecognizerFactory: no Mandarin Vosk model can be had here), keypad
digits are real DTMF events. Behind the gateway: the real Rasa server (phone channel), the real
action server and the card system seeded by `python -m cardsys.seed` (synthetic citizens only:
张示范 正常, 李演示 制卡中, 王样例 待领取 and `synthetic_people`).

Each test leaves the demo citizens as it found them, so the web end-to-end tests
(tests/e2e/test_card_service.py) and these can run in any order against one card system:
the loss report uses a synthetic citizen with a card in use ("正常") that no other test touches,
and accepts "already reported" when it runs a second time against the same database.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cardsys.seed import synthetic_people
from tests.sms_outbox import latest_code
from tests.voice.doubles import (
    MediaStreamCaller,
    ScriptedRecognizer,
    ScriptedRecognizerFactory,
    fake_desk_app,
    serve,
    tone_pcm8k,
)
from tests.voice.test_media_stream import TOKEN, gateway, saved_call, services_for
from voice.audio import level_dbfs
from voice.engines.bot import RasaPhoneChannel
from voice.prompts import DIGIT_GRAMMAR
from voice.settings import ListenTimings, Settings
from voice.store import CallStore

pytestmark = [pytest.mark.asyncio, pytest.mark.rasa]
SKIP_REASON = "needs the real Rasa server: set RUN_RASA_TESTS=1 and RASA_URL to a Rasa serving the phone channel"
ZHANG = ("37019019850315001X", "张示范", "6688")
LI = ("370190199207080023", "李演示", "2468")
TURN_TIMEOUT_S = 60  # one Rasa turn, with the knowledge base and the card system behind it


def real_rasa_url() -> str:
    """The real Rasa server's URL, or skip (same rule and reason as test_media_stream's real-Rasa test)."""
    if os.environ.get("RUN_RASA_TESTS") != "1":
        pytest.skip(SKIP_REASON)
    url = os.environ.get("RASA_URL", "http://127.0.0.1:5005").rstrip("/")
    try:
        ok = httpx.get(f"{url}/webhooks/phone/", timeout=3).status_code == 200
    except httpx.HTTPError:
        ok = False
    if not ok:
        pytest.skip(SKIP_REASON)
    return url


def loss_citizen() -> tuple[str, str, str]:
    """A synthetic citizen whose card is in use (正常): ID number, name, registered phone's last 4 digits.

    The first citizens of `synthetic_people` are the same for any seed count (see cardsys/seed.py),
    so any stack seeded with `--count 10` or more has this one.
    """
    person = next(p for p in synthetic_people(10) if p.cards[-1].status == "正常")
    return person.id_number, person.name, person.phone[-4:]


class Turn:
    """One caller input as Rasa got it, and Rasa's reply."""

    def __init__(self, text: str, metadata: dict[str, Any], reply: list[dict[str, Any]], at: float) -> None:
        self.text, self.metadata, self.reply, self.at = text, metadata, reply, at

    @property
    def said(self) -> str:
        """The texts of the reply, one a line."""
        return "\n".join(str(m.get("text") or "") for m in self.reply)

    @property
    def expect(self) -> str | None:
        """The voice hint of the reply's last message (custom.voice.expect), if any."""
        custom = self.reply[-1].get("custom") if self.reply else None
        voice = custom.get("voice") if isinstance(custom, dict) else None
        return voice.get("expect") if isinstance(voice, dict) else None


class RecordingRasa(RasaPhoneChannel):
    """The real phone-channel client, keeping each turn: what the gateway sent and what Rasa said."""

    def __init__(self, url: str) -> None:
        super().__init__(url, timeout_s=TURN_TIMEOUT_S)
        self.turns: list[Turn] = []
        self.senders: set[str] = set()

    async def send(self, sender: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        self.senders.add(sender)
        reply = await super().send(sender, text, metadata)
        self.turns.append(Turn(text, metadata, reply, asyncio.get_running_loop().time()))
        return reply


class HearingRecognizer(ScriptedRecognizer):
    """A scripted recogniser that also notes which grammar it had when it 'heard' each utterance."""

    def finish(self) -> tuple[str, float]:
        heard = super().finish()
        self.factory.heard_with.append((heard[0], self.grammar))  # type: ignore[attr-defined]
        return heard


class HearingRecognizerFactory(ScriptedRecognizerFactory):
    """ScriptedRecognizerFactory whose recognisers report (text, grammar) of each utterance."""

    def __init__(self) -> None:
        super().__init__()
        self.heard_with: list[tuple[str, tuple[str, ...]]] = []

    def create(self, grammar: tuple[str, ...] = ()) -> ScriptedRecognizer:
        self.grammars.append(grammar)
        return HearingRecognizer(self, grammar)


class PhoneCall:
    """A caller on the gateway: speaks (scripted text) or types keys, one Rasa turn at a time."""

    def __init__(self, caller: MediaStreamCaller, bot: RecordingRasa, ears: HearingRecognizerFactory,
                 store: CallStore) -> None:
        self.caller, self.bot, self.ears, self.store = caller, bot, ears, store

    @property
    def said(self) -> str:
        """Everything Rasa said in the call."""
        return "\n".join(t.said for t in self.bot.turns)

    async def _next_turn(self, before: int) -> Turn:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TURN_TIMEOUT_S
        while len(self.bot.turns) <= before:
            if loop.time() > deadline:
                raise AssertionError(f"the gateway sent nothing to Rasa; turns so far: {[t.text for t in self.bot.turns]}")
            if self.caller.closed.is_set():
                raise AssertionError("the call ended before the next turn")
            await asyncio.sleep(0.02)
        assert len(self.bot.turns) == before + 1, [t.text for t in self.bot.turns[before:]]
        turn = self.bot.turns[before]
        # The caller hears the answer: audio with speech energy arrives after Rasa replied.
        first = await self.caller.wait_for_audio(turn.at, timeout=30)
        await asyncio.sleep(0.5)
        assert level_dbfs(self.caller.audio(first, first + 0.5)) > -35, "the answer was silent"
        return turn

    async def say(self, text: str) -> Turn:
        """The caller says `text` (over the prompt: barge-in) and waits for the bot's answer."""
        before = len(self.bot.turns)
        self.ears.heard.append((text, 0.95))
        # 1.5 s of trailing silence ends the utterance even where a number is expected (1.2 s).
        await self.caller.say(tone_pcm8k(300, 600), trailing_silence_ms=1500)
        return await self._next_turn(before)

    async def press(self, keys: str) -> Turn:
        """The caller types `keys` on the keypad (over the prompt) and waits for the bot's answer."""
        before = len(self.bot.turns)
        await self.caller.press(keys, gap_s=0.05)
        return await self._next_turn(before)

    async def saved(self) -> dict[str, Any]:
        """The gateway's record of the call (after the hang-up)."""
        return await saved_call(self.store, self.caller.call_sid)


def make_settings(tmp_path: Path) -> Settings:
    return Settings(handoff_backend="http", service_token="x", db_path=tmp_path / "calls.sqlite3",
                    timings=ListenTimings(no_input_timeout_ms=30000))


@contextlib.asynccontextmanager
async def phone_call(tmp_path: Path) -> AsyncIterator[PhoneCall]:
    """The real gateway app in front of the real Rasa, and one caller connected to it; hangs up at the end."""
    url = real_rasa_url()
    bot, ears = RecordingRasa(url), HearingRecognizerFactory()
    try:
        async with serve(fake_desk_app(TOKEN)) as desk_port:
            services = services_for(make_settings(tmp_path), ears, url, f"http://127.0.0.1:{desk_port}")
            services.bot = bot
            async with serve(gateway(services)) as port:
                async with MediaStreamCaller(f"ws://127.0.0.1:{port}/media-stream") as caller:
                    await caller.wait_for_audio(0, timeout=10)  # the greeting
                    yield PhoneCall(caller, bot, ears, services.store)
    finally:
        await bot.aclose()


@contextlib.asynccontextmanager
async def keypad_phone_call(tmp_path: Path) -> AsyncIterator[PhoneCall]:
    """As phone_call, but the gateway has no speech model: keypad mode with the generated menu."""
    from knowledge.schema import load_entries
    from voice.ivr.menu import build_menu, load_layout

    url = real_rasa_url()
    bot = RecordingRasa(url)
    try:
        async with serve(fake_desk_app(TOKEN)) as desk_port:
            services = services_for(make_settings(tmp_path), ScriptedRecognizerFactory(), url, f"http://127.0.0.1:{desk_port}")
            services.recognizers, services.menu, services.bot = None, build_menu(load_entries(), load_layout()), bot
            async with serve(gateway(services)) as port:
                async with MediaStreamCaller(f"ws://127.0.0.1:{port}/media-stream") as caller:
                    await caller.wait_for_audio(0, timeout=10)  # the greeting and the main menu
                    yield PhoneCall(caller, bot, HearingRecognizerFactory(), services.store)
    finally:
        await bot.aclose()


def card_stage(turn: Turn) -> str | None:
    """The card stage the bot reported (custom.card.stage), if any."""
    for m in turn.reply:
        card = (m.get("custom") or {}).get("card")
        if isinstance(card, dict) and card.get("stage"):
            return str(card["stage"])
    return None


def handoff_or_no_answer(message: dict[str, Any]) -> bool:
    """A transfer to a person, or the knowledge base's 'nothing found' answer."""
    custom = message.get("custom") or {}
    return bool(custom.get("handoff")) or (custom.get("kb") or {}).get("band") == "none"


def inputs(call: PhoneCall) -> list[tuple[str, str]]:
    """What Rasa got in the call, each with its source (speech or keypad)."""
    return [(t.text, t.metadata.get("input")) for t in call.bot.turns]


async def test_card_progress_with_keypad_id_and_phone_digits(tmp_path: Path) -> None:
    """我的卡办到哪了 → ID on the keypad → name spoken → phone's last 4 on the keypad → 制卡中."""
    async with phone_call(tmp_path) as call:
        asked = await call.say("我的卡办到哪了")
        assert "身份证" in asked.said and asked.expect == "id_number", asked.reply
        name_q = await call.press(LI[0] + "#")
        assert "姓名" in name_q.said, name_q.reply
        phone_q = await call.say(LI[1])
        assert "手机" in phone_q.said and phone_q.expect == "phone_number", phone_q.reply
        answer = await call.press(LI[2] + "#")
    # The stage is 制卡中 (the card system's status), told in words ("社保卡正在制作中")
    assert card_stage(answer) == "制卡中" and "制作中" in answer.said, answer.reply
    # ... and that is the whole answer: no knowledge-base "no answer" after it, no transfer of the call.
    assert not [m for m in answer.reply if handoff_or_no_answer(m)], answer.said
    assert inputs(call) == [("我的卡办到哪了", "speech"), (LI[0], "keypad"), (LI[1], "speech"), (LI[2], "keypad")]
    # Rasa itself recorded every turn of the call as the phone channel
    (sender,) = call.bot.senders
    tracker = httpx.get(f"{os.environ.get('RASA_URL', 'http://127.0.0.1:5005')}/conversations/{sender}/tracker",
                        params={"token": os.environ.get("RASA_TOKEN", "dev-rasa-token")}, timeout=30).json()
    assert {e["input_channel"] for e in tracker["events"] if e["event"] == "user"} == {"phone"}
    assert LI[0] not in call.said, "the bot read back the full ID number"
    saved = await call.saved()
    assert saved["outcome"] == "answered_by_bot"
    assert LI[0] not in str(saved), "the call record keeps the full ID number"


async def test_keypad_star_is_the_id_numbers_x(tmp_path: Path) -> None:
    """张示范's ID typed with * for X is accepted: the next question is the name (no loss is reported)."""
    async with phone_call(tmp_path) as call:
        await call.say("我的卡办到哪了")
        name_q = await call.press(ZHANG[0][:-1] + "*#")
    assert "姓名" in name_q.said and "不对" not in name_q.said, name_q.reply
    assert inputs(call)[1] == (ZHANG[0], "keypad")  # the gateway sent the X, not the *
    assert ZHANG[0] not in call.said


async def test_wrong_id_on_the_keypad_gets_the_check_digit_explanation(tmp_path: Path) -> None:
    """A mistyped ID (wrong check digit) is explained and asked again; the keypad still takes the number."""
    wrong = LI[0][:-1] + "4"
    async with phone_call(tmp_path) as call:
        await call.say("我的卡办到哪了")
        refused = await call.press(wrong + "#")
        assert "校验位" in refused.said and "重新输入" in refused.said, refused.reply
        assert refused.expect == "id_number", "after the refusal the keypad must still collect an ID number"
        name_q = await call.press(LI[0] + "#")
    assert "姓名" in name_q.said, name_q.reply
    assert inputs(call) == [("我的卡办到哪了", "speech"), (wrong, "keypad"), (LI[0], "keypad")]


async def test_lost_card_reported_over_the_phone(tmp_path: Path) -> None:
    """我的社保卡丢了 → verification with keypad digits → 确认挂失 on key 1 → a recorded temporary loss."""
    id_number, name, last4 = loss_citizen()
    reported = False
    async with phone_call(tmp_path) as call:
        first = await call.say("我的社保卡丢了")
        assert "挂失" in first.said and first.expect == "id_number", first.reply
        await call.press(id_number.replace("X", "*") + "#")
        await call.say(name)
        verified = await call.press(last4 + "#")
        assert f"身份核验通过（身份证尾号{id_number[-4:]}）" in verified.said, verified.reply
        if "确认要办理临时挂失吗" in verified.said:
            assert [b.get("payload") for b in verified.reply[-1].get("buttons", [])][:1] == ["/affirm"]
            asked = await call.press("1")  # the first spoken option: 确认挂失
            assert inputs(call)[-1] == ("/affirm", "keypad")
            assert "验证码" in asked.said and asked.expect == "code", asked.reply
            done = await call.press(latest_code(last4) + "#")  # the SMS code, keyed in
            assert "已经为您办理临时挂失" in done.said, done.reply
            reported = True
        else:  # a second run against the same card system: the card is already under temporary loss
            assert "临时挂失" in verified.said, verified.reply
    assert id_number not in call.said and name not in call.said
    if not os.environ.get("CARDSYS_DATABASE_URL"):
        return
    # The stack's card system, checked directly: the card's state and the audit of this call.
    from sqlalchemy import create_engine, text

    engine = create_engine(os.environ["CARDSYS_DATABASE_URL"])
    try:
        with engine.connect() as db:
            status = db.execute(text(
                "SELECT c.status FROM cardsys_cards c JOIN cardsys_citizens p ON c.citizen_id = p.id "
                "WHERE p.id_number = :i ORDER BY c.id DESC"), {"i": id_number}).scalar()
            audit = db.execute(text(
                "SELECT action, channel, outcome, detail FROM cardsys_audit_log WHERE conversation_id = :c"),
                {"c": call.caller.call_sid}).fetchall()
    finally:
        engine.dispose()
    assert status == "临时挂失"
    assert {a.channel for a in audit} == {"phone"}, audit
    assert any(a.action == "verify" and a.outcome == "ok" for a in audit), audit
    if reported:
        assert any(a.action == "temporary_loss" and a.outcome == "reported" for a in audit), audit
    assert id_number not in str(audit) and name not in str(audit)


async def test_the_name_prompt_is_not_taken_for_a_number_prompt(tmp_path: Path) -> None:
    """Asked for the name, the gateway listens for words (not the digit grammar) and offers no keypad."""
    async with phone_call(tmp_path) as call:
        await call.say("我的卡办到哪了")
        name_q = await call.press(LI[0] + "#")
        assert "姓名" in name_q.said and name_q.expect in (None, "free"), name_q.reply
        await call.say(LI[1])
    heard, grammar = call.ears.heard_with[-1]
    assert heard == LI[1]
    saved = await call.saved()
    name_prompt = next(line["text"] for line in saved["transcript"]
                       if line["role"] == "bot" and line["text"].startswith("请告诉我身份证上的姓名"))
    problems = []
    if grammar == DIGIT_GRAMMAR:
        problems.append("the name was listened for with the digit grammar: a real recogniser cannot hear it")
    if "按键输入身份证" in name_prompt:
        problems.append(f"asked for the name, the caller is told to key in the ID number: {name_prompt!r}")
    if saved["slots"].get("id_number") != "身份证尾号0023":
        problems.append(f"the call record's id_number slot was overwritten by the name: {saved['slots']}")
    assert not problems, "\n".join(problems)


async def test_keypad_mode_loss_report_is_done_by_keys_alone(tmp_path: Path) -> None:
    """No speech model: 社保卡业务 › 社保卡挂失 › 办理社保卡临时挂失 starts Rasa's loss flow. The name cannot be keyed, so
    the bot asks for keys only: ID number, the registered phone's last four digits, then a one-time code sent to
    that phone instead of the name; then 确认挂失 on key 1 and the change code, as for every caller."""
    id_number, name, last4 = loss_citizen()
    reported = False
    async with keypad_phone_call(tmp_path) as call:
        for key in "11":  # 社保卡业务, then 社保卡挂失: the menu answers, Rasa gets nothing
            await call.caller.press(key)
            await call.caller.wait_for_audio(asyncio.get_running_loop().time(), timeout=10)
        assert call.bot.turns == []
        first = await call.press("1")
        assert "挂失" in first.said and first.expect == "id_number", first.reply
        last4_q = await call.press(id_number.replace("X", "*") + "#")
        assert "手机" in last4_q.said and last4_q.expect == "phone_number", last4_q.reply
        assert "姓名" not in last4_q.said
        code_q = await call.press(last4 + "#")
        assert "验证码" in code_q.said and code_q.expect == "code", code_q.reply
        verified = await call.press(latest_code(last4) + "#")  # the identity code from the SMS outbox, keyed in
        assert f"身份核验通过（身份证尾号{id_number[-4:]}）" in verified.said, verified.reply
        if "确认要办理临时挂失吗" in verified.said:
            asked = await call.press("1")  # 确认挂失
            assert "验证码" in asked.said and asked.expect == "code", asked.reply
            done = await call.press(latest_code(last4) + "#")  # the change code, a second SMS
            assert "已经为您办理临时挂失" in done.said, done.reply
            reported = True
        else:  # a second run against the same card system: the card is already under temporary loss
            assert "临时挂失" in verified.said, verified.reply
    assert all(source == "keypad" for _, source in inputs(call))
    assert all(t.metadata.get("speech") is False for t in call.bot.turns)  # the gateway said it cannot listen
    saved = await call.saved()
    assert id_number not in str(saved) and name not in call.said
    assert reported or "临时挂失" in call.said
