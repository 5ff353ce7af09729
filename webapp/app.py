"""Sanic application factory of the web app: the services, wired once here, and the routes (webapp/routes/).

    citizen page ─▶ routes/chat_*.py ─▶ ChatService (chat.py) ─▶ Rasa (rasa_client.py)
                                            │ a person involved: HandoffService (handoffs.py), an off-hours
                                            │ message: WorkOrderService (workorders.py), after the service:
                                            ▼ RatingService (ratings.py)
    bot, phone ─▶ routes/handoff_api.py ─▶ HandoffService ◀─ routes/desk_*.py ◀─ agent page
    every live event ─▶ Hub (hub.py) ─▶ the citizen's page (routes/chat_live.py), the desk (routes/desk_live.py)
    softphone page ─▶ routes/phone_page.py ─▶ Softphone (softphone.py) ─▶ the voice gateway's media stream
"""
from __future__ import annotations

import asyncio
import gc
import logging
from urllib.parse import urlsplit

from sanic import Request, Sanic, response
from sanic.exceptions import SanicException
from sqlalchemy.exc import SQLAlchemyError

from common.events import EventPublisher
from common.privacy import install_masking
from common.settings import SettingsError
from webapp.audit import AuditLog
from webapp.auth import LoginThrottle, prepare_demo_agents
from webapp.chat import ChatService
from webapp.handoffs import HandoffService
from webapp.hub import Hub
from webapp.rasa_client import RasaClient
from webapp.ratings import RatingService
from webapp.routes import register_all
from webapp.settings import Settings, load_settings
from webapp.softphone import Softphone
from webapp.store import Store, dumps
from webapp.supervision import Supervision
from webapp.workorders import WorkOrderService

log = logging.getLogger(__name__)
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
WEBSOCKETS = {"/ws/chat", "/desk/ws", "/phone/ws"}
SWEEP_MAX_SECONDS = 5.0  # the hand-off time limits are checked at least this often


def create_app(settings: Settings | None = None, name: str = "hotline_webapp") -> Sanic:
    """Build the web app; every dependency comes from settings (tests pass their own)."""
    settings = settings or load_settings()
    app = Sanic(name, dumps=dumps)
    app.config.WEBSOCKET_PING_INTERVAL = 20
    app.config.REQUEST_MAX_SIZE = 1_000_000
    app.ctx.settings = settings
    app.ctx.store = Store(settings.database_url)
    app.ctx.hub = Hub(settings.hub_redis_url)  # with HUB_REDIS_URL, the live events reach every replica's pages
    app.ctx.rasa = RasaClient(settings.rasa_url, settings.rasa_timeout, settings.channel_token.reveal())
    app.ctx.events = EventPublisher.for_settings(settings.events, name="webapp")  # hotline events, journaled, never blocking
    app.ctx.handoffs = HandoffService(app.ctx.store, settings.desk_hours, settings.desk_days, events=app.ctx.events)
    app.ctx.workorders = WorkOrderService(app.ctx.store, events=app.ctx.events)
    app.ctx.ratings = RatingService(app.ctx.store, events=app.ctx.events)
    app.ctx.audit = AuditLog(app.ctx.store)
    app.ctx.login_throttle = LoginThrottle(app.ctx.store)
    app.ctx.supervision = Supervision(settings.analytics.database_url, settings.analytics.zone, settings.reports_dir)
    app.ctx.chat = ChatService(app.ctx.store, app.ctx.rasa, app.ctx.hub, settings,
                               handoffs=app.ctx.handoffs, workorders=app.ctx.workorders, ratings=app.ctx.ratings)
    app.ctx.softphone = Softphone(settings.voice_url, settings.media_stream_token.reveal())
    prepare_demo_agents(app.ctx.store, settings.dev_mode)
    register_all(app)

    @app.before_server_start
    async def _start(app: Sanic) -> None:
        install_masking()
        app.ctx.hub.start()  # with Redis: the subscriber and sender tasks (nothing to start without)

    @app.after_server_start
    async def _start_clock(app: Sanic) -> None:
        # what start-up built lives as long as the process: keep it out of the collector's scans, which a request that
        # reads many rows (the dashboard's year) otherwise pays for again and again (docs/analytics.md)
        gc.collect()
        gc.freeze()
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
        await app.ctx.hub.stop()  # the last events reach Redis (a moment at most), then its tasks end
        await app.ctx.rasa.close()
        await asyncio.to_thread(app.ctx.events.close)  # delivers what is left, for a moment at most
        app.ctx.store.engine.dispose()
        app.ctx.supervision.dispose()

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
    """Every few seconds, for as long as the web app runs: apply the hand-off time limits, and answer the lines
    Rasa missed once it is back."""
    pause = max(0.2, min(SWEEP_MAX_SECONDS, settings.handoff_wait_seconds / 4, settings.handoff_abandon_seconds / 4))
    while True:
        try:
            await chat.sweep()
        except Exception:  # noqa: BLE001 - a database outage must not stop the clock; the next round tries again
            log.exception("applying the hand-off time limits failed")
        try:
            await chat.resume_after_outage()
        except Exception:  # noqa: BLE001 - the lines stay queued; the next round tries again
            log.exception("answering the lines Rasa missed failed")
        await asyncio.sleep(pause)


def main() -> None:
    """Run the web app: python -m webapp.app (a bad setting stops it with one sentence naming the variable)."""
    try:
        settings = load_settings()
    except SettingsError as e:
        raise SystemExit(f"web app not started: {e}") from None
    app = create_app(settings)
    app.run(host=settings.host, port=settings.port, single_process=True, access_log=False)


if __name__ == "__main__":
    main()
