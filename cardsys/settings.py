"""Settings of the card-system adapter, read from the environment when `load_settings()` is called."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    """Where the card data lives and how strict identity verification is."""

    # one URL selects the database: SQLite file by default, postgresql+psycopg://… in production
    database_url: str = field(default_factory=lambda: os.environ.get("CARDSYS_DATABASE_URL", f"sqlite:///{ROOT / 'var' / 'cardsys.db'}"))
    # how long a verified identity stays usable in its conversation
    verified_minutes: int = field(default_factory=lambda: int(os.environ.get("CARDSYS_VERIFIED_MINUTES", "30")))
    # failed verifications that end self-service in one conversation (the citizen is offered a person)
    max_failures: int = field(default_factory=lambda: int(os.environ.get("CARDSYS_MAX_FAILURES", "3")))
    # failed verifications of one citizen across conversations in 24 hours that block remote verification
    max_failures_per_citizen: int = field(default_factory=lambda: int(os.environ.get("CARDSYS_MAX_FAILURES_PER_CITIZEN", "10")))
    # failed verifications from one source (web client address, caller number) in an hour before it is slowed down
    max_failures_per_source: int = field(default_factory=lambda: int(os.environ.get("CARDSYS_MAX_FAILURES_PER_SOURCE", "20")))
    # "log": one-time codes are written to sms_log (development); "http": POSTed to sms_url (production);
    # "off": no codes, so no changes (loss reports) by the bot: those go to a person
    sms_gateway: str = field(default_factory=lambda: os.environ.get("CARDSYS_SMS_GATEWAY", "log"))
    sms_log: str = field(default_factory=lambda: os.environ.get("CARDSYS_SMS_LOG", str(ROOT / "var" / "sms.log")))
    sms_url: str = field(default_factory=lambda: os.environ.get("CARDSYS_SMS_URL", ""))
    sms_token: str = field(default_factory=lambda: os.environ.get("CARDSYS_SMS_TOKEN", ""), repr=False)
    otp_ttl_seconds: int = field(default_factory=lambda: int(os.environ.get("CARDSYS_OTP_TTL_SECONDS", "300")))
    otp_max_attempts: int = field(default_factory=lambda: int(os.environ.get("CARDSYS_OTP_MAX_ATTEMPTS", "3")))
    production: bool = field(default_factory=lambda: os.environ.get("APP_ENV", "development") == "production")


def redact_url(url: str) -> str:
    """The URL with its password hidden, for error messages."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def load_settings() -> Settings:
    """Read and check the settings; raises ValueError with one sentence naming the variable to fix."""
    try:
        s = Settings()
    except ValueError as e:
        raise ValueError(f"A CARDSYS_* number setting is not a whole number ({e}); fix it in .env or the environment.") from e
    if not re.match(r"(sqlite|postgresql)(\+\w+)?://", s.database_url):
        raise ValueError(f"CARDSYS_DATABASE_URL must be sqlite:///path or postgresql+psycopg://user:pass@host/db, not {redact_url(s.database_url)!r}.")
    if s.sms_gateway not in ("log", "http", "off"):
        raise ValueError(f"CARDSYS_SMS_GATEWAY must be 'log', 'http' or 'off', not {s.sms_gateway!r}.")
    if s.production and s.sms_gateway == "log":
        raise ValueError("CARDSYS_SMS_GATEWAY=log writes one-time codes to a file; in production set CARDSYS_SMS_GATEWAY=http "
                         "with CARDSYS_SMS_URL and CARDSYS_SMS_TOKEN, or off (loss reports then go to a person).")
    if s.sms_gateway == "http" and not (re.match(r"https?://", s.sms_url) and s.sms_token):
        raise ValueError("CARDSYS_SMS_GATEWAY=http needs CARDSYS_SMS_URL (http(s)://…) and CARDSYS_SMS_TOKEN.")
    if min(s.verified_minutes, s.max_failures, s.max_failures_per_citizen, s.max_failures_per_source, s.otp_ttl_seconds, s.otp_max_attempts) < 1:
        raise ValueError("CARDSYS_VERIFIED_MINUTES, CARDSYS_MAX_FAILURES*, CARDSYS_OTP_TTL_SECONDS and CARDSYS_OTP_MAX_ATTEMPTS must be at least 1.")
    return s
