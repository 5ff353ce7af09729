"""Shared pytest fixtures and markers."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def pytest_configure(config):
    config.addinivalue_line("markers", "stack: needs the running system (scripts/run.sh --detach)")
    config.addinivalue_line("markers", "browser: drives headless Chromium")
    config.addinivalue_line("markers", "model: needs the local sentence-embedding model (make model)")
    config.addinivalue_line("markers", "prod: starts the production profile (scripts/run_prod.py) on the local PostgreSQL, Redis, RabbitMQ")
