"""Text messages to citizens' registered phones, and the one-time codes sent through them."""
from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from common.privacy import mask_phone

log = logging.getLogger(__name__)


class SmsGateway(Protocol):
    """Sends one text message to a phone number."""

    def send(self, phone: str, text: str) -> None:
        """Send `text` to `phone`; raises on failure."""


@dataclass(frozen=True)
class SentSms:
    """A message the development gateway 'sent' (phone masked)."""

    masked_phone: str
    text: str


class LogSmsGateway:
    """Development gateway: appends each message to a log file and the logger, with the phone masked."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else None
        self.outbox: list[SentSms] = []
        self._lock = threading.Lock()

    def send(self, phone: str, text: str) -> None:
        """Write the message where a developer can read it; never sends anything."""
        sms = SentSms(mask_phone(phone), text)
        flat = text.replace("\r", "").replace("\n", "\\n")  # one message, one line (a long answer has several)
        line = f"{dt.datetime.now().isoformat(timespec='seconds')} to={sms.masked_phone} text={flat}\n"
        with self._lock:
            self.outbox.append(sms)
            if self.path:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as f:
                    f.write(line)
        log.info("development SMS to %s (see %s)", sms.masked_phone, self.path or "outbox")


class HttpSmsGateway:
    """Production gateway: POSTs {"phone", "text"} as JSON to the operator's SMS service with a bearer token.

    The centre's SMS platform (or a small adapter in front of a carrier's API) answers 2xx when it
    accepted the message; anything else raises, and no change is made without the code.
    """

    def __init__(self, url: str, token: str, timeout: float = 5.0) -> None:
        self.url, self.token, self.timeout = url, token, timeout

    def send(self, phone: str, text: str) -> None:
        """Hand the message to the SMS service; raises OSError on any failure."""
        import json
        import urllib.request

        body = json.dumps({"phone": phone, "text": text}, ensure_ascii=False).encode("utf-8")
        req = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json; charset=utf-8", "Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 (URL from the operator's settings)
            if not 200 <= resp.status < 300:
                raise OSError(f"SMS service answered {resp.status}")
        log.info("SMS to %s handed to the SMS service", mask_phone(phone))


class CodeCheck(str, enum.Enum):
    """Outcome of checking a one-time code."""

    OK = "ok"
    WRONG = "wrong"  # attempts remain
    EXPIRED = "expired"
    USED_UP = "used_up"  # too many wrong attempts: the code is gone
    NONE = "none"  # no code was issued for this key


@dataclass
class _Pending:
    digest: bytes
    expires: float
    issued: float
    attempts: int = 0


class OneTimeCodes:
    """6-digit one-time codes per key: expiry, limited attempts, single use, constant-time compare.

    Kept in memory (the action server is one process); only a keyed hash of each code is held.
    """

    def __init__(self, ttl_seconds: int = 300, max_attempts: int = 3, resend_after_seconds: int = 60,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self.max_attempts, self.resend_after = ttl_seconds, max_attempts, resend_after_seconds
        self._clock = clock
        self._key = secrets.token_bytes(32)
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()

    def _digest(self, key: str, code: str) -> bytes:
        return hmac.new(self._key, f"{key}\x00{code}".encode(), hashlib.sha256).digest()

    def issue(self, key: str) -> str | None:
        """A fresh code for `key` (replacing an older one), or None if the last one was issued too recently."""
        now = self._clock()
        with self._lock:
            self._drop_expired(now)
            old = self._pending.get(key)
            if old and now - old.issued < self.resend_after:
                return None
            code = f"{secrets.randbelow(10**6):06d}"
            self._pending[key] = _Pending(self._digest(key, code), now + self.ttl, now)
            return code

    def check(self, key: str, code: str) -> CodeCheck:
        """Compare a code in constant time; a correct code is used up, and so is the last allowed wrong one."""
        now = self._clock()
        with self._lock:
            pending = self._pending.get(key)
            if pending is None:
                return CodeCheck.NONE
            if now > pending.expires:
                del self._pending[key]
                return CodeCheck.EXPIRED
            pending.attempts += 1
            if hmac.compare_digest(pending.digest, self._digest(key, (code or "").strip())):
                del self._pending[key]
                return CodeCheck.OK
            if pending.attempts >= self.max_attempts:
                del self._pending[key]
                return CodeCheck.USED_UP
            return CodeCheck.WRONG

    def _drop_expired(self, now: float) -> None:
        for k in [k for k, p in self._pending.items() if now > p.expires]:
            del self._pending[k]
