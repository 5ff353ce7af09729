"""A database failure never ends the citizen's chat or loses the line (docs/reliability.md): the real app over
its WebSocket and HTTP fallback, with failures injected into its database transactions."""
from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
from collections.abc import Callable

import httpx
import websockets
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from tests.voice.doubles import serve
from webapp.app import create_app
from webapp.rasa_client import RasaClient
from webapp.settings import Settings
from webapp.store import Message, Store


class Outage:
    """Makes the web app's next `n` transactions of one kind fail as a locked or unreachable database does.

    `kind` is part of the transaction function's qualified name (the clock's transactions are left alone).
    """

    def __init__(self, store: Store) -> None:
        self.real, self.kind, self.left = store.call, "", 0
        store.call = self.call

    def fail(self, kind: str, n: int) -> None:
        self.kind, self.left = kind, n

    def call(self, fn: Callable):
        if self.left and self.kind in getattr(fn, "__qualname__", ""):
            self.left -= 1
            raise OperationalError("INSERT INTO messages …", {}, sqlite3.OperationalError("database is locked"))
        return self.real(fn)


def make_app(tmp_path, monkeypatch):
    async def fake_send(self, sender, text, metadata=None, channel="web"):
        return [{"recipient_id": sender, "text": "机器人回答：" + text}]

    monkeypatch.setattr(RasaClient, "send", fake_send)
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/e.db"), name=f"e{secrets.token_hex(4)}")
    return app, Outage(app.ctx.store)


async def until(ws, predicate, timeout: float = 5.0) -> dict:
    """The next event from the socket that matches."""
    while True:
        event = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if predicate(event):
            return event


def citizen_lines(app, cid: str, text: str) -> int:
    return len(app.ctx.store.call(lambda s: s.scalars(select(Message).where(
        Message.conversation_id == cid, Message.role == "citizen", Message.text == text)).all()))


async def open_chat(http: httpx.AsyncClient, port: int):
    page = await http.get("/api/chat/state")
    http.cookies.clear()
    cookie = {"Cookie": f"chat_session={page.cookies['chat_session']}"}
    ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws/chat", additional_headers=cookie)
    assert json.loads(await ws.recv())["type"] == "state"
    return page.json()["cid"], cookie, ws


async def test_a_line_the_database_cannot_store_is_asked_again_and_kept_once(tmp_path, monkeypatch):
    app, outage = make_app(tmp_path, monkeypatch)
    async with serve(app) as port, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        cid, _, ws = await open_chat(http, port)
        async with ws:
            frame = json.dumps({"type": "message", "text": "社保卡丢了怎么办", "client_id": "line0001"})
            outage.fail("ChatService._citizen_line", 3)  # the first try and both of the web app's own retries
            await ws.send(frame)
            busy = await until(ws, lambda e: e["type"] == "error")
            assert busy["code"] == "retry" and busy["client_id"] == "line0001" and "重新发送" in busy["text"]
            assert citizen_lines(app, cid, "社保卡丢了怎么办") == 0
            # the same socket serves on: the page sends the line again (what chat.js does), it is answered
            await ws.send(frame)
            echo = await until(ws, lambda e: e["type"] == "message" and e["message"]["role"] == "citizen")
            assert echo["message"]["payload"]["client_id"] == "line0001"
            answer = await until(ws, lambda e: e["type"] == "message" and e["message"]["role"] == "bot")
            assert answer["message"]["text"] == "机器人回答：社保卡丢了怎么办"
            # sent a third time (a reconnect that missed the echo): stored and answered once only
            await ws.send(frame)
            await until(ws, lambda e: e["type"] == "message" and e["message"]["role"] == "citizen")
            await ws.send(json.dumps({"type": "message", "text": "谢谢", "client_id": "line0002"}))
            after = await until(ws, lambda e: e["type"] == "message" and e["message"]["role"] == "bot")
            assert after["message"]["text"] == "机器人回答：谢谢"
        assert citizen_lines(app, cid, "社保卡丢了怎么办") == 1


async def test_a_short_database_hiccup_is_retried_by_the_web_app_unseen(tmp_path, monkeypatch):
    app, outage = make_app(tmp_path, monkeypatch)
    async with serve(app) as port, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        cid, _, ws = await open_chat(http, port)
        async with ws:
            outage.fail("ChatService._citizen_line", 1)
            await ws.send(json.dumps({"type": "message", "text": "养老金怎么查", "client_id": "hiccup01"}))
            event = await until(ws, lambda e: e["type"] in ("error", "message") and
                                (e["type"] == "error" or e["message"]["role"] == "bot"))
            assert event["type"] == "message" and event["message"]["text"] == "机器人回答：养老金怎么查"
        assert citizen_lines(app, cid, "养老金怎么查") == 1


async def test_an_answer_the_database_cannot_store_still_reaches_the_citizen(tmp_path, monkeypatch):
    app, outage = make_app(tmp_path, monkeypatch)
    async with serve(app) as port, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        cid, _, ws = await open_chat(http, port)
        async with ws:
            outage.fail("ChatService.record", 3)
            await ws.send(json.dumps({"type": "message", "text": "失业金领多久", "client_id": "answer01"}))
            answer = await until(ws, lambda e: e["type"] == "message" and e["message"]["role"] == "bot")
            assert answer["message"]["text"] == "机器人回答：失业金领多久" and answer["message"]["payload"]["unsaved"]
            await ws.send(json.dumps({"type": "message", "text": "好的", "client_id": "answer02"}))
            assert (await until(ws, lambda e: e["type"] == "message" and e["message"]["role"] == "bot"))["message"]["text"] \
                == "机器人回答：好的"
        assert citizen_lines(app, cid, "失业金领多久") == 1  # the citizen's line itself was kept


async def test_a_transcript_the_database_cannot_read_is_asked_for_again(tmp_path, monkeypatch):
    app, outage = make_app(tmp_path, monkeypatch)
    async with serve(app) as port, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        page = await http.get("/api/chat/state")
        http.cookies.clear()
        cookie = {"Cookie": f"chat_session={page.cookies['chat_session']}"}
        outage.fail("ChatService.state", 3)
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws/chat", additional_headers=cookie) as ws:
            first = json.loads(await ws.recv())
            assert first["type"] == "error" and first["code"] == "state"
            await ws.send(json.dumps({"type": "state"}))  # what chat.js does after a pause
            assert json.loads(await ws.recv())["type"] == "state"


async def test_the_http_fallback_answers_503_and_keeps_a_resent_line_once(tmp_path, monkeypatch):
    app, outage = make_app(tmp_path, monkeypatch)
    async with serve(app) as port, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        page = await http.get("/api/chat/state")
        cid = page.json()["cid"]
        body = {"text": "工伤怎么认定", "client_id": "http0001"}
        outage.fail("ChatService._citizen_line", 3)
        r = await http.post("/api/chat/message", json=body)
        assert r.status_code == 503 and r.json()["retry"] is True and r.headers["Retry-After"]
        r = await http.post("/api/chat/message", json=body)
        assert r.status_code == 200 and r.json()["messages"][-1]["text"] == "机器人回答：工伤怎么认定"
        r = await http.post("/api/chat/message", json=body)
        assert r.status_code == 200 and r.json()["messages"] == []
    assert citizen_lines(app, cid, "工伤怎么认定") == 1
