"""/ws/chat: the citizen's page live — lines in, the conversation's state and new lines out (webapp/chat.py)."""
from __future__ import annotations

import asyncio
import json

from sanic import Request, Sanic, Websocket

from webapp.auth import CHAT_COOKIE, read_chat
from webapp.chat import valid_cid
from webapp.routes.chat_api import client_source
from webapp.routes.guards import ConnectionLimit
from webapp.store import dumps

TOO_MANY_TEXT = "您同时打开的对话页面太多了，请关闭不用的页面后刷新重试。"


async def chat_ws(request: Request, ws: Websocket):
    """Citizen page <-> web app: {"type":"message","text"} in; state and message events out.

    The conversation is the one of the signed cookie (set by GET /api/chat/state before connecting).
    """
    ctx = request.app.ctx
    cid = read_chat(request.cookies.get(CHAT_COOKIE), ctx.settings.session_secret.reveal())
    claimed = request.args.get("cid")
    if cid is None or not valid_cid(cid) or claimed not in (None, "", cid):
        await ws.send(json.dumps({"type": "error", "code": "session", "text": "会话已失效，请刷新页面。"},
                                 ensure_ascii=False))
        return
    source = client_source(request)
    if not ctx.chat_connections.take(source):
        await ws.send(json.dumps({"type": "error", "code": "too_many", "text": TOO_MANY_TEXT}, ensure_ascii=False))
        await ws.close(code=1013, reason="too many connections from this address")
        return
    try:
        await _serve(request, ws, cid, source)
    finally:
        ctx.chat_connections.give_back(source)


async def _serve(request: Request, ws: Websocket, cid: str, source: str) -> None:
    ctx = request.app.ctx
    topic = f"conv:{cid}"
    queue = ctx.hub.subscribe(topic)

    async def pump() -> None:
        while True:
            await ws.send(dumps(await queue.get()))

    pump_task = asyncio.create_task(pump())
    try:
        await ws.send(dumps(await ctx.chat.state_event(cid)))
        async for raw in ws:
            answer = await ctx.chat.frame(cid, raw, source=source)
            if answer is not None:
                await ws.send(dumps(answer))
    finally:
        pump_task.cancel()
        ctx.hub.unsubscribe(topic, queue)
        ctx.chat.page_closed(cid)


def register(app: Sanic) -> None:
    """Add the route to the web app, with its count of open pages per client address."""
    app.ctx.chat_connections = ConnectionLimit(app.ctx.settings.chat_max_connections_per_source)
    app.add_websocket_route(chat_ws, "/ws/chat")
