"""Development SMS gateway and one-time codes: masking, expiry, attempts, single use, resend pause."""
from __future__ import annotations

import re
from pathlib import Path

from cardsys.sms import CodeCheck, LogSmsGateway, OneTimeCodes


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_the_log_gateway_writes_the_code_but_never_the_whole_phone_number(tmp_path: Path) -> None:
    log = tmp_path / "sub" / "sms.log"
    gw = LogSmsGateway(log)
    gw.send("13812345678", "您的验证码是123456")
    text = log.read_text(encoding="utf-8")
    assert "138****5678" in text and "123456" in text
    assert "13812345678" not in text
    assert gw.outbox[0].masked_phone == "138****5678"


def test_codes_are_six_digits_and_work_once() -> None:
    codes = OneTimeCodes(resend_after_seconds=0)
    code = codes.issue("conv-1")
    assert code is not None and re.fullmatch(r"\d{6}", code)
    assert codes.check("conv-2", code) is CodeCheck.NONE  # bound to its key
    assert codes.check("conv-1", code) is CodeCheck.OK
    assert codes.check("conv-1", code) is CodeCheck.NONE  # used up


def test_wrong_codes_use_up_the_attempts() -> None:
    codes = OneTimeCodes(max_attempts=3, resend_after_seconds=0)
    code = codes.issue("k")
    assert code is not None
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    assert codes.check("k", wrong) is CodeCheck.WRONG
    assert codes.check("k", wrong) is CodeCheck.WRONG
    assert codes.check("k", wrong) is CodeCheck.USED_UP
    assert codes.check("k", code) is CodeCheck.NONE  # even the right code is gone now


def test_codes_expire_and_cannot_be_requested_again_at_once() -> None:
    clock = FakeClock()
    codes = OneTimeCodes(ttl_seconds=300, resend_after_seconds=60, clock=clock)
    first = codes.issue("k")
    assert codes.issue("k") is None  # too soon
    clock.t += 61
    second = codes.issue("k")
    assert second is not None
    if first != second:  # a new code replaces the old one
        assert codes.check("k", first) is CodeCheck.WRONG
    clock.t += 301
    assert codes.check("k", second) is CodeCheck.EXPIRED
