"""The browser softphone's relay (webapp/softphone.py, /phone/ws) against an in-process fake gateway and the real one.

The fake gateway is a Sanic app that checks the media-stream token the way voice/app.py does and records every
event; the page is a websockets client on the web app's /phone/ws, as the browser would be.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from sanic import Request, Sanic
from sanic import response as res

from tests.voice.doubles import ScriptedRecognizerFactory, ToneEngine, fake_rasa_app, free_port, serve, tone_pcm8k
from voice.app import create_app as create_gateway
from voice.audio import pcm16_to_ulaw
from voice.engines.bot import RasaPhoneChannel
from voice.engines.desk import InMemoryHandoffDesk
from voice.engines.synthesis import SpeechCache
from voice.session import Services
from voice.settings import ListenTimings
from voice.settings import Settings as VoiceSettings
from voice.store import CallStore
from webapp.app import create_app
from webapp.settings import Settings
from webapp.softphone import MAX_MESSAGE_CHARS, CallSlots

pytestmark = pytest.mark.asyncio
TOKEN = "media-token-for-the-softphone-tests"


def fake_gateway() -> Sanic:
    """Answers /media-stream only with the token; records the events; greets with 5 frames; echoes keys as marks."""
    app = Sanic(f"fake_gw_{uuid.uuid4().hex[:8]}", configure_logging=False)
    app.config.WEBSOCKET_PING_INTERVAL = None
    app.ctx.events, app.ctx.headers, app.ctx.closed = [], [], asyncio.Event()

    @app.on_request
    async def guard(request: Request):
        app.ctx.headers.append(dict(request.headers))
        if request.path == "/media-stream" and request.headers.get("authorization") != f"Bearer {TOKEN}":
            return res.json({"error": "a valid media-stream token is required"}, status=401)
        return None

    @app.websocket("/media-stream")
    async def media(request: Request, ws: Any) -> None:
        try:
            async for raw in ws:
                event = json.loads(raw)
                app.ctx.events.append(event)
                if event["event"] == "start":
                    for _ in range(5):
                        await ws.send(json.dumps({"event": "media", "streamSid": "x",
                                                  "media": {"payload": base64.b64encode(b"\xff" * 160).decode()}}))
                    await ws.send(json.dumps({"event": "transcript", "role": "bot", "text": "您好"}))
                    await ws.send(json.dumps({"event": "something-internal", "secret": TOKEN}))
                elif event["event"] == "dtmf":
                    await ws.send(json.dumps({"event": "clear", "streamSid": "x"}))
                    if event["dtmf"]["digit"] == "#":
                        await ws.send(json.dumps({"event": "mark", "mark": {"name": "hangup"}}))
                        await ws.close()
                        return
                elif event["event"] == "stop":
                    return
        finally:
            app.ctx.closed.set()

    return app


def webapp(tmp_path: Path, voice_port: int, token: str = TOKEN) -> Sanic:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/w.db", voice_url=f"http://127.0.0.1:{voice_port}",
                        media_stream_token=token)
    return create_app(settings, name=f"w{uuid.uuid4().hex[:8]}")


class Page:
    """The browser side of /phone/ws: sends what the page sends, keeps what it receives."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.received: list[dict[str, Any]] = []
        self.raw: list[str] = []

    async def send(self, message: dict[str, Any] | str) -> None:
        await self.ws.send(message if isinstance(message, str) else json.dumps(message))

    async def until(self, check, timeout: float = 10.0) -> dict[str, Any]:
        """Read until a received event satisfies `check`; returns it."""
        async with asyncio.timeout(timeout):
            for m in self.received:
                if check(m):
                    return m
            async for raw in self.ws:
                self.raw.append(raw)
                self.received.append(json.loads(raw))
                if check(self.received[-1]):
                    return self.received[-1]
        raise AssertionError(f"the page was closed before it got the event; it got {self.received}")

    def events(self, name: str) -> list[dict[str, Any]]:
        return [m for m in self.received if m.get("event") == name]


async def open_page(port: int, origin: str | None = None) -> Page:
    headers = {"Origin": origin or f"http://127.0.0.1:{port}"}
    return Page(await websockets.connect(f"ws://127.0.0.1:{port}/phone/ws", additional_headers=headers))


def media(payload: bytes) -> dict[str, Any]:
    return {"event": "media", "media": {"payload": base64.b64encode(payload).decode()}}


async def wait_for(condition, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def started_call(tmp_path: Path) -> AsyncIterator[tuple[Sanic, Page]]:
    """A fake gateway, the web app in front of it, and a page whose call has started (15 s at most)."""
    gateway = fake_gateway()
    async with serve(gateway) as gw_port, serve(webapp(tmp_path, gw_port)) as port, asyncio.timeout(15):
        page = await open_page(port)
        await page.until(lambda m: m["event"] == "started")
        yield gateway, page


async def test_the_web_app_opens_the_stream_itself_and_the_page_never_sees_the_token(tmp_path: Path) -> None:
    gateway = fake_gateway()
    async with serve(gateway) as gw_port, serve(webapp(tmp_path, gw_port)) as port:
        async with asyncio.timeout(15):
            _, html = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/phone")
            assert "拨打" in html and TOKEN not in html
            page = await open_page(port)
            await page.until(lambda m: m["event"] == "started")
            await page.until(lambda m: m["event"] == "transcript")  # sent after the gateway read the start
            connected, start = gateway.ctx.events[:2]
            assert connected["event"] == "connected" and start["event"] == "start"
            call = start["start"]
            assert call["callSid"].startswith("web-") and len(call["callSid"]) == 36  # our own id: 128 random bits
            assert start["streamSid"] == call["streamSid"] and call["streamSid"].startswith("MZ")
            assert call["customParameters"] == {"from": "web", "source": "web:127.0.0.1", "transcript": "on"}
            assert call["mediaFormat"] == {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
            assert gateway.ctx.headers[-1]["authorization"] == f"Bearer {TOKEN}"
            # the page gets audio and lines, never the gateway's ids, its other events or the token
            assert len(page.events("media")) == 5 and page.events("media")[0]["payload"]
            assert page.events("transcript") == [{"event": "transcript", "role": "bot", "text": "您好"}]
            assert not any(TOKEN in raw or call["callSid"] in raw for raw in page.raw)
            assert {m["event"] for m in page.received} == {"started", "media", "transcript"}
            await page.ws.close()
            await gateway.ctx.closed.wait()


def _get(url: str) -> tuple[int, str]:
    import httpx

    r = httpx.get(url, timeout=5)
    return r.status_code, r.text


async def test_keys_and_audio_reach_the_gateway_as_the_page_cannot_choose_them(tmp_path: Path) -> None:
    async with started_call(tmp_path) as (gateway, page):
        await wait_for(lambda: len(gateway.ctx.events) >= 2)
        stream = gateway.ctx.events[1]["streamSid"]
        # the page tries to name another stream and track; the relay writes its own
        await page.send({"event": "media", "streamSid": "MZother", "media": {"track": "outbound",
                         "payload": base64.b64encode(pcm16_to_ulaw(tone_pcm8k(440, 20))).decode()}})
        await page.send({"event": "dtmf", "streamSid": "MZother", "dtmf": {"digit": "1"}})
        await page.until(lambda m: m["event"] == "clear")  # the gateway answered the key
        sent = [e for e in gateway.ctx.events if e["event"] in ("media", "dtmf")]
        assert sent[0] == {"event": "media", "streamSid": stream, "media": {"track": "inbound", "payload": sent[0]["media"]["payload"]}}
        assert len(base64.b64decode(sent[0]["media"]["payload"])) == 160
        assert sent[1] == {"event": "dtmf", "streamSid": stream, "dtmf": {"track": "inbound_track", "digit": "1"}}
        # a key that is not on a phone, a start of the page's own, a broken frame: ignored, one clear error
        for bad in ({"event": "dtmf", "dtmf": {"digit": "12"}}, {"event": "dtmf", "dtmf": {"digit": "A"}},
                    {"event": "start", "start": {"callSid": "CAvictim", "customParameters": {"from": "13800000000"}}},
                    media(b""), {"event": "media", "media": {"payload": "!!notbase64"}}, media(b"\x00" * 400), "not json"):
            await page.send(bad)
        await page.send({"event": "dtmf", "dtmf": {"digit": "#"}})  # the fake gateway hangs up on #
        ended = await page.until(lambda m: m["event"] == "ended")
        assert ended == {"event": "ended", "reason": "hangup"}
        errors = page.events("error")
        assert [e["code"] for e in errors] == ["invalid"] and "忽略" in errors[0]["text"]
        starts = [e for e in gateway.ctx.events if e["event"] == "start"]
        assert len(starts) == 1 and starts[0]["start"]["callSid"].startswith("web-")
        assert [e["dtmf"]["digit"] for e in gateway.ctx.events if e["event"] == "dtmf"] == ["1", "#"]
        assert [e for e in gateway.ctx.events if e["event"] == "media"] == sent[:1]


async def test_an_oversized_message_ends_the_call_with_a_clear_error(tmp_path: Path) -> None:
    async with started_call(tmp_path) as (gateway, page):
        await page.send(json.dumps({"event": "media", "media": {"payload": "A" * MAX_MESSAGE_CHARS}}))
        error = await page.until(lambda m: m["event"] == "error")
        assert error["code"] == "too_large" and "太大" in error["text"]
        await gateway.ctx.closed.wait()  # the gateway's side ended too (stop, then close)
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(page.ws.recv(), 5)


async def test_audio_faster_than_real_time_is_dropped(tmp_path: Path) -> None:
    async with started_call(tmp_path) as (gateway, page):
        for _ in range(300):  # 6 s of audio at once
            await page.send(media(b"\xff" * 160))
        await page.send({"event": "dtmf", "dtmf": {"digit": "5"}})
        await page.until(lambda m: m["event"] == "clear")
        relayed = sum(1 for e in gateway.ctx.events if e["event"] == "media")
        assert 50 <= relayed <= 60  # one second ahead of real time, no more
        assert not page.events("error")


async def test_calls_are_limited_per_address_and_overall(tmp_path: Path) -> None:
    gateway = fake_gateway()
    app = webapp(tmp_path, 0)
    async with serve(gateway) as gw_port:
        app.ctx.softphone.media_stream_url = f"ws://127.0.0.1:{gw_port}/media-stream"
        app.ctx.softphone.slots.max_per_address = 2
        async with serve(app) as port, asyncio.timeout(20):
            first, second = await open_page(port), await open_page(port)
            for page in (first, second):
                await page.until(lambda m: m["event"] == "started")
            third = await open_page(port)
            error = await third.until(lambda m: m["event"] == "error")
            assert error["code"] == "busy_address" and "先挂断" in error["text"]
            assert sum(1 for e in gateway.ctx.events if e["event"] == "start") == 2
            await first.send({"event": "stop"})
            await first.ws.close()
            await wait_for(lambda: app.ctx.softphone.slots.active == 1)
            again = await open_page(port)
            await again.until(lambda m: m["event"] == "started")
            # overall: another address would be refused once all slots are taken
            app.ctx.softphone.slots.max_calls = 2
            assert app.ctx.softphone.slots.take("192.0.2.7") == "busy"
            for page in (second, again):
                await page.ws.close()
            await wait_for(lambda: app.ctx.softphone.slots.active == 0)


async def test_slots_count_each_address_and_give_back() -> None:
    slots = CallSlots(max_calls=3, max_per_address=2)
    assert slots.take("a") is None and slots.take("a") is None and slots.take("a") == "busy_address"
    assert slots.take("b") is None and slots.take("c") == "busy"
    slots.give_back("a")
    assert slots.take("c") is None and slots.active == 3
    for address in ("a", "b", "c"):
        slots.give_back(address)
    assert slots.active == 0 and slots.by_address == {}


async def test_without_the_gateway_the_page_is_told_at_once(tmp_path: Path) -> None:
    async with serve(webapp(tmp_path, free_port())) as port, asyncio.timeout(10):
        page = await open_page(port)
        error = await page.until(lambda m: m["event"] == "error")
        assert error["code"] == "unavailable" and "电话服务暂未开通" in error["text"]
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(page.ws.recv(), 5)
        assert page.events("started") == []


async def test_a_gateway_refusing_our_token_is_unavailable_not_a_hang(tmp_path: Path) -> None:
    gateway = fake_gateway()
    async with serve(gateway) as gw_port, serve(webapp(tmp_path, gw_port, token="wrong-token-0123456789")) as port:
        async with asyncio.timeout(10):
            page = await open_page(port)
            error = await page.until(lambda m: m["event"] == "error")
            assert error["code"] == "unavailable"
            assert gateway.ctx.events == []


async def test_another_site_cannot_open_the_softphone(tmp_path: Path) -> None:
    gateway = fake_gateway()
    async with serve(gateway) as gw_port, serve(webapp(tmp_path, gw_port)) as port:
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            await open_page(port, origin="https://evil.example")
        assert refused.value.response.status_code == 403
        assert gateway.ctx.events == []


# --- against the real voice gateway (in process; tones for speech, scripted recognition) -------------------

def gateway_services(tmp_path: Path, rasa_port: int) -> Services:
    s = VoiceSettings(handoff_backend="local", audiosocket_port=free_port(), db_path=tmp_path / "c.sqlite3",
                      media_stream_token=TOKEN, timings=ListenTimings(no_input_timeout_ms=30000))  # type: ignore[arg-type]
    return Services(settings=s, recognizers=ScriptedRecognizerFactory([("我的身份证号是370102199001011234", 0.95)]),
                    speech=SpeechCache(ToneEngine()), bot=RasaPhoneChannel(f"http://127.0.0.1:{rasa_port}"),
                    desk=InMemoryHandoffDesk(), store=CallStore(s.db_path))


async def test_through_the_real_gateway_the_page_hears_the_bot_and_sees_masked_lines(tmp_path: Path) -> None:
    rasa = fake_rasa_app()
    services = gateway_services(tmp_path, 0)
    async with serve(rasa) as rasa_port:
        services.bot = RasaPhoneChannel(f"http://127.0.0.1:{rasa_port}")
        gateway = create_gateway(services, name=f"v{uuid.uuid4().hex[:8]}", audiosocket=False)
        async with serve(gateway) as gw_port, serve(webapp(tmp_path, gw_port)) as port, asyncio.timeout(30):
            page = await open_page(port)
            await page.until(lambda m: m["event"] == "transcript" and m["role"] == "bot")  # the greeting's line
            await page.until(lambda m: m["event"] == "media")
            # the caller speaks (a tone: the recogniser is scripted) and the gateway says it hears the line
            loud = base64.b64encode(pcm16_to_ulaw(tone_pcm8k(300, 20, level=0.5))).decode()
            quiet = base64.b64encode(b"\xff" * 160).decode()
            for i in range(100):
                await page.send({"event": "media", "media": {"payload": loud if i < 40 else quiet}})
                await asyncio.sleep(0.02)
            heard = await page.until(lambda m: m["event"] == "heard")
            assert heard["frames"] == 50 and heard["level_dbfs"] > -20
            said = await page.until(lambda m: m["event"] == "transcript" and m["role"] == "caller")
            assert "370102199001011234" not in said["text"] and "1234" in said["text"]  # masked as the store masks it
            await page.until(lambda m: m["event"] == "transcript" and m["role"] == "bot" and "身份证" in m["text"])
            assert page.events("clear")  # the caller's speech cut the greeting short (barge-in reaches the page)
            await page.send({"event": "stop"})
            await page.ws.close()
            await wait_for(lambda: services.finished_calls, 10)
            record = services.finished_calls[-1]
            assert record.caller == "web" and record.call_id.startswith("web-") and record.transport == "media_stream"


async def test_a_pbx_stream_gets_no_transcript_or_heard_events(tmp_path: Path) -> None:
    from tests.voice.doubles import MediaStreamCaller

    async with serve(fake_rasa_app()) as rasa_port:
        services = gateway_services(tmp_path, rasa_port)
        gateway = create_gateway(services, name=f"v{uuid.uuid4().hex[:8]}", audiosocket=False)
        async with serve(gateway) as gw_port:
            async with MediaStreamCaller(f"ws://127.0.0.1:{gw_port}/media-stream", token=TOKEN) as caller:
                await caller.wait_for_audio(0, timeout=10)
                await caller.say(tone_pcm8k(300, 1200), trailing_silence_ms=800)
                await asyncio.sleep(1.0)
            assert caller.events("media") and not caller.events("transcript") and not caller.events("heard")
