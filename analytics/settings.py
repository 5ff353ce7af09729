"""Settings of the supervision analytics: the documented defaults, and `load_settings()` reading the environment.

Every key is in .env.example; how they are read is common/settings.py.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from common.settings import Env, SettingsError, redact_url

ROOT = Path(__file__).resolve().parent.parent
__all__ = ["ROOT", "Settings", "SettingsError", "load_settings", "redact_url", "settings_for_month"]


def _sqlite(name: str) -> str:
    return f"sqlite:///{ROOT / 'var' / name}"


@dataclass(frozen=True)
class Settings:
    """Where the analytics store lives, where the services' data is read from, and the alert hook."""

    # the analytics store: SQLite file by default, postgresql+psycopg://… in production
    database_url: str = _sqlite("analytics.db")
    # the sources, each read by URL, never changed: Rasa's event broker table, the tracker store (backfill),
    # the web app's database and the voice gateway's call store (a file path or a sqlite:/// URL)
    rasa_events_url: str = _sqlite("rasa_events.db")
    tracker_store_url: str = _sqlite("rasa_tracker.db")
    webapp_database_url: str = _sqlite("webapp.db")
    voice_db_path: str = str(ROOT / "var" / "voice_calls.sqlite3")
    # figures are counted by the centre's local hour, day and month
    timezone: str = "Asia/Shanghai"
    # a web hand-off still waiting this long for a seat counts as abandoned by the citizen
    abandon_minutes: int = 30
    # alerts are also POSTed here as JSON when set (e.g. the centre's duty chat robot)
    alert_webhook: str = field(default="", repr=False)

    @property
    def zone(self) -> ZoneInfo:
        """The local time zone."""
        return ZoneInfo(self.timezone)


def load_settings(env: Mapping[str, str] | Env | None = None) -> Settings:
    """Read and check the settings (default: os.environ); SettingsError names the variable to fix."""
    env, d = Env.of(env), Settings()
    env.app_env()  # one rule for every service: an unknown APP_ENV stops it at start
    timezone = env.text("ANALYTICS_TIMEZONE", d.timezone)
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"Set ANALYTICS_TIMEZONE to an IANA time zone such as Asia/Shanghai (got {timezone!r}).") from None

    def database(key: str, default: str) -> str:
        return env.url(key, default, schemes=None, example="sqlite:///var/analytics.db")

    return Settings(
        database_url=database("ANALYTICS_DATABASE_URL", d.database_url),
        rasa_events_url=database("RASA_EVENTS_URL", d.rasa_events_url),
        tracker_store_url=database("TRACKER_STORE_URL", d.tracker_store_url),
        webapp_database_url=database("WEBAPP_DATABASE_URL", d.webapp_database_url),
        voice_db_path=env.text("VOICE_DB_PATH", d.voice_db_path),
        timezone=timezone,
        abandon_minutes=env.integer("ANALYTICS_ABANDON_MINUTES", d.abandon_minutes, minimum=1),
        alert_webhook=env.url("ANALYTICS_ALERT_WEBHOOK", d.alert_webhook),
    )


def settings_for_month(month: str) -> Settings:
    """The settings, for a command given --month YYYY-MM; ValueError names what is wrong (the month or a setting)."""
    import datetime as dt

    dt.date.fromisoformat(month + "-01")
    return load_settings()
