"""Settings of the supervision analytics, read from the environment when `load_settings()` is called."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ROOT = Path(__file__).resolve().parent.parent


def _sqlite(name: str) -> str:
    return f"sqlite:///{ROOT / 'var' / name}"


@dataclass(frozen=True)
class Settings:
    """Where the analytics store lives, where the services' data is read from, and the alert hook."""

    # the analytics store: SQLite file by default, postgresql+psycopg://… in production
    database_url: str = field(default_factory=lambda: os.environ.get("ANALYTICS_DATABASE_URL", _sqlite("analytics.db")))
    # the sources, each read by URL, never changed: Rasa's event broker table, the tracker store (backfill),
    # the web app's database and the voice gateway's call store (a file path or a sqlite:/// URL)
    rasa_events_url: str = field(default_factory=lambda: os.environ.get("RASA_EVENTS_URL", _sqlite("rasa_events.db")))
    tracker_store_url: str = field(default_factory=lambda: os.environ.get("TRACKER_STORE_URL", _sqlite("rasa_tracker.db")))
    webapp_database_url: str = field(default_factory=lambda: os.environ.get("WEBAPP_DATABASE_URL", _sqlite("webapp.db")))
    voice_db_path: str = field(default_factory=lambda: os.environ.get("VOICE_DB_PATH", str(ROOT / "var" / "voice_calls.sqlite3")))
    # figures are counted by the centre's local hour, day and month
    timezone: str = field(default_factory=lambda: os.environ.get("ANALYTICS_TIMEZONE", "Asia/Shanghai"))
    # a web hand-off still waiting this long for a seat counts as abandoned by the citizen
    abandon_minutes: int = field(default_factory=lambda: int(os.environ.get("ANALYTICS_ABANDON_MINUTES", "30")))
    # alerts are also POSTed here as JSON when set (e.g. the centre's duty chat robot)
    alert_webhook: str = field(default_factory=lambda: os.environ.get("ANALYTICS_ALERT_WEBHOOK", ""), repr=False)

    @property
    def zone(self) -> ZoneInfo:
        """The local time zone."""
        return ZoneInfo(self.timezone)


def redact_url(url: str) -> str:
    """The URL with its password hidden, for messages."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def load_settings() -> Settings:
    """Read and check the settings; ValueError names the variable to fix."""
    try:
        settings = Settings()
    except ValueError:
        raise ValueError("Set ANALYTICS_ABANDON_MINUTES to a whole number of minutes.") from None
    try:
        ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"Set ANALYTICS_TIMEZONE to an IANA time zone such as Asia/Shanghai (got {settings.timezone!r}).") from None
    for key, url in (("ANALYTICS_DATABASE_URL", settings.database_url), ("RASA_EVENTS_URL", settings.rasa_events_url),
                     ("TRACKER_STORE_URL", settings.tracker_store_url), ("WEBAPP_DATABASE_URL", settings.webapp_database_url)):
        if "://" not in url:
            raise ValueError(f"Set {key} to a database URL such as sqlite:///var/analytics.db (got {redact_url(url)!r}).")
    if settings.alert_webhook and not settings.alert_webhook.startswith(("http://", "https://")):
        raise ValueError("Set ANALYTICS_ALERT_WEBHOOK to an http:// or https:// URL, or leave it empty.")
    return settings


def settings_for_month(month: str) -> Settings:
    """The settings, for a command given --month YYYY-MM; ValueError names what is wrong (the month or a setting)."""
    import datetime as dt

    dt.date.fromisoformat(month + "-01")
    return load_settings()
