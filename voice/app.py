"""The gateway process: Sanic HTTP app (/health, /media-stream, call routes) plus the AudioSocket server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sanic import Request, Sanic
from sanic import response as res

from common.events import EventPublisher
from common.secrets import same
from voice import prompts
from voice.engines.bot import RasaPhoneChannel
from voice.engines.desk import HandoffDesk, HttpHandoffDesk, InMemoryHandoffDesk
from voice.engines.recognition import VoskModel
from voice.engines.synthesis import Pyttsx3Engine, SpeechCache
from voice.frames import Frame
from voice.ivr.live import LiveMenu
from voice.ivr.menu import GeneratedMenu
from voice.ivr.service import spoken_texts
from voice.session import Services, run_call
from voice.settings import Settings
from voice.speech_text import reply_text, split_sentences
from voice.store import CallStore
from voice.transports.audiosocket import AudioSocketServer
from voice.transports.base import CallAdmission, CallSink
from voice.transports.media_stream import MediaStreamSink, inbound_frames

log = logging.getLogger(__name__)


def build_services(settings: Settings, model_path: Path | None) -> Services:
    """Load the model (or, without one, the keypad menu) and connect the speech engine, bot, desk and store (blocking)."""
    model = VoskModel(model_path) if model_path is not None else None
    live_menu = LiveMenu(settings) if model is None else None  # the desk's published entries with KB_DATABASE_URL
    menu = live_menu.load() if live_menu is not None else None
    speech = SpeechCache(Pyttsx3Engine(settings.tts_voice, settings.tts_rate), settings.tts_cache_entries)
    desk: HandoffDesk = (
        HttpHandoffDesk(settings.webapp_url, settings.service_token.reveal())
        if settings.handoff_backend == "http"
        else InMemoryHandoffDesk()
    )
    store = CallStore(settings.db_path, settings.caller_key_secret, EventPublisher.for_settings(settings.events, name="voice"))
    interrupted = store.close_interrupted(time.time())
    if interrupted:
        log.warning("%d call(s) were cut when the gateway last stopped; recorded as interrupted", len(interrupted))
    return Services(
        settings=settings,
        recognizers=model,
        speech=speech,
        bot=RasaPhoneChannel(settings.rasa_url, settings.rasa_timeout_s, channel_token=settings.channel_token.reveal()),
        desk=desk,
        store=store,
        executor=ThreadPoolExecutor(max_workers=4, thread_name_prefix="asr"),
        menu=menu,
        live_menu=live_menu,
    )


def create_app(services: Services, name: str = "shebao_voice", audiosocket: bool = True) -> Sanic:
    """The Sanic app; starts the AudioSocket server and warms the speech cache before serving."""
    app = Sanic(name, configure_logging=False)
    app.config.WEBSOCKET_PING_INTERVAL = None  # telephony platforms do not answer pings reliably
    settings = services.settings
    app.config.WEBSOCKET_MAX_SIZE = settings.media_stream_max_frame_bytes  # a larger frame closes the stream (1009)

    async def call(inbound: AsyncIterator[Frame], sink: CallSink) -> object:
        return await run_call(inbound, sink, services)

    admission = CallAdmission(settings.max_calls)
    overflow = settings.queue_map.get("", settings.handoff_queue)
    server = AudioSocketServer(call, services.routes, settings.audiosocket_host, settings.audiosocket_port,
                               peers=settings.audiosocket_peers, admission=admission, overflow_queue=overflow,
                               max_message_bytes=settings.audiosocket_max_message_bytes,
                               max_silence_s=settings.max_silence_s)
    app.ctx.audiosocket = server
    app.ctx.admission = admission

    def media_token(request: Request) -> str:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        return request.headers.get("x-media-token") or request.args.get("token") or ""

    @app.on_request
    async def guard_media_stream(request: Request) -> res.HTTPResponse | None:
        """Before the WebSocket upgrade: only the PBX (holding MEDIA_STREAM_TOKEN) and only within the call limit."""
        if request.path != "/media-stream":
            return None
        if not same(media_token(request), settings.media_stream_token.reveal()):
            log.warning("media stream refused: no valid token (peer %s)", request.ip)
            return res.json({"error": "a valid media-stream token is required"}, status=401)
        if admission.full:
            log.warning("media stream refused: %d calls in progress (VOICE_MAX_CALLS)", len(admission.active))
            return res.json({"error": "too many calls in progress"}, status=503)
        return None

    async def warm(texts: list[str]) -> None:
        await services.speech.warm([s for text in texts for s in split_sentences(reply_text({"text": text}))])

    async def swap_menu(menu: GeneratedMenu) -> None:
        """A menu rebuilt after a publication: its new prompts and answers into the speech cache, then callers get it."""
        try:
            await warm(spoken_texts(menu.root))
        except Exception as exc:  # callers get the new content all the same, synthesised when first said
            log.warning("keypad menu: speech warm-up of the rebuilt menu failed (%s)", exc)
        services.menu = menu

    @app.before_server_start
    async def start(app: Sanic) -> None:
        await warm(prompts.WARM_UP if services.menu is None else prompts.KEYPAD_WARM_UP + spoken_texts(services.menu.root))
        if services.menu is not None and services.live_menu is not None and services.live_menu.published is not None:
            app.ctx.menu_watch = asyncio.get_running_loop().create_task(services.live_menu.watch(swap_menu))
        if audiosocket:
            await server.start()

    @app.after_server_stop
    async def stop(app: Sanic) -> None:
        watch = getattr(app.ctx, "menu_watch", None)
        if watch is not None:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
        if audiosocket:
            await server.stop()
        services.speech.close()

    @app.get("/health")
    async def health(request: Request) -> res.HTTPResponse:
        return res.json({
            "status": "ok",
            "recognition": services.recognition,  # "none": keypad only; "vosk:<model>": speech and keypad
            "keypad_menu": services.menu.ranked_by if services.menu else None,
            "keypad_content": services.menu.content if services.menu else None,  # "content files" or "publication <n>"
            "active_calls": services.active_calls,
            "max_calls": settings.max_calls,
            "audiosocket_port": server.port if audiosocket else None,
        })

    @app.get("/calls/<call_id:str>/route")
    async def route(request: Request, call_id: str) -> res.HTTPResponse:
        """Plain text for a dialplan's CURL(): a queue name, 'hangup', or '' (unknown call)."""
        return res.text(services.routes.get(call_id))

    @app.websocket("/media-stream")
    async def media_stream(request: Request, ws: object) -> None:
        sink = MediaStreamSink(ws, services.routes)  # type: ignore[arg-type]
        admission.hold()  # until its start event names the call (inbound_frames), or it goes away
        try:
            await run_call(inbound_frames(ws, sink, admission, settings.max_silence_s), sink,  # type: ignore[arg-type]
                           services)
        finally:
            if sink.call_id:
                admission.release(sink.call_id)
            else:
                admission.unhold()

    return app
