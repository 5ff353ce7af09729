"""A phone answer's details by SMS, end to end: the real gateway, the real Rasa and action server, the card
system's development SMS outbox (CARDSYS_SMS_LOG, the file the running stack writes)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.sms_outbox import ROOT
from tests.voice.test_phone_card_flow import phone_call

pytestmark = [pytest.mark.asyncio, pytest.mark.rasa]
CALLER_LAST4 = "5678"  # MediaStreamCaller's start message says the call is from 13812345678


def outbox_lines() -> list[str]:
    log = Path(os.environ.get("CARDSYS_SMS_LOG") or ROOT / "var" / "sms.log")
    return log.read_text(encoding="utf-8").splitlines() if log.exists() else []


@pytest.mark.parametrize("accept", ["key", "speech"])
async def test_the_written_answer_is_texted_to_the_calling_mobile(tmp_path: Path, accept: str) -> None:
    async with phone_call(tmp_path) as call:
        answer = await call.say("俺想查查灵活就业咋交养老")
        kb = next(m["custom"]["kb"] for m in answer.reply if (m.get("custom") or {}).get("kb", {}).get("id"))
        assert kb.get("sms_offer") is True, answer.reply  # a mobile caller, a written answer longer than the spoken
        assert kb["voice_answer"].endswith("需要把详细说明用短信发到您的来电手机吗？")
        assert answer.reply[0]["buttons"][0]["title"] == "发短信"
        before = len(outbox_lines())
        sent = await (call.press("1") if accept == "key" else call.say("是的"))
        assert f"尾号{CALLER_LAST4}的手机" in sent.said, sent.reply
        new = outbox_lines()[before:]
        assert len(new) == 1 and f"to=138****{CALLER_LAST4} " in new[0] and "【济南社保】" in new[0], new
        assert "13812345678" not in "\n".join(outbox_lines())  # the outbox log shows the number masked

        again = await call.say("是的")  # a second 是的 answers nothing: no second message
        assert "有什么可以帮您" in again.said and len(outbox_lines()) == before + 1, again.reply
