"""A phone answer's details by SMS (actions/answer_sms.py): who gets the offer, what 是的 and key 1 send, to whom."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import answer_sms
from actions.knowledge import utter_entry
from cardsys.sms import LogSmsGateway
from knowledge.schema import KbEntry

LONG = KbEntry(id="card-loss-01", category="社保卡/挂失", question="社保卡丢了怎么挂失？", paraphrases=(),
               answer="可以通过以下渠道办理临时挂失：\n1. **拨打12333**；\n2. [爱山东APP](https://example.invalid/app)；\n"
                      "3. 到合作银行网点。临时挂失有效期内请尽快办理正式挂失和补卡。",
               voice_answer="可以打12333或用爱山东办理临时挂失。", source="x", reviewed="2026-12-01", local_review=True)
SHORT = KbEntry(id="x-02", category="养老保险/缴费", question="问？", paraphrases=(), answer="短答案。",
                voice_answer="短答案。", source="x", reviewed="2026-12-01", local_review=False)


def user(text: str, source: str | None = "phone:13912345678", channel: str = "phone",
         intent: str = "affirm") -> dict[str, Any]:
    metadata = {"source": source} if source else {}
    return {"event": "user", "text": text, "input_channel": channel, "metadata": metadata,
            "parse_data": {"intent": {"name": intent}, "entities": []}}


def bot(text: str, kb: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"event": "bot", "text": text, "data": {"custom": {"kb": kb}} if kb else {}}


def tracker(events: list[dict[str, Any]], sender: str = "call-1") -> Tracker:
    latest = next(e for e in reversed(events) if e["event"] == "user")
    message = {"text": latest["text"], "intent": latest["parse_data"]["intent"], "entities": [],
               "metadata": latest["metadata"]}
    return Tracker(sender, {}, message, events, False, None, {}, "action_listen")


OFFER = {"id": LONG.id, "band": "confident", "voice_answer": LONG.voice_answer + answer_sms.OFFER_TEXT, "sms_offer": True}


@pytest.fixture()
def outbox(monkeypatch: pytest.MonkeyPatch, tmp_path) -> LogSmsGateway:
    gateway = LogSmsGateway(tmp_path / "sms.log")
    monkeypatch.setattr(answer_sms, "card_system", lambda: SimpleNamespace(sms=gateway))
    monkeypatch.setattr(answer_sms.kb_service, "get", lambda: SimpleNamespace(by_id={LONG.id: LONG}))
    return gateway


@pytest.mark.parametrize(("source", "channel", "mobile"), [
    ("phone:13912345678", "phone", "13912345678"),
    ("phone:+8613912345678", "phone", "13912345678"),
    ("phone:8613912345678", "phone", "13912345678"),
    ("phone:053186001234", "phone", ""),  # a landline cannot receive a text
    ("phone:12345", "phone", ""),
    (None, "phone", ""),  # AudioSocket calls carry no number
    ("web:127.0.0.1", "web", ""),
    ("phone:13912345678", "web", ""),  # a web client claiming a phone source gets nothing
])
def test_only_a_calling_mobile_number_is_used(source: str | None, channel: str, mobile: str) -> None:
    assert answer_sms.caller_mobile(tracker([user("社保卡丢了", source, channel)])) == mobile


def test_the_offer_is_made_on_the_phone_only_when_the_written_answer_says_more() -> None:
    t = tracker([user("社保卡丢了", intent="ask_question")])
    assert answer_sms.offers_sms(t, LONG) and not answer_sms.offers_sms(t, SHORT)
    assert not answer_sms.offers_sms(tracker([user("社保卡丢了", "web:10.0.0.1", "web")]), LONG)

    d = CollectingDispatcher()
    utter_entry(d, LONG, 0.9, "confident", sms_offer=True)
    kb = d.messages[0]["custom"]["kb"]
    assert kb["sms_offer"] is True and kb["voice_answer"].endswith(answer_sms.OFFER_TEXT)
    assert d.messages[0]["buttons"][0] == answer_sms.SMS_BUTTON  # key 1 on the phone
    d = CollectingDispatcher()
    utter_entry(d, LONG, 0.9, "confident")
    assert "sms_offer" not in d.messages[0]["custom"]["kb"] and d.messages[0]["buttons"][0]["title"] == "有帮助"


async def test_yes_to_the_offer_texts_the_written_answer_to_the_calling_number(outbox: LogSmsGateway) -> None:
    d = CollectingDispatcher()
    t = tracker([user("社保卡丢了", intent="ask_question"), bot(LONG.answer, OFFER), bot("您可能还想问："), user("是的")])
    await answer_sms.ActionAffirm().run(d, t, {})
    assert [m.masked_phone for m in outbox.outbox] == ["139****5678"]
    text = outbox.outbox[0].text
    assert text.startswith("【济南社保】社保卡丢了怎么挂失？") and "拨打12333" in text and "**" not in text
    assert "爱山东APP https://example.invalid/app" in text and "以12345或办事大厅答复为准" in text  # local_review
    assert "尾号5678" in d.messages[0]["text"] and d.messages[0]["custom"]["kb"]["sms_sent"] is True
    logged = outbox.path.read_text(encoding="utf-8")
    assert "13912345678" not in logged and len(logged.splitlines()) == 1  # masked, one message a line


async def test_key_1_sends_and_a_late_yes_does_not(outbox: LogSmsGateway) -> None:
    d = CollectingDispatcher()
    await answer_sms.ActionSendAnswerSms().run(d, tracker([bot(LONG.answer, OFFER), user("/send_answer_sms")]), {})
    assert len(outbox.outbox) == 1

    d = CollectingDispatcher()  # 是的 two turns after the offer answers something else: nothing is sent
    t = tracker([bot(LONG.answer, OFFER), user("社保卡多少钱", intent="ask_question"), bot("……"), user("是的")])
    await answer_sms.ActionAffirm().run(d, t, {})
    assert len(outbox.outbox) == 1 and d.messages[0]["response"] == "utter_how_can_help"


async def test_nothing_is_sent_to_a_web_citizen_or_without_a_number(outbox: LogSmsGateway) -> None:
    for latest in (user("/send_answer_sms", "web:10.0.0.1", "web"), user("/send_answer_sms", None)):
        d = CollectingDispatcher()
        await answer_sms.ActionSendAnswerSms().run(d, tracker([bot(LONG.answer, OFFER), latest]), {})
        assert outbox.outbox == [] and "没有可以发送的内容" in d.messages[0]["text"]


async def test_at_most_three_messages_a_call(outbox: LogSmsGateway) -> None:
    sent = [bot("已经发了", {"sms_sent": True, "id": LONG.id})] * answer_sms.MAX_PER_CONVERSATION
    d = CollectingDispatcher()
    await answer_sms.ActionSendAnswerSms().run(d, tracker([*sent, bot(LONG.answer, OFFER), user("发短信")]), {})
    assert outbox.outbox == [] and "不能再发" in d.messages[0]["text"]


async def test_a_failing_sms_gateway_is_told_and_the_call_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    class Down:
        def send(self, phone: str, text: str) -> None:
            raise ConnectionError("operator gateway down")

    monkeypatch.setattr(answer_sms, "card_system", lambda: SimpleNamespace(sms=Down()))
    monkeypatch.setattr(answer_sms.kb_service, "get", lambda: SimpleNamespace(by_id={LONG.id: LONG}))
    d = CollectingDispatcher()
    await answer_sms.ActionAffirm().run(d, tracker([bot(LONG.answer, OFFER), user("是的")]), {})
    assert "没能发出" in d.messages[0]["text"]
    monkeypatch.setattr(answer_sms, "card_system", lambda: SimpleNamespace(sms=None))  # CARDSYS_SMS_GATEWAY=off
    d = CollectingDispatcher()
    await answer_sms.ActionAffirm().run(d, tracker([bot(LONG.answer, OFFER), user("是的")]), {})
    assert "暂时不可用" in d.messages[0]["text"]


def test_a_long_answer_is_cut_with_a_pointer_to_the_hotline() -> None:
    long = KbEntry(**{**LONG.__dict__, "answer": "很长的说明。" * 200})
    text = answer_sms.sms_text(long)
    assert len(text) <= answer_sms.MAX_SMS_CHARS and text.endswith("（完整内容请咨询12333或12345热线）")
