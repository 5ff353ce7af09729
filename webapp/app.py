"""Sanic application factory of the web app: chat page, chat WebSocket, health, agent desk."""
from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from sanic import Request, Sanic, Websocket, response
from sanic.exceptions import SanicException
from sqlalchemy.exc import SQLAlchemyError

from common.privacy import install_masking
from webapp.auth import CHAT_COOKIE, CHAT_COOKIE_SECONDS, new_chat_id, read_chat, sign_chat
from webapp.chat import BUSY_TEXT, ChatBusy, ChatError, ChatService, valid_cid
from webapp.desk import attach_desk
from webapp.handoffs import HandoffService
from webapp.hub import Hub
from webapp.rasa_client import RasaClient
from webapp.settings import Settings, load_settings
from webapp.store import Store, dumps

log = logging.getLogger(__name__)
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
WEBSOCKETS = {"/ws/chat", "/desk/ws"}
SWEEP_MAX_SECONDS = 5.0  # the hand-off time limits are checked at least this often
STATIC = Path(__file__).resolve().parent / "static"


def client_source(request: Request) -> str:
    """web:<client address> for the card system's per-source limits.

    The address is the TCP peer's, or what a trusted reverse proxy says (Sanic reads X-Forwarded-For only
    when SANIC_PROXIES_COUNT / SANIC_REAL_IP_HEADER / SANIC_FORWARDED_SECRET are set): a client cannot choose it.
    """
    address = (request.remote_addr or request.ip or "").strip()
    return f"web:{address}" if address else ""


def create_app(settings: Settings | None = None, name: str = "hotline_webapp") -> Sanic:
    """Build the web app; every dependency comes from settings (tests pass their own)."""
    settings = settings or load_settings()
    app = Sanic(name, dumps=dumps)
    app.config.WEBSOCKET_PING_INTERVAL = 20
    app.config.REQUEST_MAX_SIZE = 1_000_000
    app.ctx.settings = settings
    app.ctx.store = Store(settings.database_url)
    app.ctx.hub = Hub()
    app.ctx.rasa = RasaClient(settings.rasa_url, settings.rasa_timeout, settings.channel_token)
    app.ctx.handoffs = HandoffService(app.ctx.store)
    app.ctx.chat = ChatService(app.ctx.store, app.ctx.rasa, app.ctx.hub, settings, app.ctx.handoffs)
    app.static("/static", STATIC, name="static")
    attach_desk(app)  # the expert seat plugs into the chat

    @app.before_server_start
    async def _start(app: Sanic) -> None:
        install_masking()

    @app.after_server_start
    async def _start_clock(app: Sanic) -> None:
        app.ctx.clock = asyncio.get_running_loop().create_task(keep_time_limits(app.ctx.chat, settings))

    @app.before_server_stop
    async def _stop_clock(app: Sanic) -> None:
        clock = getattr(app.ctx, "clock", None)
        if clock is not None:
            clock.cancel()

    @app.on_request
    async def same_origin_only(request: Request):
        """Cross-site request forgery: a browser's state-changing request or WebSocket from another site is refused.

        Browsers name the page's origin on every POST and WebSocket handshake; a client that is not a
        browser sends none and is judged by its cookie or token alone.
        """
        if request.path not in WEBSOCKETS and not (request.method in UNSAFE_METHODS
                                                   and request.path.startswith(("/desk", "/api/chat"))):
            return None
        origin = request.headers.get("origin")
        if origin and origin != "null" and urlsplit(origin).netloc.lower() == (request.host or "").lower():
            return None
        if origin:
            log.warning("refused %s %s from another origin (%s)", request.method, request.path, origin[:100])
            return response.json({"error": "请求来自其他网站，已拒绝"}, status=403)
        return None

    @app.on_request
    async def ids_in_range(request: Request):
        """A record id in a path (/desk/api/handoffs/<id>) beyond what the database holds names no record: 404."""
        for value in (request.match_info or {}).values():
            if isinstance(value, int) and not 0 < value < 2 ** 63:
                return response.json({"error": "没有这条记录"}, status=404)
        return None

    @app.after_server_stop
    async def _stop(app: Sanic) -> None:
        await app.ctx.rasa.close()
        app.ctx.store.engine.dispose()

    @app.get("/")
    async def chat_page(request: Request):
        return await response.file(STATIC / "chat.html", mime_type="text/html; charset=utf-8")

    openapi = yaml.safe_load((Path(__file__).resolve().parent / "openapi.yaml").read_text(encoding="utf-8"))

    @app.get("/openapi.json")
    async def openapi_document(request: Request):
        """The description of these HTTP APIs (webapp/openapi.yaml)."""
        return response.json(openapi, dumps=dumps)

    @app.get("/health")
    async def health(request: Request):
        rasa_ok = await app.ctx.rasa.healthy()
        return response.json({"status": "ok", "service": "webapp", "rasa": "ok" if rasa_ok else "unreachable"})

    secret = str(settings.session_secret)

    def conversation(request: Request, claimed: object = None) -> tuple[str | None, bool]:
        """(conversation id, newly issued) from the signed cookie; a new one when there is none.

        A request naming another conversation than its cookie's gets (None, False): ids are never
        taken from the request, so knowing or guessing one gives nothing.
        """
        cid = read_chat(request.cookies.get(CHAT_COOKIE), secret)
        if cid is None:
            return new_chat_id(), True
        if claimed not in (None, "", cid):
            return None, False
        return cid, False

    def with_cookie(resp, cid: str, issued: bool):
        if issued:
            resp.add_cookie(CHAT_COOKIE, sign_chat(cid, secret), httponly=True, samesite="Lax", path="/",
                            max_age=CHAT_COOKIE_SECONDS, secure=not settings.dev_mode)
        return resp

    @app.get("/api/chat/state")
    async def chat_state(request: Request):
        """The citizen's own conversation (created with its cookie on the first visit)."""
        cid, issued = conversation(request, request.args.get("cid"))
        if cid is None:
            return response.json({"error": "这个会话不属于当前浏览器，请刷新页面。"}, status=403)
        return with_cookie(response.json({"cid": cid, **(await app.ctx.chat.state(cid))}), cid, issued)

    @app.post("/api/chat/message")
    async def chat_message(request: Request):
        """HTTP fallback of the WebSocket: send one line, get the conversation's new lines back."""
        body = request.json if isinstance(request.json, dict) else {}
        cid, issued = conversation(request, body.get("cid"))
        if cid is None:
            return response.json({"error": "这个会话不属于当前浏览器，请刷新页面。"}, status=403)
        try:
            before = await app.ctx.chat.state(cid)
            last = before["messages"][-1]["id"] if before["messages"] else 0
            await app.ctx.chat.citizen_message(cid, body.get("text"), body.get("display"), source=client_source(request),
                                               client_id=body.get("client_id"))
            after = await app.ctx.chat.state(cid)
        except ChatError as exc:
            return with_cookie(response.json({"error": str(exc)}, status=400), cid, issued)
        except (ChatBusy, SQLAlchemyError):  # nothing lost: send the same line (and client_id) again
            return with_cookie(response.json({"error": BUSY_TEXT, "retry": True}, status=503, headers={"Retry-After": "2"}),
                               cid, issued)
        return with_cookie(response.json({"cid": cid, "mode": after["mode"],
                                          "messages": [m for m in after["messages"] if m["id"] > last]}), cid, issued)

    @app.websocket("/ws/chat")
    async def chat_ws(request: Request, ws: Websocket):
        """Citizen page <-> web app: {"type":"message","text"} in; state and message events out.

        The conversation is the one of the signed cookie (set by GET /api/chat/state before connecting).
        """
        cid = read_chat(request.cookies.get(CHAT_COOKIE), secret)
        claimed = request.args.get("cid")
        if cid is None or not valid_cid(cid) or claimed not in (None, "", cid):
            await ws.send(json.dumps({"type": "error", "code": "session", "text": "会话已失效，请刷新页面。"},
                                     ensure_ascii=False))
            return
        topic = f"conv:{cid}"
        queue = app.ctx.hub.subscribe(topic)

        async def pump() -> None:
            while True:
                await ws.send(dumps(await queue.get()))

        pump_task = asyncio.create_task(pump())
        try:
            await ws.send(dumps(await app.ctx.chat.state_event(cid)))
            async for raw in ws:
                answer = await app.ctx.chat.frame(cid, raw, source=client_source(request))
                if answer is not None:
                    await ws.send(dumps(answer))
        finally:
            pump_task.cancel()
            app.ctx.hub.unsubscribe(topic, queue)
            app.ctx.chat.page_closed(cid)

    @app.exception(SanicException)
    async def _errors(request: Request, exc: SanicException):
        return response.json({"error": str(exc)}, status=getattr(exc, "status_code", 500))

    @app.exception(SQLAlchemyError)
    async def _database_errors(request: Request, exc: SQLAlchemyError):
        """The database is down or busy: a clear answer to send again, never a stack trace."""
        log.error("database error on %s %s (%s)", request.method, request.path, type(exc).__name__)
        return response.json({"error": "系统繁忙，请稍后再试。", "retry": True}, status=503, headers={"Retry-After": "2"})

    return app


async def keep_time_limits(chat: ChatService, settings: Settings) -> None:
    """Apply the hand-off time limits every few seconds, for as long as the web app runs."""
    pause = max(0.2, min(SWEEP_MAX_SECONDS, settings.handoff_wait_seconds / 4, settings.handoff_abandon_seconds / 4))
    while True:
        try:
            await chat.sweep()
        except Exception:  # noqa: BLE001 - a database outage must not stop the clock; the next round tries again
            log.exception("applying the hand-off time limits failed")
        await asyncio.sleep(pause)


def main() -> None:
    """Run the web app: python -m webapp.app"""
    settings = load_settings()
    app = create_app(settings)
    app.run(host=settings.host, port=settings.port, single_process=True, access_log=False)


if __name__ == "__main__":
    main()
