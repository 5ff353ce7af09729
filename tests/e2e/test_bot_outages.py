"""A part of the bot goes away mid-conversation, in the real stack (docs/reliability.md, "When a part of the bot
is down"): the action server hangs (SIGSTOP) — Rasa gives up on the action after RASA_ACTION_TIMEOUT_S, the
citizen gets an answer and "转人工" still reaches the desk; Rasa is killed (SIGKILL) — the citizen's line is
kept and answered by itself once Rasa is back. Each process is running again when its test ends."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import browser, chat
from tests.e2e.processes import ROOT, Service

pytestmark = pytest.mark.stack
SERVICE = {"Authorization": f"Bearer {os.environ.get('SERVICE_TOKEN', 'dev-service-token')}"}


def texts(lines: list[dict]) -> list[str]:
    return [m["text"] for m in lines if m["role"] in ("bot", "system")]


def wait_until(check, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"{what}: not within {seconds:.0f} s"
        time.sleep(1)


def test_a_hung_action_server_costs_seconds_not_minutes_and_a_person_is_still_reached(stack, cid):
    actions = Service.find("actions.server")
    os.kill(actions.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        lines = chat(stack, cid, "社保卡丢了怎么补办")
        waited = time.monotonic() - started
        # Rasa gave up on the action after RASA_ACTION_TIMEOUT_S and ended the turn with its notice (the web
        # app's own limit, 30 s, would have given "暂时无法连接" instead; Rasa's default is 300 s)
        bot = [m for m in lines if m["role"] == "bot"]
        assert bot and (bot[-1]["payload"].get("custom") or {}).get("action_failed") == "action_answer_from_kb", \
            (lines, waited)
        lines = chat(stack, cid, "转人工")
        assert any("正在为您转接" in t for t in texts(lines)), lines
        conversation = browser(stack, cid)[1]
        h = httpx.get(f"{stack['webapp']}/api/handoff/{conversation}", headers=SERVICE, timeout=10).json()
        assert h["status"] == "queued" and "网页直接转人工" in h["reason"], h
    finally:
        os.kill(actions.pid, signal.SIGCONT)
    lines = chat(stack, cid, "回到机器人")  # leaves the queue (the desk tests expect their own hand-offs only)
    assert any("回到智能客服" in t for t in texts(lines)), lines
    # the action server answers again: a knowledge answer with its entry
    lines = chat(stack, cid, "社保卡丢了怎么补办")
    assert any((m["payload"].get("custom") or {}).get("kb") for m in lines if m["role"] == "bot"), lines


def test_a_line_sent_while_rasa_is_down_is_answered_when_rasa_is_back(stack, cid):
    rasa = Service.find("rasa", "run", "--enable-api")
    os.kill(rasa.pid, signal.SIGKILL)
    log = ROOT / os.environ.get("RUN_DIR", "var/test") / "log" / "rasa.log"
    try:
        lines = chat(stack, cid, "失业金能领几个月")
        assert any("恢复后会自动回复您" in t for t in texts(lines)), lines
    finally:
        rasa = rasa.restart(Path(log))
    status = f"{stack['rasa']}/status?token={stack['rasa_token']}"
    wait_until(lambda: _answers(status), 300, "Rasa did not come back")
    client, _ = browser(stack, cid)

    def answered() -> list[dict]:
        messages = client.get("/api/chat/state").json()["messages"]
        resumed = [i for i, m in enumerate(messages) if "智能客服已恢复" in m["text"]]
        return [m for m in messages[resumed[0] + 1:] if m["role"] == "bot"] if resumed else []

    # the web app looks for Rasa every few seconds and answers the missed line by itself
    bot = wait_until(answered, 60, "the missed line was not answered after Rasa came back")
    assert (bot[0]["payload"].get("custom") or {}).get("kb"), bot  # the knowledge base's reply to it
    lines = chat(stack, cid, "社保卡丢了怎么补办")  # and the conversation goes on
    assert any((m["payload"].get("custom") or {}).get("kb") for m in lines if m["role"] == "bot"), lines


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=3).status_code == 200
    except httpx.HTTPError:
        return False
