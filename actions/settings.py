"""Settings of the action server, read once from the environment (all keys in .env.example)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from knowledge.embedding import DEFAULT_PRECISION

ROOT = Path(__file__).resolve().parent.parent


def _path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value) if value else default


@dataclass(frozen=True)
class Settings:
    """What the action server needs to know about its surroundings."""

    kb_content_dir: Path = _path("KB_CONTENT_DIR", ROOT / "knowledge" / "content")
    kb_cache_dir: Path = _path("KB_CACHE_DIR", ROOT / "var" / "kb_cache")
    # name or local folder of the sentence-embedding model; "off" = lexical retrieval only
    embedding_model: str = os.environ.get("EMBEDDING_MODEL", str(ROOT / "models" / "e5-small-shebao"))
    # "int8" (default: quantised linear layers, about twice as fast) or "fp32"; see docs/bench_retrieval.md
    embedding_precision: str = os.environ.get("EMBEDDING_PRECISION") or DEFAULT_PRECISION
    # torch threads per query embedding: 1 keeps latency steady while other requests run on the second core
    embedding_threads: int = int(os.environ.get("EMBEDDING_THREADS", "1"))
    # seconds between checks for changed knowledge content (0 = check on every question)
    kb_watch_seconds: float = float(os.environ.get("KB_WATCH_SECONDS", "5"))
    webapp_url: str = os.environ.get("WEBAPP_URL", "http://127.0.0.1:8080")
    service_token: str = os.environ.get("SERVICE_TOKEN", "dev-service-token")
    max_message_chars: int = int(os.environ.get("MAX_MESSAGE_CHARS", "500"))


settings = Settings()
