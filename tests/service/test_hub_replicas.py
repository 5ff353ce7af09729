"""Two web app replicas on one database and one Redis (HUB_REDIS_URL): the live events cross them.

The citizen's chat page and an agent's desk page are on replica B; the hand-off, the claim and the agent's reply
go through replica A — as when the load balancer sends the citizen and the agent to different pods.
"""
from __future__ import annotations

import asyncio
import json
import secrets
import time

import httpx
import pytest
import websockets

from tests.service.test_desk import TOKEN
from tests.service.test_hub_redis import reachable_redis
from tests.voice.doubles import serve
from webapp.app import create_app
from webapp.rasa_client import RasaClient
from webapp.settings import Settings
from webapp.store import Handoff


@pytest.fixture()
def redis_url() -> str:
    return reachable_redis()


def replica(database_url: str, redis_url: str, channel: str, **settings):
    app = create_app(Settings(database_url=database_url, hub_redis_url=redis_url, **settings),
                     name=f"r{secrets.token_hex(4)}")
    app.ctx.hub.channel = channel  # this test's own channel (pub/sub ignores the database number)
    return app


async def next_of(ws, kind: str, seconds: float = 10.0) -> dict:
    """The next event of this type on the WebSocket (others skipped)."""
    deadline = time.monotonic() + seconds
    while True:
        event = json.loads(await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic())))
        if event["type"] == kind:
            return event


async def events_for(ws, seconds: float) -> list[dict]:
    """Every event the WebSocket receives for a while."""
    got: list[dict] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            got.append(json.loads(await asyncio.wait_for(ws.recv(), left)))
        except asyncio.TimeoutError:
            break
    return got


async def test_a_reply_through_one_replica_reaches_the_citizen_and_the_desk_on_the_other(tmp_path, monkeypatch,
                                                                                           redis_url) -> None:
    async def fake_send(self, sender, text, metadata=None, channel="web"):
        return [{"recipient_id": sender, "text": "机器人回答：" + text}]

    monkeypatch.setattr(RasaClient, "send", fake_send)
    database, channel = f"sqlite:///{tmp_path}/webapp.db", f"test:hub:{secrets.token_hex(6)}"
    a = replica(database, redis_url, channel, handoff_abandon_seconds=1)
    b = replica(database, redis_url, channel, handoff_abandon_seconds=1)
    async with serve(a) as port_a, serve(b) as port_b, \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port_a}") as via_a, \
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port_b}") as via_b:
        deadline = time.monotonic() + 10
        while not (a.ctx.hub.connected and b.ctx.hub.connected):
            assert time.monotonic() < deadline, "both replicas subscribed to Redis"
            await asyncio.sleep(0.02)
        r = await via_a.post("/desk/login", json={"username": "agent1", "password": "agent1-demo"})
        agent = {"Cookie": f"desk_session={r.cookies['desk_session']}"}  # a session of the shared database
        via_a.cookies.clear()
        page = await via_b.get("/api/chat/state")
        cid, citizen = page.json()["cid"], {"Cookie": f"chat_session={page.cookies['chat_session']}"}
        via_b.cookies.clear()
        async with websockets.connect(f"ws://127.0.0.1:{port_a}/desk/ws", additional_headers=agent) as desk_a, \
                websockets.connect(f"ws://127.0.0.1:{port_b}/desk/ws", additional_headers=agent) as desk_b:
            assert json.loads(await desk_a.recv())["type"] == "hello"
            assert json.loads(await desk_b.recv())["type"] == "hello"
            async with websockets.connect(f"ws://127.0.0.1:{port_b}/ws/chat", additional_headers=citizen) as chat_b:
                await the_agent_on_a_serves_the_citizen_on_b(a, via_a, agent, cid, chat_b, desk_b)
            # the page on B is gone: the hand-off closes as abandoned after the limit (on whichever replica's
            # clock), and the desk pages of both replicas hear of it
            for desk in (desk_a, desk_b):
                closed = await next_of(desk, "handoff_closed")
                assert closed["conversation_id"] == cid and closed["status"] == "abandoned"


async def the_agent_on_a_serves_the_citizen_on_b(a, via_a, agent, cid, chat_b, desk_b) -> None:
    assert json.loads(await chat_b.recv())["type"] == "state"
    # the hand-off comes in through A; B's desk page hears of it
    r = await via_a.post("/api/handoff", headers=TOKEN, json={
        "conversation_id": cid, "channel": "web", "queue": "社保卡", "reason": "市民要求人工",
        "summary": "社保卡丢了 电话13912345678"})
    hid = r.json()["id"]
    assert (await next_of(desk_b, "queue_changed"))["queue"] == "社保卡"
    # claimed and answered through A; B's chat page shows it, once
    assert (await via_a.post(f"/desk/api/handoffs/{hid}/claim", headers=agent)).status_code == 200
    assert (await next_of(chat_b, "handoff"))["handoff"]["status"] == "claimed"
    r = await via_a.post(f"/desk/api/handoffs/{hid}/reply", headers=agent, json={"text": "您好，我是坐席，请讲"})
    assert r.status_code == 200
    reply = await next_of(chat_b, "message")
    assert reply["message"]["role"] == "agent" and reply["message"]["text"] == "您好，我是坐席，请讲"
    assert (await next_of(desk_b, "agent_message"))["handoff_id"] == hid
    # the page on B counts on A too: A's hand-off clock (1 s) does not close the hand-off as abandoned
    later = await events_for(chat_b, 2.5)
    assert not [e for e in later if e["type"] == "message" and e["message"]["id"] == reply["message"]["id"]]
    assert a.ctx.store.call(lambda s: s.get(Handoff, hid).status) == "claimed"
