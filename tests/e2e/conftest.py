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
            "rasa_token": os.environ.get("RASA_TOKEN", "dev-rasa-token"),
            "channel_token": os.environ.get("CHANNEL_TOKEN", "dev-channel-token")}
    if not _stack_up(urls["webapp"]):
        if os.environ.get("E2E_REQUIRED") == "1":
            pytest.fail(f"the system is not running at {urls['webapp']} (scripts/test.sh starts it)")
        pytest.skip("end-to-end tests need the running system: run them with `make test`")
    return urls


@pytest.fixture()
def cid() -> str:
    """A fresh citizen (a browser of its own); conversation_id() gives the id the server chose for it."""
    return "e2e" + uuid.uuid4().hex


_BROWSERS: dict[str, tuple[httpx.Client, str]] = {}


def browser(stack: dict[str, str], key: str) -> tuple[httpx.Client, str]:
    """A citizen's browser (keeps the signed conversation cookie) and its conversation id."""
    if key not in _BROWSERS:
        client = httpx.Client(base_url=stack["webapp"], timeout=60)
        r = client.get("/api/chat/state")
        r.raise_for_status()
        _BROWSERS[key] = (client, r.json()["cid"])
    return _BROWSERS[key]


def conversation_id(stack: dict[str, str], key: str) -> str:
    """The conversation id the web app chose for this citizen (Rasa's sender id)."""
    return browser(stack, key)[1]


def chat(stack: dict[str, str], cid: str, text: str, display: str | None = None) -> list[dict]:
    """Send one citizen line through the web app as that citizen's browser; returns the new transcript lines."""
    client, _ = browser(stack, cid)
    r = client.post("/api/chat/message", json={"text": text, "display": display})
    r.raise_for_status()
    return r.json()["messages"]
