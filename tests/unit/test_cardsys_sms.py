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


def test_the_http_gateway_posts_to_the_sms_service_with_its_token_and_fails_loudly() -> None:
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    import pytest

    from cardsys.sms import HttpSmsGateway

    got: list[tuple[str, dict]] = []

    class Service(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            got.append((self.headers["Authorization"], body))
            self.send_response(500 if body["text"] == "fail" else 200)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Service)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        gateway = HttpSmsGateway(f"http://127.0.0.1:{server.server_port}/send", "tok")
        gateway.send("13812345678", "【济南社保】验证码123456")
        assert got == [("Bearer tok", {"phone": "13812345678", "text": "【济南社保】验证码123456"})]
        with pytest.raises(OSError):
            gateway.send("13812345678", "fail")
        with pytest.raises(OSError):
            HttpSmsGateway("http://127.0.0.1:9/none", "tok", timeout=1).send("13812345678", "x")
    finally:
        server.shutdown()
