"""Atomic state changes on SQLite and PostgreSQL: of simultaneous claims, closes, transfers or work-order
changes exactly one wins and the others get a clear refusal (webapp/handoffs.py)."""
from __future__ import annotations

import asyncio
import secrets

import httpx
from sqlalchemy import func, select

from common.handoff import QUEUES
from tests.service.test_desk import TOKEN
from tests.voice.doubles import serve
from webapp.app import create_app
from webapp.auth import COOKIE, hash_password
from webapp.handoffs import HandoffRefused
from webapp.rasa_client import RasaClient
from webapp.settings import Settings
from webapp.store import Agent, Handoff, Message, WorkOrder

N = 12  # simultaneous contenders


def make_app(database_url: str, monkeypatch, **settings):
    async def fake_send(self, sender, text, metadata=None, channel="web"):
        return [{"recipient_id": sender, "text": "机器人回答：" + text}]

    monkeypatch.setattr(RasaClient, "send", fake_send)
    return create_app(Settings(database_url=database_url, **settings), name=f"c{secrets.token_hex(4)}")


def seats(n: int = N) -> list[Agent]:
    """Agents that may claim anything (their rows need not exist: a claim names the agent only)."""
    return [Agent(username=f"seat{i:02d}", display_name=f"坐席{i}", password_hash="", role="supervisor", queues=list(QUEUES))
            for i in range(n)]


async def queued(app, cid: str, queue: str = "社保卡", channel: str = "web") -> int:
    _, r = await app.asgi_client.post("/api/handoff", headers=TOKEN, json={"conversation_id": cid, "channel": channel,
                                                                           "queue": queue, "reason": "市民要求人工"})
    assert r.status == 200, r.text
    return r.json["id"]


def row(app, hid: int) -> Handoff:
    return app.ctx.store.call(lambda s: s.get(Handoff, hid))


async def test_simultaneous_claims_have_exactly_one_winner(database_url, monkeypatch):
    app = make_app(database_url, monkeypatch)
    hid = await queued(app, "conc-claim-0001")
    results = await asyncio.gather(*(app.ctx.handoffs.claim(hid, a) for a in seats()), return_exceptions=True)
    winners = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, HandoffRefused)]
    assert len(winners) == 1 and len(refused) == N - 1, results
    assert all(r.kind == "conflict" and "已被其他坐席" in r.message for r in refused)
    assert row(app, hid).status == "claimed" and row(app, hid).agent == winners[0]["agent"]


async def test_simultaneous_claims_over_http_one_200_the_rest_409(database_url, monkeypatch):
    app = make_app(database_url, monkeypatch)
    names = [f"desk{i}" for i in range(6)]
    app.ctx.store.call(lambda s: s.add_all(Agent(username=n, display_name=n, password_hash=hash_password("pw-" + n * 2),
                                                 role="agent", queues=["社保卡"]) for n in names))
    async with serve(app) as port, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        cookies = []
        for n in names:
            r = await http.post("/desk/login", json={"username": n, "password": "pw-" + n * 2})
            cookies.append({"Cookie": f"{COOKIE}={r.cookies[COOKIE]}"})
            http.cookies.clear()
        cid = (await http.get("/api/chat/state")).json()["cid"]
        http.cookies.clear()
        hid = (await http.post("/api/handoff", headers=TOKEN, json={"conversation_id": cid, "queue": "社保卡"})).json()["id"]
        answers = await asyncio.gather(*(http.post(f"/desk/api/handoffs/{hid}/claim", headers=c) for c in cookies))
    assert sorted(r.status_code for r in answers) == [200] + [409] * (len(names) - 1)
    assert all("已被其他坐席" in r.json()["error"] for r in answers if r.status_code == 409)
    # the citizen was told once that a person took over
    joined = app.ctx.store.call(lambda s: s.scalar(select(func.count()).select_from(Message).where(
        Message.conversation_id == cid, Message.text.contains("已接入"))))
    assert joined == 1


async def test_a_claim_racing_the_waiting_limit_ends_one_way_only(database_url, monkeypatch):
    app = make_app(database_url, monkeypatch)
    seat = seats(1)[0]
    for i in range(8):
        hid = await queued(app, f"conc-limit-{i:04d}")
        claimed, timed_out = await asyncio.gather(app.ctx.handoffs.claim(hid, seat), app.ctx.handoffs.time_out(0),
                                                  return_exceptions=True)
        status = row(app, hid).status
        if status == "claimed":
            assert isinstance(claimed, dict) and timed_out == []
        else:
            assert status == "timed_out" and [h["id"] for h in timed_out] == [hid]
            assert isinstance(claimed, HandoffRefused) and "已结束" in claimed.message


async def test_ending_and_returning_to_the_bot_at_once_end_it_once(database_url, monkeypatch):
    app = make_app(database_url, monkeypatch)
    seat = seats(1)[0]
    for i in range(6):
        cid = f"conc-end-{i:04d}"
        hid = await queued(app, cid)
        await app.ctx.handoffs.claim(hid, seat)
        resolved, returned = await asyncio.gather(app.ctx.handoffs.resolve(hid, seat), app.ctx.handoffs.return_to_bot(cid),
                                                  return_exceptions=True)
        status = row(app, hid).status
        assert status in ("resolved", "returned")
        assert isinstance(resolved, HandoffRefused) == (status == "returned")
        assert (returned is None) == (status == "resolved")


async def test_a_transfer_racing_a_second_transfer_moves_it_once(database_url, monkeypatch):
    app = make_app(database_url, monkeypatch)
    seat = seats(1)[0]
    hid = await queued(app, "conc-transfer-01")
    await app.ctx.handoffs.claim(hid, seat)
    results = await asyncio.gather(*(app.ctx.handoffs.transfer(hid, seat, q) for q in ("养老", "失业", "工伤", "综合")),
                                   return_exceptions=True)
    moved = [r for r in results if isinstance(r, dict)]
    assert len(moved) == 1 and row(app, hid).queue == moved[0]["queue"] and row(app, hid).status == "queued"
    assert all(isinstance(r, HandoffRefused) for r in results if not isinstance(r, dict))


async def test_a_work_order_is_taken_by_one_agent(database_url, monkeypatch):
    app = make_app(database_url, monkeypatch)
    _, r = await app.asgi_client.post("/desk/login", json={"username": "supervisor", "password": "supervisor-demo"})
    cookie = {"Cookie": f"{COOKIE}={r.cookies[COOKIE]}"}
    app.asgi_client.cookies.clear()
    _, w = await app.asgi_client.post("/desk/api/workorders", headers=cookie, json={"title": "回访", "category": "社保卡"})
    wid = w.json["id"]
    results = await asyncio.gather(*(app.ctx.workorders.update(wid, lambda _w: True, "in_progress", expected="open")
                                     for _ in range(N)), return_exceptions=True)
    assert sum(isinstance(r, dict) for r in results) == 1
    assert all("处理中" in r.message for r in results if isinstance(r, HandoffRefused))
    # over HTTP: a change from a status the agent no longer sees is refused, not applied
    _, r = await app.asgi_client.post(f"/desk/api/workorders/{wid}", headers=cookie,
                                      json={"status": "closed", "resolution": "已回电", "expected_status": "open"})
    assert r.status == 409 and "处理中" in r.json["error"]
    _, r = await app.asgi_client.post(f"/desk/api/workorders/{wid}", headers=cookie,
                                      json={"status": "closed", "resolution": "已回电", "expected_status": "in_progress"})
    assert r.status == 200 and r.json["status"] == "closed"


async def test_a_callback_pressed_many_times_at_once_files_one_work_order(database_url, monkeypatch):
    app = make_app(database_url, monkeypatch)
    cid = "conc-callback-01"
    await queued(app, cid)
    assert len(await app.ctx.handoffs.time_out(0)) == 1
    results = await asyncio.gather(*(app.ctx.handoffs.callback(cid, 24) for _ in range(6)))
    assert [new for _, _, new in results].count(True) == 1
    assert len({w["id"] for _, w, _ in results}) == 1
    assert app.ctx.store.call(lambda s: s.scalar(select(func.count()).select_from(WorkOrder))) == 1


async def test_simultaneous_handoff_requests_for_one_conversation_open_one_handoff(database_url, monkeypatch):
    """The bot and the voice gateway (or a double click) ask for a person at the same moment: one hand-off."""
    app = make_app(database_url, monkeypatch)
    cid = "conc-open-0001"
    async with serve(app) as port, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        answers = await asyncio.gather(*(http.post("/api/handoff", headers=TOKEN, json={
            "conversation_id": cid, "queue": "社保卡", "reason": "市民要求人工",
            "transcript": [{"role": "caller", "text": f"第{i}句"}]}) for i in range(N)))
    assert [r.status_code for r in answers] == [200] * N, [r.text for r in answers]
    assert len({r.json()["id"] for r in answers}) == 1
    open_rows = app.ctx.store.call(lambda s: s.scalar(select(func.count()).select_from(Handoff).where(
        Handoff.conversation_id == cid, Handoff.status.in_(("queued", "claimed")))))
    assert open_rows == 1
    # no request was lost: each brought its transcript line, stored once
    lines = app.ctx.store.call(lambda s: sorted(s.scalars(select(Message.text).where(Message.conversation_id == cid))))
    assert lines == sorted(f"第{i}句" for i in range(N))


def test_a_database_from_before_the_one_open_handoff_rule_gets_it_at_start_up(database_url):
    from sqlalchemy import inspect, text

    from webapp.store import Store

    store = Store(database_url)
    with store.engine.begin() as conn:
        conn.execute(text("DROP INDEX uq_handoffs_open_conversation"))
    assert "uq_handoffs_open_conversation" not in {i["name"] for i in inspect(store.engine).get_indexes("handoffs")}
    store.engine.dispose()
    store = Store(database_url)  # the next start of the web app
    assert "uq_handoffs_open_conversation" in {i["name"] for i in inspect(store.engine).get_indexes("handoffs")}
    store.engine.dispose()
