"""Settings of the web app: the documented defaults, and `load_settings()` reading the environment at start.

Every key is in .env.example; how they are read is common/settings.py.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from analytics.settings import Settings as AnalyticsSettings
from analytics.settings import load_settings as load_analytics_settings
from common.events import EventSettings
from common.secrets import DEV_DEFAULTS, Secret
from common.settings import Env, SettingsError

ROOT = Path(__file__).resolve().parent.parent


def _dev(name: str) -> Secret:
    return Secret(DEV_DEFAULTS[name])


@dataclass(frozen=True)
class Settings:
    """What the web app needs to know about its surroundings (defaults: development)."""

    host: str = "127.0.0.1"
    port: int = 8080
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_token: Secret = field(default_factory=lambda: _dev("RASA_TOKEN"))
    channel_token: Secret = field(default_factory=lambda: _dev("CHANNEL_TOKEN"))
    # one URL selects the database: SQLite file by default, postgresql+psycopg://… in production
    database_url: str = f"sqlite:///{ROOT / 'var' / 'webapp.db'}"
    service_token: Secret = field(default_factory=lambda: _dev("SERVICE_TOKEN"))
    session_secret: Secret = field(default_factory=lambda: _dev("SESSION_SECRET"))
    # development mode (APP_ENV=development) creates demo agent accounts and plain-HTTP cookies; never in production
    dev_mode: bool = True
    max_message_chars: int = 500
    # chat WebSockets open at once from one client address (tabs of a family or an office behind one router);
    # one more is answered with a Chinese notice and closed (docs/reliability.md "Bounded everything")
    chat_max_connections_per_source: int = 20
    # the live events (agent replies, desk events) across web app replicas: a Redis URL, e.g.
    # redis://127.0.0.1:6379/2 (webapp/hub.py); empty: in-process only, as for one web app
    hub_redis_url: str = ""
    rasa_timeout: float = 30.0
    # working hours of the expert seat: "HH:MM-HH:MM" on the listed weekdays (1=Monday)
    desk_hours: str = "00:00-24:00"
    desk_days: str = "1,2,3,4,5,6,7"
    # time limits of a web chat's hand-off (docs/reliability.md): unclaimed this long -> the citizen is offered a
    # callback work order or the bot; the chat page gone this long while queued or served -> closed as abandoned
    handoff_wait_seconds: float = 300.0
    handoff_abandon_seconds: float = 120.0
    handoff_callback_hours: int = 24  # deadline of a callback work order
    # the supervisors' alerts and monthly reports (webapp/supervision.py): the analytics store and time zone as
    # analytics reads them (ANALYTICS_DATABASE_URL, ANALYTICS_TIMEZONE), and the folder `make report` writes to
    analytics: AnalyticsSettings = field(default_factory=AnalyticsSettings, repr=False)
    reports_dir: Path = ROOT / "var" / "reports"
    # the repository's knowledge content: the seed of the desk's knowledge tables (webapp/kb_editor.py)
    kb_content_dir: Path = ROOT / "knowledge" / "content"
    # the browser softphone (/phone): the voice gateway's address (from VOICE_HTTP_HOST/PORT) and the token its
    # media stream asks for; the web app presents it server side, the browser never sees it
    voice_url: str = "http://127.0.0.1:8081"
    media_stream_token: Secret = field(default_factory=lambda: _dev("MEDIA_STREAM_TOKEN"))
    # hand-off, rating and work-order events for the analytics (common/events.py), where Rasa's broker publishes
    # (RASA_EVENTS_URL, RASA_EVENTS_QUEUE); a constructed Settings publishes nothing, load_settings() does
    events: EventSettings = field(default_factory=EventSettings)

    def __post_init__(self) -> None:
        for name in ("rasa_token", "channel_token", "service_token", "session_secret", "media_stream_token"):
            if not isinstance(getattr(self, name), Secret):  # tests may pass plain strings
                object.__setattr__(self, name, Secret(getattr(self, name)))


def load_settings(env: Mapping[str, str] | Env | None = None) -> Settings:
    """Read and check the settings (default: os.environ); SettingsError names the variable to fix."""
    env, d = Env.of(env), Settings()
    desk_hours = env.text("DESK_HOURS", d.desk_hours)
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d-(([01]\d|2[0-3]):[0-5]\d|24:00)", desk_hours):
        raise SettingsError(f"Set DESK_HOURS to opening hours as HH:MM-HH:MM, e.g. 08:30-17:00 (got {desk_hours!r}).")
    desk_days = env.text("DESK_DAYS", d.desk_days)
    if not re.fullmatch(r"[1-7](,[1-7])*", desk_days.replace(" ", "")):
        raise SettingsError(f"Set DESK_DAYS to weekdays 1-7 separated by commas, e.g. 1,2,3,4,5 (got {desk_days!r}).")
    analytics = load_analytics_settings(env)
    return Settings(
        host=env.text("WEBAPP_HOST", d.host),
        port=env.integer("WEBAPP_PORT", d.port, minimum=1),
        rasa_url=env.url("RASA_URL", d.rasa_url),
        rasa_token=env.secret("RASA_TOKEN"),
        channel_token=env.secret("CHANNEL_TOKEN"),
        database_url=env.url("WEBAPP_DATABASE_URL", d.database_url, schemes=("sqlite", "postgresql"),
                             example="postgresql+psycopg://user:pass@host:5432/hotline"),
        service_token=env.secret("SERVICE_TOKEN"),
        session_secret=env.secret("SESSION_SECRET"),
        dev_mode=not env.is_production,
        max_message_chars=env.integer("MAX_MESSAGE_CHARS", d.max_message_chars, minimum=1),
        chat_max_connections_per_source=env.integer("CHAT_MAX_CONNECTIONS_PER_SOURCE",
                                                    d.chat_max_connections_per_source, minimum=1),
        hub_redis_url=env.url("HUB_REDIS_URL", d.hub_redis_url, schemes=("redis", "rediss", "unix"),
                              example="redis://redis:6379/2"),
        rasa_timeout=env.number("RASA_TIMEOUT", d.rasa_timeout, positive=True),
        desk_hours=desk_hours,
        desk_days=desk_days,
        handoff_wait_seconds=env.number("HANDOFF_WAIT_SECONDS", d.handoff_wait_seconds, positive=True),
        handoff_abandon_seconds=env.number("HANDOFF_ABANDON_SECONDS", d.handoff_abandon_seconds, positive=True),
        handoff_callback_hours=env.integer("HANDOFF_CALLBACK_HOURS", d.handoff_callback_hours, minimum=1),
        analytics=analytics,
        reports_dir=d.reports_dir,
        kb_content_dir=env.path("KB_CONTENT_DIR", d.kb_content_dir),
        voice_url=_voice_url(env),
        media_stream_token=env.secret("MEDIA_STREAM_TOKEN"),
        events=EventSettings.from_env(env, default_url=analytics.rasa_events_url),
    )


def _voice_url(env: Env) -> str:
    """Where the web app reaches the voice gateway: its own bind address (a wildcard means this host)."""
    host = env.text("VOICE_HTTP_HOST", "127.0.0.1")
    host = "127.0.0.1" if host in ("", "0.0.0.0") else "[::1]" if host == "::" else host
    return f"http://{host}:{env.integer('VOICE_HTTP_PORT', 8081, minimum=1)}"
