"""Settings of the action server: the documented defaults, `load_settings()`, and the settings in use.

Every key is in .env.example; how they are read is common/settings.py. `python -m actions.server` reads
and checks them at start (`use(load_settings())`); the actions ask `current()`.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from common.secrets import DEV_DEFAULTS, Secret
from common.settings import Env
from knowledge.embedding import DEFAULT_PRECISION, PRECISIONS

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    """What the action server needs to know about its surroundings (defaults: development)."""

    host: str = "127.0.0.1"
    port: int = 5055
    kb_content_dir: Path = ROOT / "knowledge" / "content"
    kb_cache_dir: Path = ROOT / "var" / "kb_cache"
    # index the knowledge base when the server starts rather than at the first question
    kb_preload: bool = False
    # name or local folder of the sentence-embedding model; "off" = lexical retrieval only
    embedding_model: str = str(ROOT / "models" / "e5-small-shebao")
    # "int8" (quantised linear layers, about twice as fast) or "fp32"; see docs/bench_retrieval.md
    embedding_precision: str = DEFAULT_PRECISION
    # torch threads per query embedding: 1 keeps latency steady while other requests run on the second core
    embedding_threads: int = 1
    # seconds between checks for changed knowledge content (0 = check on every question)
    kb_watch_seconds: float = 5.0
    # the desk's knowledge tables (knowledge/editorial.py) in the web app's database: the bot answers with the
    # published entries ("" = the content files alone; `make run` sets it to WEBAPP_DATABASE_URL)
    kb_database_url: str = ""
    webapp_url: str = "http://127.0.0.1:8080"
    action_token: Secret = field(default_factory=lambda: Secret(DEV_DEFAULTS["ACTION_TOKEN"]))
    service_token: Secret = field(default_factory=lambda: Secret(DEV_DEFAULTS["SERVICE_TOKEN"]))
    max_message_chars: int = 500

    def __post_init__(self) -> None:
        for name in ("action_token", "service_token"):
            if not isinstance(getattr(self, name), Secret):  # tests may pass plain strings
                object.__setattr__(self, name, Secret(getattr(self, name)))


def load_settings(env: Mapping[str, str] | Env | None = None) -> Settings:
    """Read and check the settings (default: os.environ); SettingsError names the variable to fix."""
    env, d = Env.of(env), Settings()
    return Settings(
        host=env.text("ACTION_HOST", d.host),
        port=env.integer("ACTION_PORT", d.port, minimum=1),
        kb_content_dir=env.path("KB_CONTENT_DIR", d.kb_content_dir),
        kb_cache_dir=env.path("KB_CACHE_DIR", d.kb_cache_dir),
        kb_preload=env.flag("KB_PRELOAD", d.kb_preload),
        embedding_model=env.text("EMBEDDING_MODEL", d.embedding_model),
        embedding_precision=env.choice("EMBEDDING_PRECISION", d.embedding_precision, PRECISIONS),
        embedding_threads=env.integer("EMBEDDING_THREADS", d.embedding_threads, minimum=1),
        kb_watch_seconds=env.number("KB_WATCH_SECONDS", d.kb_watch_seconds, minimum=0),
        kb_database_url=env.url("KB_DATABASE_URL", d.kb_database_url, schemes=("sqlite", "postgresql")),
        webapp_url=env.url("WEBAPP_URL", d.webapp_url),
        action_token=env.secret("ACTION_TOKEN"),
        service_token=env.secret("SERVICE_TOKEN"),
        max_message_chars=env.integer("MAX_MESSAGE_CHARS", d.max_message_chars, minimum=1),
    )


_in_use: Settings | None = None


def use(settings: Settings) -> Settings:
    """Make `settings` the ones the actions use (the server's start, after load_settings())."""
    global _in_use
    _in_use = settings
    return settings


def current() -> Settings:
    """The settings the actions use: those given to use(), else read from the environment once."""
    return _in_use if _in_use is not None else use(load_settings())
