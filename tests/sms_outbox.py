"""Read one-time codes from the development SMS outbox (cardsys LogSmsGateway) the running stack writes.

scripts/test.sh points CARDSYS_SMS_LOG at var/test/sms.log for the stack and the tests alike.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def latest_code(phone_last4: str, path: str | None = None) -> str:
    """The code in the newest message sent to a phone ending in `phone_last4`; AssertionError if none."""
    log = Path(path or os.environ.get("CARDSYS_SMS_LOG") or ROOT / "var" / "sms.log")
    lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    for line in reversed(lines):
        if f"****{phone_last4} " in line:
            m = re.search(r"验证码是?(\d{6})", line)
            if m:
                return m.group(1)
    raise AssertionError(f"no code for a phone ending in {phone_last4} in {log}")
