"""Rasa's tracker store survives a PostgreSQL restart: a pooled connection the server dropped is replaced before
use (bot/tracker_store.py), so the next turn reads the conversation instead of failing — where Rasa would fall
back to an empty in-memory tracker and the citizen's slots, form and verified identity would be lost
(found by `scripts/faults.py --postgres`). Runs in the Rasa environment on a scratch PostgreSQL database."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
RASA_PYTHON = Path(os.environ.get("RASA_VENV", ROOT / ".venv" / "rasa")) / "bin" / "python"


@pytest.mark.skipif(not RASA_PYTHON.exists(), reason="the Rasa environment is not built (make setup)")
def test_a_dropped_pooled_connection_does_not_lose_the_conversation(postgres_url):
    url = make_url(postgres_url).set(drivername="postgresql").render_as_string(hide_password=False)  # psycopg2
    done = subprocess.run([str(RASA_PYTHON), str(ROOT / "tests" / "service" / "rasa_tracker_reconnect_probe.py")],
                          input=json.dumps({"url": url}), capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert any(line.startswith("terminated ") and int(line.split()[1]) >= 1 for line in lines), done.stdout
    assert "retrieved 2" in lines, done.stdout + done.stderr[-2000:]
