"""Settings of the web app, read once from the environment (all keys in .env.example)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from analytics.settings import Settings as AnalyticsSettings
from analytics.settings import load_settings as load_analytics_settings
from common.secrets import Secret, secret

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    """What the web app needs to know about its surroundings."""

    host: str = os.environ.get("WEBAPP_HOST", "127.0.0.1")
    port: int = int(os.environ.get("WEBAPP_PORT", "8080"))
    rasa_url: str = os.environ.get("RASA_URL", "http://127.0.0.1:5005")
    rasa_token: Secret = field(default_factory=lambda: secret("RASA_TOKEN"))
    channel_token: Secret = field(default_factory=lambda: secret("CHANNEL_TOKEN"))
    # one URL selects the database: SQLite file by default, postgresql+psycopg://… in production
    database_url: str = os.environ.get("WEBAPP_DATABASE_URL", f"sqlite:///{ROOT / 'var' / 'webapp.db'}")
    service_token: Secret = field(default_factory=lambda: secret("SERVICE_TOKEN"))
    session_secret: Secret = field(default_factory=lambda: secret("SESSION_SECRET"))
    # development mode creates demo agent accounts (never in production)
    dev_mode: bool = os.environ.get("APP_ENV", "development") == "development"
    max_message_chars: int = int(os.environ.get("MAX_MESSAGE_CHARS", "500"))
    rasa_timeout: float = float(os.environ.get("RASA_TIMEOUT", "30"))
    # working hours of the expert seat: "HH:MM-HH:MM" on the listed weekdays (1=Monday)
    desk_hours: str = os.environ.get("DESK_HOURS", "00:00-24:00")
    desk_days: str = os.environ.get("DESK_DAYS", "1,2,3,4,5,6,7")
    # time limits of a web chat's hand-off (docs/reliability.md): unclaimed this long -> the citizen is offered a
    # callback work order or the bot; the chat page gone this long while queued or served -> closed as abandoned
    handoff_wait_seconds: float = float(os.environ.get("HANDOFF_WAIT_SECONDS", "300"))
    handoff_abandon_seconds: float = float(os.environ.get("HANDOFF_ABANDON_SECONDS", "120"))
    handoff_callback_hours: int = int(os.environ.get("HANDOFF_CALLBACK_HOURS", "24"))  # deadline of a callback work order
    # the supervisors' alerts and monthly reports (webapp/supervision.py): the analytics store and time zone as
    # analytics reads them (ANALYTICS_DATABASE_URL, ANALYTICS_TIMEZONE), and the folder `make report` writes to
    analytics: AnalyticsSettings = field(default_factory=load_analytics_settings, repr=False)
    reports_dir: Path = ROOT / "var" / "reports"


def load_settings() -> Settings:
    """Read and check the settings; raises ValueError (SecretError) naming the variable to fix."""
    settings = Settings()
    if settings.handoff_wait_seconds <= 0 or settings.handoff_abandon_seconds <= 0 or settings.handoff_callback_hours <= 0:
        raise ValueError("HANDOFF_WAIT_SECONDS, HANDOFF_ABANDON_SECONDS and HANDOFF_CALLBACK_HOURS must be positive numbers")
    return settings
