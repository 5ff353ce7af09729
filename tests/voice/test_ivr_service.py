"""Keypad navigation: one key in, what the caller hears out; card self-service handed to the bot."""

from __future__ import annotations

from typing import Any

import pytest

from tests.voice.doubles import ScriptedBot
from voice import prompts
from voice.engines.bot import BotUnavailable
from voice.frames import CallStarted, Dtmf, EndCall, Frame, HumanRequested, KeypadEntry, ListenFor, PlaybackFinished, Tick
from voice.ivr.menu import Answer, Menu, SelfService
from voice.ivr.service import KeypadService, menu_prompt
from voice.pipeline import run_stages
from voice.settings import ListenTimings, Settings
from voice.speech_text import reply_text
from voice.stages.dialogue import Dialogue
from voice.stages.keypad import KeypadCollector

pytestmark = pytest.mark.asyncio

LOSS = Answer("社保卡丢了，第一时间应该做什么", "card-0501", "请先挂失，可以拨打12333。")
UNLOCK = Answer("社保卡挂失后又找到了，怎么解挂", "card-0519", "带上身份证和卡到网点解挂。")
PENSION = Answer("养老金几号发", "pension-0037", "养老金按月发放。")
MENU = Menu("主菜单", (
    Menu("社保卡挂失", (SelfService("办理社保卡临时挂失", "/report_card_loss"), LOSS, UNLOCK)),
    Menu("养老保险", (PENSION,)),
))
ID_QUESTION = {"text": "请输入您的 18 位身份证号码。", "custom": {"voice": {"expect": "id_number"}}}
NAME_QUESTION = {"text": "请告诉我身份证上的姓名。", "custom": {"voice": {"expect": "free"}}}
CONFIRM = {"text": "确认要办理临时挂失吗？", "custom": {"voice": {"expect": "yes_no"}},
           "buttons": [{"title": "确认挂失", "payload": "/affirm"}, {"title": "取消", "payload": "/deny"}]}


def heard(messages: list[dict[str, Any]]) -> str:
    """What the caller hears, as the formatter speaks it."""
    return "".join(reply_text(m) for m in messages)


def expects(messages: list[dict[str, Any]]) -> str | None:
    return ((messages[-1].get("custom") or {}).get("voice") or {}).get("expect")


async def keys(service: KeypadService, *pressed: str) -> list[dict[str, Any]]:
    said: list[dict[str, Any]] = []
    for key in pressed:
        said = await service.send("call-1", key, {"input": "keypad"})
    return said


async def test_the_call_opens_with_the_greeting_and_the_main_menu() -> None:
    opening = KeypadService(MENU, ScriptedBot()).opening()
    assert heard(opening) == ("您好，这里是济南市社会保障服务中心按键自助服务。"
                              "社保卡挂失，请按一；养老保险，请按二。重听请按九，转人工请按零。")
    assert expects(opening) == "menu"


async def test_keys_go_down_to_an_answer_and_9_and_star_repeat_and_go_back() -> None:
    bot = ScriptedBot()
    service = KeypadService(MENU, bot)
    level = await keys(service, "1")
    assert heard(level).startswith("社保卡挂失。办理社保卡临时挂失，请按一；社保卡丢了，第一时间应该做什么，请按二；")
    assert heard(level).endswith(prompts.KEYPAD_KEYS)
    answer = await keys(service, "2")
    assert heard(answer) == "请先挂失，可以拨打幺二三三三。" + prompts.KEYPAD_KEYS
    assert answer[0]["custom"]["kb"]["id"] == "card-0501"
    assert await keys(service, "9") == answer  # 9: the answer again
    assert heard(await keys(service, "3")).startswith("带上身份证")  # another question of the same list
    assert await keys(service, "*") == [{"text": menu_prompt(MENU.options[0], top=False), "custom": {"voice": {"expect": "menu"}}}]  # type: ignore[arg-type]
    top = await keys(service, "*")
    assert heard(top).startswith("社保卡挂失，请按一；")
    assert heard(await keys(service, "*")).startswith(prompts.KEYPAD_AT_TOP + "社保卡挂失，请按一")
    assert bot.sent == []  # answers come from the knowledge base, not from the bot


@pytest.mark.parametrize("key", ["3", "#", "8"])
async def test_an_invalid_key_is_said_and_the_menu_read_again(key: str) -> None:
    service = KeypadService(MENU, ScriptedBot())
    said = await keys(service, key)
    assert heard(said) == prompts.KEYPAD_INVALID + menu_prompt(MENU, top=True)
    assert expects(said) == "menu"
    assert heard(await keys(service, "2", "1", key)) == prompts.KEYPAD_INVALID + prompts.KEYPAD_KEYS  # after an answer


async def test_a_menu_rebuilt_during_the_call_is_taken_when_the_caller_is_back_at_the_main_menu() -> None:
    """The desk published (voice/ivr/live.py): keys keep meaning what the caller heard until the main menu is said."""
    changed = Answer(LOSS.title, LOSS.entry_id, "请先在电子社保卡里挂失，也可以拨打12333。")
    rebuilt = Menu("主菜单", (Menu("社保卡挂失", (SelfService("办理社保卡临时挂失", "/report_card_loss"), changed)),
                             Menu("养老保险", (PENSION,))))  # UNLOCK retired
    gateway = [MENU]
    service = KeypadService(MENU, ScriptedBot(), latest=lambda: gateway[0])
    await keys(service, "1")
    gateway[0] = rebuilt
    assert heard(await keys(service, "2")) == "请先挂失，可以拨打幺二三三三。" + prompts.KEYPAD_KEYS  # the level it is in
    assert heard(await keys(service, "3")).startswith("带上身份证")  # still offered on this level: still answered
    assert heard(await keys(service, "*", "9")) == menu_prompt(MENU.options[0], top=False)  # type: ignore[arg-type]
    top = await keys(service, "*")  # the main menu said again: from now on the rebuilt one
    assert heard(top) == menu_prompt(rebuilt, top=True) and await keys(service, "9") == top
    level = await keys(service, "1")
    assert heard(level) == menu_prompt(rebuilt.options[0], top=False)  # type: ignore[arg-type]
    assert heard(await keys(service, "2")) == "请先在电子社保卡里挂失，也可以拨打幺二三三三。" + prompts.KEYPAD_KEYS
    assert heard(await keys(service, "3")).startswith(prompts.KEYPAD_INVALID)  # the retired question is gone
    assert heard(await keys(service, "*", "*", "*")).startswith(prompts.KEYPAD_AT_TOP + menu_prompt(rebuilt, top=True))


async def test_card_loss_self_service_goes_to_the_bot_until_its_flow_ends() -> None:
    bot = ScriptedBot([[ID_QUESTION], [CONFIRM], [{"text": "已经为您办理临时挂失。"}]])
    service = KeypadService(MENU, bot)
    asked = await keys(service, "1", "1")
    assert asked == [ID_QUESTION]  # a number: the Dialogue adds the keypad hint, the collector takes the digits
    confirm = await keys(service, "37010219900101123X")
    assert "buttons" not in confirm[0]
    assert heard(confirm).endswith("确认挂失，请按一；取消，请按二。" + prompts.KEYPAD_KEYS)
    assert await keys(service, "9") == confirm
    done = await keys(service, "1")
    assert heard(done) == "已经为您办理临时挂失。" + prompts.KEYPAD_KEYS
    assert [text for _, text, _ in bot.sent] == ["/report_card_loss", "37010219900101123X", "/affirm"]
    assert all(meta == {"input": "keypad"} for _, _, meta in bot.sent)
    assert await keys(service, "9") == done and bot.sent[-1][1] == "/affirm"  # the menu again: nothing to the bot
    assert heard(await keys(service, "*")).startswith("社保卡挂失。")


async def test_a_question_the_keypad_cannot_answer_offers_a_person_or_back_and_cancels_on_back() -> None:
    bot = ScriptedBot([[ID_QUESTION], [NAME_QUESTION], [{"text": "好的，已取消本次办理，您的信息不会保留。"}]])
    service = KeypadService(MENU, bot)
    name = await keys(service, "1", "1", "37010219900101123X")
    assert heard(name) == "请告诉我身份证上的姓名。" + prompts.KEYPAD_NEEDS_SPEECH
    assert heard(await keys(service, "1")) == prompts.KEYPAD_INVALID + heard(name)  # digits cannot answer it
    assert await keys(service, "9") == name and len(bot.sent) == 2
    back = await keys(service, "*")
    assert bot.sent[-1][1] == "/deny"
    assert heard(back).startswith("好的，已取消本次办理，您的信息不会保留。社保卡挂失。")


async def test_going_back_works_when_the_bot_is_down() -> None:
    class CancelFails(ScriptedBot):
        async def send(self, sender: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
            if text == "/deny":
                raise BotUnavailable("connection refused")
            return await super().send(sender, text, metadata)

    service = KeypadService(MENU, CancelFails([[CONFIRM]]))
    await keys(service, "1", "1")
    assert heard(await keys(service, "*")).startswith("社保卡挂失。")
    assert service.flow is None


async def test_a_hand_off_from_the_bot_is_passed_on_unchanged() -> None:
    handoff = [{"text": "正在为您转接。", "custom": {"handoff": {"queue": "社保卡", "reason": "locked"}}}]
    service = KeypadService(MENU, ScriptedBot([handoff]))
    assert await keys(service, "1", "1") == handoff and service.flow is None


# --- in the pipeline: collector and dialogue in keypad mode ----------------------------------

def keypad_call(bot: ScriptedBot, **timing: Any) -> tuple[list[Frame], Dialogue, KeypadService]:
    fed_back: list[Frame] = []
    service = KeypadService(MENU, bot)
    settings = Settings(handoff_backend="local", timings=ListenTimings(**timing))
    return fed_back, Dialogue(service, settings, fed_back.append, opening=service.opening(), keypad_only=True), service


def said(frames: list[Frame]) -> list[str]:
    from voice.frames import BotReply

    return [heard(list(f.messages)) for f in frames if isinstance(f, BotReply)]


async def test_in_a_menu_every_key_is_an_entry_and_0_is_a_person() -> None:
    out = await run_stages([KeypadCollector(10000)], [ListenFor(expect="menu"), *[Dtmf(k) for k in "1*#90"]])
    assert [f.digits for f in out if isinstance(f, KeypadEntry)] == ["1", "*", "#", "9"]
    assert isinstance([f for f in out if not isinstance(f, Dtmf)][-1], HumanRequested)


async def test_keypad_mode_greets_with_the_menu_listens_for_keys_and_walks_it() -> None:
    fed_back, dialogue, _ = keypad_call(ScriptedBot())
    out = await run_stages([dialogue], [CallStarted("c", "t"), KeypadEntry("2"), KeypadEntry("1")])
    texts = said(out)
    assert texts[0].startswith(prompts.KEYPAD_GREETING) and "转人工请按零" in texts[0]
    assert texts[1].startswith("养老保险。养老金几号发，请按一") and texts[2].startswith("养老金按月发放。")
    assert {f.expect for f in fed_back if isinstance(f, ListenFor)} == {"menu"}


async def test_keypad_mode_silence_is_about_keys_then_a_person() -> None:
    _, dialogue, _ = keypad_call(ScriptedBot(), no_input_timeout_ms=1000)
    frames: list[Frame] = [CallStarted("c", "t")]
    for n in range(3):
        frames += [PlaybackFinished(utterance_id=n, at=10.0 * n), Tick(now=10.0 * n + 1.1)]
    out = await run_stages([dialogue], frames)
    texts = said(out)
    assert texts[1].startswith(prompts.KEYPAD_NO_INPUT + "您好") and texts[-1] == prompts.KEYPAD_TRANSFER_NO_INPUT
    assert [f for f in out if isinstance(f, EndCall)] == [EndCall("transfer", "shebao-experts", "no_input")]


async def test_keypad_mode_number_questions_get_the_keypad_hint_and_listen_for_digits() -> None:
    fed_back, dialogue, _ = keypad_call(ScriptedBot([[ID_QUESTION]]))
    out = await run_stages([dialogue], [CallStarted("c", "t"), KeypadEntry("1"), KeypadEntry("1")])
    assert said(out)[-1].endswith(prompts.KEYPAD_HINT["id_number"])
    assert [f for f in fed_back if isinstance(f, ListenFor)][-1].expect == "id_number"
