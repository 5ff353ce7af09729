"""Sanic application factory of the web app: chat page, chat WebSocket, health, agent desk."""
from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

from sanic import Request, Sanic, Websocket, response
from sanic.exceptions import SanicException

from common.privacy import install_masking
from webapp.chat import ChatError, ChatService, valid_cid
from webapp.desk import attach_desk
from webapp.hub import Hub
from webapp.rasa_client import RasaClient
from webapp.settings import Settings, load_settings
from webapp.store import Store, dumps

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"


def create_app(settings: Settings | None = None, name: str = "hotline_webapp") -> Sanic:
    """Build the web app; every dependency comes from settings (tests pass their own)."""
    settings = settings or load_settings()
    app = Sanic(name, dumps=dumps)
    app.config.WEBSOCKET_PING_INTERVAL = 20
    app.config.REQUEST_MAX_SIZE = 1_000_000
    app.ctx.settings = settings
    app.ctx.store = Store(settings.database_url)
    app.ctx.hub = Hub()
    app.ctx.rasa = RasaClient(settings.rasa_url, settings.rasa_timeout)
    app.ctx.chat = ChatService(app.ctx.store, app.ctx.rasa, app.ctx.hub, settings)
    app.static("/static", STATIC, name="static")
    attach_desk(app)  # the expert seat plugs into the chat

    @app.before_server_start
    async def _start(app: Sanic) -> None:
        install_masking()

    @app.after_server_stop
    async def _stop(app: Sanic) -> None:
        await app.ctx.rasa.close()
        app.ctx.store.engine.dispose()

    @app.get("/")
    async def chat_page(request: Request):
        return await response.file(STATIC / "chat.html", mime_type="text/html; charset=utf-8")

    @app.get("/health")
    async def health(request: Request):
        rasa_ok = await app.ctx.rasa.healthy()
        return response.json({"status": "ok", "service": "webapp", "rasa": "ok" if rasa_ok else "unreachable"})

    @app.get("/api/chat/state")
    async def chat_state(request: Request):
        cid = request.args.get("cid")
        if not valid_cid(cid):
            return response.json({"error": "cid 无效"}, status=400)
        return response.json(await app.ctx.chat.state(cid))

    @app.post("/api/chat/message")
    async def chat_message(request: Request):
        """HTTP fallback of the WebSocket: send one line, get the conversation's new lines back."""
        body = request.json if isinstance(request.json, dict) else {}
        cid = body.get("cid")
        try:
            before = await app.ctx.chat.state(cid) if valid_cid(cid) else {"messages": []}
            last = before["messages"][-1]["id"] if before["messages"] else 0
            await app.ctx.chat.citizen_message(cid, body.get("text"), body.get("display"))
        except ChatError as exc:
            return response.json({"error": str(exc)}, status=400)
        after = await app.ctx.chat.state(cid)
        return response.json({"mode": after["mode"], "messages": [m for m in after["messages"] if m["id"] > last]})

    @app.websocket("/ws/chat")
    async def chat_ws(request: Request, ws: Websocket):
        """Citizen page <-> web app: {"type":"message","text"} in; state and message events out."""
        cid = request.args.get("cid")
        if not valid_cid(cid):
            await ws.send(json.dumps({"type": "error", "text": "会话标识无效，请刷新页面。"}, ensure_ascii=False))
            return
        topic = f"conv:{cid}"
        queue = app.ctx.hub.subscribe(topic)

        async def pump() -> None:
            while True:
                await ws.send(dumps(await queue.get()))

        pump_task = asyncio.create_task(pump())
        try:
            await ws.send(dumps({"type": "state", **(await app.ctx.chat.state(cid))}))
            async for raw in ws:
                try:
                    data = json.loads(raw)
                except (TypeError, ValueError):
                    await ws.send(dumps({"type": "error", "text": "消息格式不正确。"}))
                    continue
                if not isinstance(data, dict) or data.get("type") != "message":
                    continue
                try:
                    await app.ctx.chat.citizen_message(cid, data.get("text"), data.get("display"))
                except ChatError as exc:
                    await ws.send(dumps({"type": "error", "text": str(exc), "client_id": data.get("client_id")}))
        finally:
            pump_task.cancel()
            app.ctx.hub.unsubscribe(topic, queue)

    @app.exception(SanicException)
    async def _errors(request: Request, exc: SanicException):
        return response.json({"error": str(exc)}, status=getattr(exc, "status_code", 500))

    return app


def main() -> None:
    """Run the web app: python -m webapp.app"""
    settings = load_settings()
    app = create_app(settings)
    app.run(host=settings.host, port=settings.port, single_process=True, access_log=False)


if __name__ == "__main__":
    main()
