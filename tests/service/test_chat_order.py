"""A conversation's lines are answered in the order they came, none lost, whatever answers faster.

Two tabs of one conversation, or a page on the HTTP fallback, can send lines at the same moment; the bot's
answer to the first line must come before the answer to the second (webapp/chat.py: ChatService._turn).
"""
from __future__ import annotations

import asyncio
import secrets

import httpx
from sqlalchemy import select

from tests.voice.doubles import serve
from webapp.app import create_app
from webapp.rasa_client import RasaClient
from webapp.settings import Settings
from webapp.store import Message

LINES = ["第一个问题社保卡怎么办", "第二个问题密码忘了", "第三个问题能异地用吗", "第四个问题挂失", "第五个问题电子社保卡"]


async def test_five_simultaneous_lines_are_answered_in_order_none_lost(tmp_path, monkeypatch):
    async def slow_first(self, sender, text, metadata=None, channel="web"):
        # the earlier the line, the slower the bot: without ordering the answers come back reversed
        await asyncio.sleep(0.05 * (len(LINES) - LINES.index(text)))
        return [{"recipient_id": sender, "text": "回答：" + text}]

    monkeypatch.setattr(RasaClient, "send", slow_first)
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/o.db"), name=f"o{secrets.token_hex(4)}")
    async with serve(app) as port, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        cid = (await http.get("/api/chat/state")).json()["cid"]

        async def send(i: int) -> httpx.Response:
            await asyncio.sleep(0.01 * i)  # they leave in this order, a few milliseconds apart
            return await http.post("/api/chat/message", json={"text": LINES[i], "client_id": f"order-{i:04d}-{cid[:8]}"})

        answers = await asyncio.gather(*(send(i) for i in range(len(LINES))))
    assert [r.status_code for r in answers] == [200] * len(LINES), [r.text for r in answers]
    lines = app.ctx.store.call(lambda s: [(m.role, m.text) for m in s.scalars(
        select(Message).where(Message.conversation_id == cid).order_by(Message.id))])
    expected = [x for t in LINES for x in (("citizen", t), ("bot", "回答：" + t))]
    assert [x for x in lines if x[0] in ("citizen", "bot")] == expected
    assert app.ctx.chat._turns == {}  # nothing kept per conversation once its lines are answered
