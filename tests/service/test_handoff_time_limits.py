"""The hand-off never strands a citizen (docs/reliability.md): 回到机器人 at any time, an unclaimed hand-off
ends in an offer (callback work order or the bot), a citizen who left is not waited for, and the desk sees
each of these. The real app, on SQLite and on PostgreSQL."""
from __future__ import annotations

import asyncio
import json
import secrets

import httpx
import pytest
import websockets
from sqlalchemy import select

from tests.service.test_desk import TOKEN, browser, login
from tests.voice.doubles import serve
from webapp.app import create_app
from webapp.chat import wants_the_bot
from webapp.rasa_client import RasaClient
from webapp.settings import Settings
from webapp.store import Handoff, WorkOrder


def make_app(database_url: str, monkeypatch, **settings):
    async def fake_send(self, sender, text, metadata=None, channel="web"):
        return [{"recipient_id": sender, "text": "机器人回答：" + text}]

    monkeypatch.setattr(RasaClient, "send", fake_send)
    return create_app(Settings(database_url=database_url, **settings), name=f"t{secrets.token_hex(4)}")


async def hand_off(client, cid: str, channel: str = "web") -> dict:
    """Queue the conversation as the action server does (client: the in-process asgi_client or httpx)."""
    result = await client.post("/api/handoff", headers=TOKEN, json={"conversation_id": cid, "channel": channel,
                                                                    "queue": "社保卡", "reason": "市民要求人工",
                                                                    "summary": "社保卡丢了 电话13912345678"})
    return result[1].json if isinstance(result, tuple) else result.json()


async def say(app, citizen: dict, text: str, display: str | None = None) -> list[dict]:
    _, r = await app.asgi_client.post("/api/chat/message", headers=citizen, json={"text": text, "display": display})
    assert r.status == 200, r.text
    return r.json["messages"]


def status_of(app, hid: int) -> str:
    return app.ctx.store.call(lambda s: s.get(Handoff, hid).status)


@pytest.mark.parametrize("text", ["回到机器人", "返回机器人", "我要回到机器人", "回到智能客服吧", " 回到机器人！", "/back_to_bot"])
def test_the_words_that_mean_back_to_the_bot(text):
    assert wants_the_bot(text)


@pytest.mark.parametrize("text", ["我不想回到机器人", "机器人回答得不对", "转人工", "回到上一步"])
def test_other_lines_do_not_leave_the_queue(text):
    assert not wants_the_bot(text)


async def test_an_unclaimed_handoff_times_out_and_offers_a_callback_work_order(database_url, monkeypatch):
    app = make_app(database_url, monkeypatch, handoff_wait_seconds=1)
    cid, citizen = await browser(app)
    info = await hand_off(app.asgi_client, cid)
    assert "回到机器人" in info["message"]  # the web citizen learns the way back when queued
    await app.ctx.chat.sweep()
    assert status_of(app, info["id"]) == "queued"  # not before the limit
    await asyncio.sleep(1.1)
    await app.ctx.chat.sweep()
    assert status_of(app, info["id"]) == "timed_out"
    _, state = await app.asgi_client.get("/api/chat/state", headers=citizen)
    offer = state.json["messages"][-1]
    assert state.json["mode"] == "bot" and state.json["handoff"] is None
    assert "久等" in offer["text"] and [b["payload"] for b in offer["payload"]["buttons"]] == ["/handoff_callback", "/back_to_bot"]
    # an agent coming late is told it ended, not given a conversation nobody waits in
    agent = await login(app, "agent1", "agent1-demo")
    _, r = await app.asgi_client.post(f"/desk/api/handoffs/{info['id']}/claim", headers=agent)
    assert r.status == 409 and "等待超时" in r.json["error"]
    # the citizen asks for a callback: one work order of the hand-off's queue, linked to the conversation
    lines = await say(app, citizen, "/handoff_callback", "预约回电")
    assert "工单编号" in lines[-1]["text"]
    wid = lines[-1]["payload"]["workorder"]
    assert status_of(app, info["id"]) == "callback"
    lines = await say(app, citizen, "/handoff_callback", "预约回电")
    assert "已预约过" in lines[-1]["text"]
    # the next line is added to it (masked), then the bot answers again
    lines = await say(app, citizen, "下午三点后方便 电话13812345678")
    assert f"编号 {wid}" in lines[-1]["text"]
    lines = await say(app, citizen, "电子社保卡怎么领")
    assert lines[-1]["text"].startswith("机器人回答")
    _, w = await app.asgi_client.get("/desk/api/workorders", headers=agent)
    orders = w.json["workorders"]
    assert [o["id"] for o in orders] == [wid]
    assert orders[0]["category"] == "社保卡" and orders[0]["conversation_id"] == cid and orders[0]["created_by"] == "citizen"
    assert "下午三点后方便" in orders[0]["detail"] and "13812345678" not in orders[0]["detail"]
    assert "13912345678" not in orders[0]["detail"]
    _, d = await app.asgi_client.get(f"/desk/api/handoffs/{info['id']}", headers=agent)
    assert d.json["handoff"]["workorder_id"] == wid and d.json["handoff"]["closed"]


async def test_after_a_timeout_the_citizen_can_go_back_to_the_bot(database_url, monkeypatch):
    app = make_app(database_url, monkeypatch, handoff_wait_seconds=1)
    cid, citizen = await browser(app)
    info = await hand_off(app.asgi_client, cid)
    await asyncio.sleep(1.1)
    await app.ctx.chat.sweep()
    lines = await say(app, citizen, "/back_to_bot", "回到机器人")
    assert "智能客服" in lines[-1]["text"]
    lines = await say(app, citizen, "养老金怎么查")
    assert lines[-1]["text"] == "机器人回答：养老金怎么查"
    assert status_of(app, info["id"]) == "timed_out"
    assert app.ctx.store.call(lambda s: s.scalars(select(WorkOrder)).all()) == []


async def test_a_transfer_starts_the_waiting_limit_again(database_url, monkeypatch):
    app = make_app(database_url, monkeypatch, handoff_wait_seconds=1)
    cid, _ = await browser(app)
    info = await hand_off(app.asgi_client, cid)
    agent = await login(app, "agent1", "agent1-demo")
    _, r = await app.asgi_client.post(f"/desk/api/handoffs/{info['id']}/claim", headers=agent)
    assert r.status == 200
    await asyncio.sleep(1.1)
    _, r = await app.asgi_client.post(f"/desk/api/handoffs/{info['id']}/transfer", headers=agent, json={"queue": "综合"})
    assert r.status == 200
    await app.ctx.chat.sweep()
    assert status_of(app, info["id"]) == "queued"  # a whole wait in the new queue, not what is left of the first


@pytest.mark.parametrize("how", [("回到机器人", None), ("/back_to_bot", "回到机器人")])
async def test_back_to_the_bot_while_queued(database_url, monkeypatch, how):
    app = make_app(database_url, monkeypatch)
    cid, citizen = await browser(app)
    info = await hand_off(app.asgi_client, cid)
    lines = await say(app, citizen, "有人吗")
    assert [m["role"] for m in lines] == ["citizen"]  # queued: the bot is silent
    lines = await say(app, citizen, *how)
    assert "回到智能客服" in lines[-1]["text"] and "不再排队" in lines[-1]["text"]
    assert status_of(app, info["id"]) == "returned"
    lines = await say(app, citizen, "社保卡怎么补办")
    assert lines[-1]["text"] == "机器人回答：社保卡怎么补办"
    agent = await login(app, "agent1", "agent1-demo")
    _, q = await app.asgi_client.get("/desk/api/queues", headers=agent)
    assert q.json["queues"]["社保卡"] == []
    _, r = await app.asgi_client.post(f"/desk/api/handoffs/{info['id']}/claim", headers=agent)
    assert r.status == 409 and "回到了机器人" in r.json["error"]


async def test_back_to_the_bot_while_served_ends_the_service_and_the_agent_sees_it(database_url, monkeypatch):
    app = make_app(database_url, monkeypatch)
    async with serve(app) as port, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        r = await http.post("/desk/login", json={"username": "agent1", "password": "agent1-demo"})
        agent = {"Cookie": f"desk_session={r.cookies['desk_session']}"}
        http.cookies.clear()
        cid = (await http.get("/api/chat/state")).json()["cid"]
        hid = (await hand_off(http, cid))["id"]
        assert (await http.post(f"/desk/api/handoffs/{hid}/claim", headers=agent)).status_code == 200
        async with websockets.connect(f"ws://127.0.0.1:{port}/desk/ws", additional_headers=agent) as desk:
            assert json.loads(await desk.recv())["type"] == "hello"
            r = await http.post("/api/chat/message", json={"text": "回到机器人"})
            assert "人工服务已结束" in r.json()["messages"][-1]["text"]
            events = [json.loads(await asyncio.wait_for(desk.recv(), 5)) for _ in range(2)]
        closed = next(e for e in events if e["type"] == "handoff_closed")
        assert closed["handoff_id"] == hid and closed["status"] == "returned" and "回到了机器人" in closed["text"]
        r = await http.post(f"/desk/api/handoffs/{hid}/reply", headers=agent, json={"text": "还在吗"})
        assert r.status_code == 409 and "已结束" in r.json()["error"]


async def test_a_citizen_who_left_is_not_waited_for_and_the_agent_sees_it(database_url, monkeypatch):
    app = make_app(database_url, monkeypatch, handoff_abandon_seconds=1)
    async with serve(app) as port, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        r = await http.post("/desk/login", json={"username": "agent1", "password": "agent1-demo"})
        agent = {"Cookie": f"desk_session={r.cookies['desk_session']}"}
        http.cookies.clear()
        page = await http.get("/api/chat/state")
        cid, chat_cookie = page.json()["cid"], {"Cookie": f"chat_session={page.cookies['chat_session']}"}
        http.cookies.clear()
        hid = (await hand_off(http, cid))["id"]
        assert (await http.post(f"/desk/api/handoffs/{hid}/claim", headers=agent)).status_code == 200
        async with websockets.connect(f"ws://127.0.0.1:{port}/desk/ws", additional_headers=agent) as desk:
            assert json.loads(await desk.recv())["type"] == "hello"
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws/chat", additional_headers=chat_cookie) as page_ws:
                assert json.loads(await page_ws.recv())["type"] == "state"
                await asyncio.sleep(2.5)  # the page stays open: twice the limit, and nothing happens
                assert status_of(app, hid) == "claimed"
            # the page is gone; the web app's clock closes the hand-off after the limit
            event = json.loads(await asyncio.wait_for(desk.recv(), 10))
            while event["type"] != "handoff_closed":
                event = json.loads(await asyncio.wait_for(desk.recv(), 10))
        assert event["handoff_id"] == hid and event["status"] == "abandoned" and event["agent"] == "agent1"
        assert status_of(app, hid) == "abandoned"
        detail = (await http.get(f"/desk/api/handoffs/{hid}", headers=agent)).json()
        assert detail["handoff"]["closed"] == "市民已离开" and "离开页面" in detail["transcript"][-1]["text"]
        # back later: the bot serves the conversation again
        r = await http.post("/api/chat/message", headers=chat_cookie, json={"text": "我回来了"})
        assert r.json()["messages"][-1]["text"] == "机器人回答：我回来了"


async def test_phone_handoffs_are_left_to_the_pbx(database_url, monkeypatch):
    app = make_app(database_url, monkeypatch, handoff_wait_seconds=0.5, handoff_abandon_seconds=0.5)
    info = await hand_off(app.asgi_client, "CA-phone-0001", channel="phone")
    assert "回到机器人" not in info["message"]
    await app.ctx.chat.sweep()
    await asyncio.sleep(0.6)
    await app.ctx.chat.sweep()
    assert status_of(app, info["id"]) == "queued"
