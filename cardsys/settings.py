"""Settings of the card-system adapter: the documented defaults, and `load_settings()` reading the environment.

Every key is in .env.example; how they are read is common/settings.py.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from common.secrets import Secret
from common.settings import Env, SettingsError, redact_url

ROOT = Path(__file__).resolve().parent.parent
__all__ = ["ROOT", "Settings", "SettingsError", "load_settings", "redact_url"]


@dataclass(frozen=True)
class Settings:
    """Where the card data lives and how strict identity verification is (defaults: development)."""

    # one URL selects the database: SQLite file by default, postgresql+psycopg://… in production
    database_url: str = f"sqlite:///{ROOT / 'var' / 'cardsys.db'}"
    # how long a verified identity stays usable in its conversation
    verified_minutes: int = 30
    # failed verifications that end self-service in one conversation (the citizen is offered a person)
    max_failures: int = 3
    # failed verifications of one citizen across conversations in 24 hours that block remote verification
    max_failures_per_citizen: int = 10
    # failed verifications from one source (web client address, caller number) in an hour before it is slowed down
    max_failures_per_source: int = 20
    # "log": one-time codes are written to sms_log (development); "http": POSTed to sms_url (production);
    # "off": no codes, so no changes (loss reports) by the bot: those go to a person
    sms_gateway: str = "log"
    sms_log: str = str(ROOT / "var" / "sms.log")
    sms_url: str = ""
    sms_token: Secret = field(default_factory=Secret)
    otp_ttl_seconds: int = 300
    otp_max_attempts: int = 3
    # APP_ENV=production (common/settings.py): the file SMS gateway is refused
    production: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.sms_token, Secret):  # tests may pass a plain string
            object.__setattr__(self, "sms_token", Secret(self.sms_token))


def load_settings(env: Mapping[str, str] | Env | None = None) -> Settings:
    """Read and check the settings (default: os.environ); SettingsError names the variable to fix."""
    env, d = Env.of(env), Settings()
    s = Settings(
        database_url=env.url("CARDSYS_DATABASE_URL", d.database_url, schemes=("sqlite", "postgresql"),
                             example="sqlite:///path or postgresql+psycopg://user:pass@host/db"),
        verified_minutes=env.integer("CARDSYS_VERIFIED_MINUTES", d.verified_minutes, minimum=1),
        max_failures=env.integer("CARDSYS_MAX_FAILURES", d.max_failures, minimum=1),
        max_failures_per_citizen=env.integer("CARDSYS_MAX_FAILURES_PER_CITIZEN", d.max_failures_per_citizen, minimum=1),
        max_failures_per_source=env.integer("CARDSYS_MAX_FAILURES_PER_SOURCE", d.max_failures_per_source, minimum=1),
        sms_gateway=env.choice("CARDSYS_SMS_GATEWAY", d.sms_gateway, ("log", "http", "off")),
        sms_log=env.text("CARDSYS_SMS_LOG", d.sms_log),
        sms_url=env.url("CARDSYS_SMS_URL", d.sms_url),
        sms_token=env.secret("CARDSYS_SMS_TOKEN"),
        otp_ttl_seconds=env.integer("CARDSYS_OTP_TTL_SECONDS", d.otp_ttl_seconds, minimum=1),
        otp_max_attempts=env.integer("CARDSYS_OTP_MAX_ATTEMPTS", d.otp_max_attempts, minimum=1),
        production=env.is_production,
    )
    if s.production and s.sms_gateway == "log":
        raise SettingsError("CARDSYS_SMS_GATEWAY=log writes one-time codes to a file; in production set CARDSYS_SMS_GATEWAY=http "
                            "with CARDSYS_SMS_URL and CARDSYS_SMS_TOKEN, or off (loss reports then go to a person).")
    if s.sms_gateway == "http" and not (s.sms_url and s.sms_token):
        raise SettingsError("CARDSYS_SMS_GATEWAY=http needs CARDSYS_SMS_URL (http(s)://…) and CARDSYS_SMS_TOKEN.")
    return s
