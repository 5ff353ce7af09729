"""The gateway's doors assume the peer may lie: media-stream token, AudioSocket peers, call ids, call limit."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest
import websockets

from tests.voice.doubles import ScriptedRecognizerFactory, ToneEngine, fake_rasa_app, free_port, serve
from voice.app import create_app
from voice.engines.bot import RasaPhoneChannel
from voice.engines.desk import InMemoryHandoffDesk
from voice.engines.synthesis import SpeechCache
from voice.session import Services
from voice.settings import ListenTimings, Settings
from voice.store import CallStore
from voice.transports.audiosocket import KIND_AUDIO, KIND_HANGUP, KIND_UUID, AudioSocketServer, encode, read_message
from voice.transports.base import CallAdmission, RouteBook

pytestmark = pytest.mark.asyncio


def services(tmp_path: Path, rasa_port: int, **settings: object) -> Services:
    s = Settings(handoff_backend="local", audiosocket_port=free_port(), db_path=tmp_path / "c.sqlite3",
                 timings=ListenTimings(no_input_timeout_ms=30000), **settings)  # type: ignore[arg-type]
    return Services(settings=s, recognizers=ScriptedRecognizerFactory(), speech=SpeechCache(ToneEngine()),
                    bot=RasaPhoneChannel(f"http://127.0.0.1:{rasa_port}"), desk=InMemoryHandoffDesk(),
                    store=CallStore(s.db_path))


@pytest.mark.parametrize("headers,query", [({}, ""), ({"Authorization": "Bearer wrong"}, ""), ({}, "?token="),
                                           ({"X-Media-Token": "dev-media-stream-tokeN"}, "")])
async def test_media_stream_without_the_token_is_refused_before_the_upgrade(tmp_path: Path, headers, query) -> None:
    async with serve(fake_rasa_app()) as rasa_port:
        app = create_app(services(tmp_path, rasa_port), name=f"v{uuid.uuid4().hex[:8]}", audiosocket=False)
        async with serve(app) as port:
            with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
                await websockets.connect(f"ws://127.0.0.1:{port}/media-stream{query}", additional_headers=headers)
            assert refused.value.response.status_code == 401
            async with httpx.AsyncClient() as http:
                assert (await http.get(f"http://127.0.0.1:{port}/health")).json()["active_calls"] == 0


async def test_media_stream_with_the_token_in_any_accepted_place_is_served(tmp_path: Path) -> None:
    async with serve(fake_rasa_app()) as rasa_port:
        app = create_app(services(tmp_path, rasa_port), name=f"v{uuid.uuid4().hex[:8]}", audiosocket=False)
        async with serve(app) as port:
            for headers, query in (({"Authorization": "Bearer dev-media-stream-token"}, ""),
                                   ({"X-Media-Token": "dev-media-stream-token"}, ""), ({}, "?token=dev-media-stream-token")):
                ws = await websockets.connect(f"ws://127.0.0.1:{port}/media-stream{query}", additional_headers=headers)
                await ws.close()


async def test_media_stream_beyond_the_call_limit_gets_503(tmp_path: Path) -> None:
    async with serve(fake_rasa_app()) as rasa_port:
        app = create_app(services(tmp_path, rasa_port, max_calls=1), name=f"v{uuid.uuid4().hex[:8]}", audiosocket=False)
        async with serve(app) as port:
            app.ctx.admission.active.add("CA-in-progress")
            with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
                await websockets.connect(f"ws://127.0.0.1:{port}/media-stream",
                                         additional_headers={"Authorization": "Bearer dev-media-stream-token"})
            assert refused.value.response.status_code == 503


async def test_a_stream_that_has_not_started_holds_a_slot_until_it_goes_away(tmp_path: Path) -> None:
    """A flood of streams that connect and never send "start" must not get past VOICE_MAX_CALLS."""
    async with serve(fake_rasa_app()) as rasa_port:
        app = create_app(services(tmp_path, rasa_port, max_calls=1), name=f"v{uuid.uuid4().hex[:8]}", audiosocket=False)
        async with serve(app) as port:
            url, auth = f"ws://127.0.0.1:{port}/media-stream", {"Authorization": "Bearer dev-media-stream-token"}
            silent = await websockets.connect(url, additional_headers=auth)
            await silent.send('{"event": "connected"}')
            for _ in range(50):
                if app.ctx.admission.pending:
                    break
                await asyncio.sleep(0.05)
            assert app.ctx.admission.pending == 1 and not app.ctx.admission.active
            with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
                await websockets.connect(url, additional_headers=auth)
            assert refused.value.response.status_code == 503
            await silent.close()
            for _ in range(50):
                if not app.ctx.admission.pending:
                    break
                await asyncio.sleep(0.05)
            assert app.ctx.admission.pending == 0
            again = await websockets.connect(url, additional_headers=auth)  # the slot is free again
            await again.close()


async def test_a_stream_that_never_starts_is_closed_after_the_start_timeout() -> None:
    from voice.transports.media_stream import MediaStreamSink, inbound_frames

    class Chatty:
        """Sends a "connected" event every 50 ms, never "start"."""

        async def recv(self) -> str:
            await asyncio.sleep(0.05)
            return '{"event": "connected"}'

        async def send(self, data: str) -> None:
            pass

        async def close(self) -> None:
            pass

    admission = CallAdmission(max_calls=5)
    sink = MediaStreamSink(Chatty(), RouteBook())  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    frames = [f async for f in inbound_frames(sink.ws, sink, admission, max_silence_s=300, start_timeout_s=0.5)]
    assert frames == [] and not sink.call_id
    assert 0.4 < loop.time() - t0 < 3  # closed by the start timeout, not by the 300 s of silence


async def test_a_second_stream_naming_a_call_in_progress_gets_an_id_of_its_own(tmp_path: Path) -> None:
    from tests.voice.doubles import MediaStreamCaller

    async with serve(fake_rasa_app()) as rasa_port:
        app = create_app(services(tmp_path, rasa_port), name=f"v{uuid.uuid4().hex[:8]}", audiosocket=False)
        async with serve(app) as port:
            url = f"ws://127.0.0.1:{port}/media-stream"
            async with MediaStreamCaller(url, call_sid="CAvictim") as victim:
                await victim.wait_for_audio(0, timeout=5)
                async with MediaStreamCaller(url, call_sid="CAvictim") as intruder:
                    await intruder.wait_for_audio(0, timeout=5)
                    active = set(app.ctx.admission.active)
            assert "CAvictim" in active and len(active) == 2
            assert any(a.startswith("CAvictim~") for a in active)


async def _call_from(server: AudioSocketServer, call: uuid.UUID) -> list[int]:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(encode(KIND_UUID, call.bytes))
    kinds = []
    try:
        while True:
            kind, _ = await asyncio.wait_for(read_message(reader), 3)
            kinds.append(kind)
            if kind == KIND_HANGUP or len(kinds) > 5:
                break
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.TimeoutError):
        pass
    writer.close()
    return kinds


async def test_audiosocket_refuses_peers_that_are_not_the_pbx_and_serves_those_that_are() -> None:
    ran: list[str] = []

    async def run_call(frames, sink) -> None:
        async for frame in frames:
            ran.append(getattr(frame, "call_id", ""))
            await sink.send_audio(b"\0" * 320)
            break
        await sink.end("hangup")

    for peers, served in ((("10.9.8.7/32",), False), (("127.0.0.0/8",), True)):
        server = AudioSocketServer(run_call, RouteBook(), "127.0.0.1", 0, peers=peers)
        await server.start()
        try:
            kinds = await _call_from(server, uuid.uuid4())
        finally:
            await server.stop()
        assert (kinds == [KIND_AUDIO, KIND_HANGUP]) is served, (peers, kinds)
    assert len(ran) == 1


async def test_audiosocket_never_lets_a_second_connection_join_a_call_and_routes_overflow_to_people() -> None:
    release = asyncio.Event()

    async def run_call(frames, sink) -> None:
        async for _ in frames:
            await sink.send_audio(b"\0" * 320)
            await release.wait()
            break
        await sink.end("hangup")

    routes = RouteBook()
    server = AudioSocketServer(run_call, routes, "127.0.0.1", 0, admission=CallAdmission(max_calls=1),
                               overflow_queue="shebao-experts")
    await server.start()
    try:
        first = uuid.uuid4()
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(encode(KIND_UUID, first.bytes))
        assert (await asyncio.wait_for(read_message(reader), 3))[0] == KIND_AUDIO
        # the same call id again: hung up at once, the call in progress is untouched
        assert await _call_from(server, first) == [KIND_HANGUP]
        assert routes.get(str(first)) == ""
        # another call beyond the limit: hung up with its route set to the people's queue
        other = uuid.uuid4()
        assert await _call_from(server, other) == [KIND_HANGUP]
        assert routes.get(str(other)) == "shebao-experts"
        release.set()
        assert (await asyncio.wait_for(read_message(reader), 3))[0] == KIND_HANGUP
        writer.close()
        await asyncio.sleep(0.05)
        assert server.admission.active == set()
    finally:
        await server.stop()
