"""The hand-off's time limit end to end (real Rasa, action server and web app): nobody claims a 转人工 within
HANDOFF_WAIT_SECONDS, the citizen is offered a callback work order, takes it, the desk sees the work order, and
the bot answers again; and 回到机器人 while queued. scripts/test.sh runs the stack with a short limit."""
from __future__ import annotations

import os
import time

import httpx
import pytest

from tests.e2e.conftest import browser, chat

pytestmark = pytest.mark.stack
WAIT = float(os.environ.get("HANDOFF_WAIT_SECONDS", "300"))


def bot_replies(lines: list[dict]) -> str:
    return "\n".join(m["text"] for m in lines if m["role"] in ("bot", "system"))


def test_an_unclaimed_handoff_ends_in_a_callback_work_order_the_desk_sees(stack, cid):
    if WAIT > 120:
        message = f"HANDOFF_WAIT_SECONDS={WAIT:.0f}: the stack must run with a short limit (scripts/test.sh sets it)"
        if os.environ.get("E2E_REQUIRED") == "1":
            pytest.fail(message)
        pytest.skip(message)
    lines = chat(stack, cid, "转人工")
    assert "回到机器人" in bot_replies(lines), lines  # the web app's hand-off answer, spoken by the real action
    client, _ = browser(stack, cid)
    deadline = time.monotonic() + WAIT + 60
    while True:
        state = client.get("/api/chat/state").json()
        offer = [m for m in state["messages"] if m["role"] == "system" and m["payload"].get("buttons")]
        if offer:
            break
        assert state["handoff"] is not None, state  # queued until the limit, never silently dropped
        assert time.monotonic() < deadline, "no offer after the waiting limit"
        time.sleep(2)
    assert [b["payload"] for b in offer[-1]["payload"]["buttons"]] == ["/handoff_callback", "/back_to_bot"]
    lines = chat(stack, cid, "/handoff_callback", "预约回电")
    done = next(m for m in lines if m["payload"].get("workorder"))
    wid = done["payload"]["workorder"]
    with httpx.Client(base_url=stack["webapp"], timeout=30) as desk:
        r = desk.post("/desk/login", json={"username": "agent1", "password": "agent1-demo"})
        assert r.status_code == 200, r.text
        orders = desk.get("/desk/api/workorders").json()["workorders"]
    mine = [o for o in orders if o["id"] == wid]
    assert mine and mine[0]["conversation_id"] == state["cid"] and mine[0]["title"].startswith("回电")
    lines = chat(stack, cid, "/back_to_bot", "回到机器人")
    lines = chat(stack, cid, "电子社保卡咋领 用啥app")
    assert any(m["role"] == "bot" for m in lines), lines  # Rasa answers the conversation again


def test_back_to_the_bot_while_queued_and_the_bot_answers(stack, cid):
    chat(stack, cid, "转人工")
    lines = chat(stack, cid, "回到机器人")
    assert "回到智能客服" in bot_replies(lines), lines
    client, _ = browser(stack, cid)
    assert client.get("/api/chat/state").json()["handoff"] is None
    lines = chat(stack, cid, "社保卡丢了咋办")
    assert any(m["role"] == "bot" and "社保卡" in m["text"] for m in lines), lines
