"""End-to-end fixtures: the real stack started by scripts/test.sh (scripts/run.sh --detach)."""
from __future__ import annotations

import os
import uuid

import httpx
import pytest


def _stack_up(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="session")
def stack() -> dict[str, str]:
    """URLs of the running system; fails (not skips) when scripts/test.sh promised a stack."""
    urls = {"webapp": os.environ.get("WEBAPP_URL", "http://127.0.0.1:8080"),
            "rasa": os.environ.get("RASA_URL", "http://127.0.0.1:5005"),
            "rasa_token": os.environ.get("RASA_TOKEN", "dev-rasa-token")}
    if not _stack_up(urls["webapp"]):
        if os.environ.get("E2E_REQUIRED") == "1":
            pytest.fail(f"the system is not running at {urls['webapp']} (scripts/test.sh starts it)")
        pytest.skip("end-to-end tests need the running system: run them with `make test`")
    return urls


@pytest.fixture()
def cid() -> str:
    """A fresh conversation id."""
    return "e2e" + uuid.uuid4().hex


def chat(stack: dict[str, str], cid: str, text: str, display: str | None = None) -> list[dict]:
    """Send one citizen line through the web app; returns the new transcript lines."""
    r = httpx.post(stack["webapp"] + "/api/chat/message", json={"cid": cid, "text": text, "display": display}, timeout=60)
    r.raise_for_status()
    return r.json()["messages"]
