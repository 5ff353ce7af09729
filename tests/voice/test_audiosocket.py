"""Service test: a call over the AudioSocket TCP protocol, with the test playing Asterisk's part."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest

from tests.voice.doubles import ScriptedRecognizerFactory, ToneEngine, fake_rasa_app, free_port, serve
from voice.app import create_app
from voice.audio import level_dbfs
from voice.engines.bot import RasaPhoneChannel
from voice.engines.desk import InMemoryHandoffDesk
from voice.engines.synthesis import SpeechCache
from voice.session import Services
from voice.settings import ListenTimings, Settings
from voice.store import CallStore
from voice.transports.audiosocket import KIND_AUDIO, KIND_DTMF, KIND_HANGUP, KIND_UUID, encode, read_message

pytestmark = pytest.mark.asyncio


async def test_call_over_audiosocket_hears_greeting_and_is_transferred_on_zero(tmp_path: Path) -> None:
    rasa = fake_rasa_app()
    async with serve(rasa) as rasa_port:
        settings = Settings(handoff_backend="local", audiosocket_port=free_port(), db_path=tmp_path / "c.sqlite3",
                            timings=ListenTimings(no_input_timeout_ms=30000))
        desk = InMemoryHandoffDesk()
        services = Services(settings=settings, recognizers=ScriptedRecognizerFactory(),
                            speech=SpeechCache(ToneEngine()), bot=RasaPhoneChannel(f"http://127.0.0.1:{rasa_port}"),
                            desk=desk, store=CallStore(settings.db_path))
        app = create_app(services, name=f"voice_{uuid.uuid4().hex[:8]}")
        async with serve(app) as http_port:
            call = uuid.uuid4()
            reader, writer = await asyncio.open_connection("127.0.0.1", settings.audiosocket_port)
            writer.write(encode(KIND_UUID, call.bytes))
            received: list[tuple[int, bytes]] = []
            for _ in range(25):  # half a second of greeting
                received.append(await asyncio.wait_for(read_message(reader), 5))
            assert {kind for kind, _ in received} == {KIND_AUDIO}
            assert all(len(p) == 320 for _, p in received)
            assert level_dbfs(b"".join(p for _, p in received)) > -20

            writer.write(encode(KIND_DTMF, b"0"))
            kind = KIND_AUDIO
            while kind != KIND_HANGUP:  # the transfer announcement, then the hangup message
                kind, _ = await asyncio.wait_for(read_message(reader), 10)
            writer.close()
            async with httpx.AsyncClient() as http:
                route = await http.get(f"http://127.0.0.1:{http_port}/calls/{call}/route")
            assert route.text == "shebao-experts"
    assert desk.tickets and desk.tickets[0].reason == "caller_pressed_0"
