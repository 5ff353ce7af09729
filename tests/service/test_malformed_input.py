"""Malformed input on every door gets a clear answer, and the call or chat goes on (docs/reliability.md).

The phone doors are played by the test (Asterisk's AudioSocket over TCP, a platform's media stream over a
WebSocket), with a fake Rasa and the in-memory hand-off desk; the web app's doors with the service tests' app.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
import yaml

from tests.service.test_desk import TOKEN
from tests.voice.doubles import ScriptedRecognizerFactory, ToneEngine, fake_rasa_app, free_port, serve
from voice import prompts
from voice.app import create_app as create_voice_app
from voice.engines.bot import RasaPhoneChannel
from voice.engines.desk import InMemoryHandoffDesk
from voice.engines.synthesis import SpeechCache
from voice.frames import AudioIn, CallStarted, Dtmf, Frame, Hangup, KeypadEntry, ListenFor, Tick
from voice.pipeline import Pipeline, Stage
from voice.session import Services
from voice.settings import ListenTimings, Settings
from voice.stages.keypad import KeypadCollector
from voice.store import CallStore
from voice.transports.audiosocket import KIND_AUDIO, KIND_DTMF, KIND_HANGUP, KIND_UUID, encode, read_message
from webapp.auth import COOKIE

ROOT = Path(__file__).resolve().parents[2]
SPEC = yaml.safe_load((ROOT / "webapp" / "openapi.yaml").read_text(encoding="utf-8"))


# --- the phone doors ----------------------------------------------------------------------------

async def _gateway(tmp_path: Path, rasa_port: int, **extra: Any) -> tuple[Services, InMemoryHandoffDesk, Any]:
    """A gateway with a scripted recogniser and a tone voice (no speech engine needed), long no-input limits."""
    settings = Settings(handoff_backend="local", audiosocket_port=free_port(), db_path=tmp_path / "calls.sqlite3",
                        timings=ListenTimings(no_input_timeout_ms=60000), **extra)
    desk = InMemoryHandoffDesk()
    services = Services(settings=settings, recognizers=ScriptedRecognizerFactory(), speech=SpeechCache(ToneEngine()),
                        bot=RasaPhoneChannel(f"http://127.0.0.1:{rasa_port}"), desk=desk, store=CallStore(settings.db_path))
    return services, desk, create_voice_app(services, name=f"voice_{uuid.uuid4().hex[:8]}")


async def _until_hangup(reader: asyncio.StreamReader, timeout: float = 15) -> list[int]:
    kinds: list[int] = []
    while not kinds or kinds[-1] != KIND_HANGUP:
        kind, _ = await asyncio.wait_for(read_message(reader), timeout)
        kinds.append(kind)
    return kinds


async def _finished(services: Services, timeout: float = 10) -> Any:
    for _ in range(int(timeout * 20)):
        if services.finished_calls:
            return services.finished_calls[-1]
        await asyncio.sleep(0.05)
    raise AssertionError("the call record was never saved")


async def _answered_call(services) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """An AudioSocket call from the PBX, once the greeting plays."""
    reader, writer = await asyncio.open_connection("127.0.0.1", services.settings.audiosocket_port)
    writer.write(encode(KIND_UUID, uuid.uuid4().bytes))
    await asyncio.wait_for(read_message(reader), 5)
    return reader, writer


async def test_audiosocket_call_goes_on_through_every_malformed_message(tmp_path: Path) -> None:
    async with serve(fake_rasa_app()) as rasa_port:
        services, desk, app = await _gateway(tmp_path, rasa_port)
        async with serve(app):
            reader, writer = await _answered_call(services)
            writer.write(encode(KIND_AUDIO, b"\x01" * 321))          # odd length
            writer.write(encode(KIND_AUDIO, b""))                    # empty
            writer.write(encode(0x42, b"what is this"))              # unknown kind
            writer.write(encode(KIND_AUDIO, b"\x00" * 60000))        # oversize
            writer.write(encode(KIND_DTMF, b"A"))                    # a key no phone has (a menu is offered)
            writer.write(encode(KIND_DTMF, b"\xff"))                 # not even ASCII
            writer.write(encode(KIND_DTMF, b"12"))                   # two keys in one
            writer.write(encode(KIND_DTMF, b""))                     # no key
            writer.write(encode(KIND_UUID, uuid.uuid4().bytes))      # a second call id
            writer.write(encode(KIND_AUDIO, b"\x01" * 319))          # the odd byte above completes a sample
            writer.write(encode(KIND_DTMF, b"0"))                    # the call still answers: a person
            await writer.drain()
            kinds = await _until_hangup(reader)
            writer.close()
            record = await _finished(services)
    assert kinds[-1] == KIND_HANGUP
    assert record.outcome == "transferred" and record.reason == "caller_pressed_0"
    assert desk.tickets and desk.tickets[0].reason == "caller_pressed_0"


async def test_audiosocket_cut_in_a_header_saves_the_call(tmp_path: Path) -> None:
    async with serve(fake_rasa_app()) as rasa_port:
        services, _, app = await _gateway(tmp_path, rasa_port)
        async with serve(app):
            reader, writer = await _answered_call(services)
            writer.write(bytes([KIND_AUDIO, 0x01]))  # two bytes of a three-byte header, then the line drops
            await writer.drain()
            writer.close()
            record = await _finished(services)
    assert record.outcome == "caller_hangup" and record.ended_at


async def test_audiosocket_silence_ends_the_call_politely_and_records_it(tmp_path: Path) -> None:
    async with serve(fake_rasa_app()) as rasa_port:
        services, desk, app = await _gateway(tmp_path, rasa_port, max_silence_s=1.5)
        async with serve(app):
            reader, writer = await asyncio.open_connection("127.0.0.1", services.settings.audiosocket_port)
            writer.write(encode(KIND_UUID, uuid.uuid4().bytes))
            kinds = await _until_hangup(reader, timeout=20)  # nothing more is ever sent: greeting, goodbye, hang-up
            writer.close()
            record = await _finished(services)
    assert kinds.count(KIND_AUDIO) > 50
    assert record.outcome == "completed" and record.reason == "no_audio"
    assert record.transcript[-1].text == prompts.NO_AUDIO_GOODBYE
    assert not desk.tickets
    assert services.routes.get(record.call_id) == "hangup"


MALFORMED_MEDIA: list[str | bytes] = [
    "not json", "[]", "null", "42", '"start"', "{", b"\xff\xfe\x00binary",
    json.dumps({"event": "media"}),                                          # no media
    json.dumps({"event": "media", "media": "AAAA"}),                         # media is not an object
    json.dumps({"event": "media", "media": {"payload": "%%%not base64%%%"}}),
    json.dumps({"event": "media", "media": {"payload": 12345}}),
    json.dumps({"event": "media", "media": {"payload": "A" * 20000}}),       # far too long
    json.dumps({"event": "media", "media": {"payload": "AAA"}}),             # bad padding
    json.dumps({"event": "media", "media": {"payload": ""}}),
    json.dumps({"event": "dtmf"}),
    json.dumps({"event": "dtmf", "dtmf": {"digit": "A"}}),                   # a key no phone has, a menu offered
    json.dumps({"event": "dtmf", "dtmf": {"digit": "é"}}),
    json.dumps({"event": "dtmf", "dtmf": {"digit": "²"}}),                   # str.isdigit() but not int(): killed the menu
    json.dumps({"event": "dtmf", "dtmf": {"digit": None}}),
    json.dumps({"event": "dtmf", "dtmf": {"digit": ["1"]}}),
    json.dumps({"event": "dtmf", "dtmf": "5"}),
    json.dumps({"event": "dtmf", "dtmf": {"digit": "55"}}),
    json.dumps({"event": "dance", "dance": {}}),                             # unknown event
    json.dumps({"event": ["media"]}),
    json.dumps({"event": "start", "start": {"callSid": "CAother"}}),          # a second start
    json.dumps({"event": "mark", "mark": None}),
    json.dumps({"nested": [[[[[[[[[[[]]]]]]]]]]]}),
    "[" * 60000,                                                             # nested beyond the parser
]


async def test_media_stream_call_goes_on_through_every_malformed_message(tmp_path: Path) -> None:
    async with serve(fake_rasa_app()) as rasa_port:
        services, desk, app = await _gateway(tmp_path, rasa_port)
        async with serve(app) as port:
            headers = {"Authorization": f"Bearer {services.settings.media_stream_token.reveal()}"}
            async with websockets.connect(f"ws://127.0.0.1:{port}/media-stream", additional_headers=headers,
                                          max_size=None) as ws:
                await ws.send(json.dumps({"event": "start", "streamSid": "MZ1",
                                          "start": {"callSid": "CAbad", "customParameters": "not an object"}}))
                await asyncio.wait_for(ws.recv(), 5)  # the greeting plays
                for message in MALFORMED_MEDIA:
                    await ws.send(message)
                await ws.send(json.dumps({"event": "dtmf", "dtmf": {"digit": 0}}))  # a number, not a string: still 0
                marks: list[str] = []
                while not marks:
                    event = json.loads(await asyncio.wait_for(ws.recv(), 15))
                    if event["event"] == "mark":
                        marks.append(event["mark"]["name"])
            record = await _finished(services)
    assert marks == ["transfer:shebao-experts"]
    assert record.outcome == "transferred" and record.call_id == "CAbad"
    assert desk.tickets and desk.tickets[0].reason == "caller_pressed_0"


async def test_media_stream_frame_beyond_the_limit_closes_the_stream_and_saves_the_call(tmp_path: Path) -> None:
    async with serve(fake_rasa_app()) as rasa_port:
        services, _, app = await _gateway(tmp_path, rasa_port, media_stream_max_frame_bytes=4096)
        async with serve(app) as port:
            headers = {"Authorization": f"Bearer {services.settings.media_stream_token.reveal()}"}
            async with websockets.connect(f"ws://127.0.0.1:{port}/media-stream", additional_headers=headers,
                                          max_size=None) as ws:
                await ws.send(json.dumps({"event": "start", "start": {"callSid": "CAbig"}}))
                await asyncio.wait_for(ws.recv(), 5)
                await ws.send("x" * 5000)
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    while True:
                        await asyncio.wait_for(ws.recv(), 5)
            record = await _finished(services)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    assert record.call_id == "CAbig" and record.outcome == "caller_hangup"


class _Breaks(Stage):
    """A stage with a bug: it fails on every key and on the hang-up."""

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        if isinstance(frame, (Dtmf, Hangup)):
            raise RuntimeError("a bug")
        yield frame


class _Keep(Stage):
    def __init__(self) -> None:
        self.seen: list[Frame] = []

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        self.seen.append(frame)
        yield frame


async def test_a_stage_failing_on_a_frame_does_not_end_the_call_and_the_hangup_still_arrives() -> None:
    keep = _Keep()
    pipeline = Pipeline([_Breaks(), keep])
    for frame in (CallStarted(call_id="c", transport="t"), Dtmf(digit="1"), AudioIn(pcm=b"\0\0"), Hangup()):
        pipeline.push(frame)
    await asyncio.wait_for(pipeline.run(), 5)
    assert [type(f) for f in keep.seen] == [CallStarted, AudioIn, Hangup]
    assert pipeline.failures == 2


async def test_the_inbox_is_bounded_but_never_drops_the_hangup_or_feedback() -> None:
    keep = _Keep()
    pipeline = Pipeline([keep], max_frames=10)
    for _ in range(1000):
        pipeline.push(AudioIn(pcm=b"\0\0"))
        pipeline.push(Tick(now=0.0))
    pipeline.push(ListenFor())
    pipeline.push(Hangup())
    assert pipeline._inbox.qsize() == 12 and pipeline.dropped == 1990
    await asyncio.wait_for(pipeline.run(), 5)
    assert isinstance(keep.seen[-2], ListenFor) and isinstance(keep.seen[-1], Hangup)


async def test_the_keypad_buffer_is_bounded_and_ignores_keys_no_phone_has() -> None:
    keypad = KeypadCollector(timeout_ms=10000, max_digits=20)
    out: list[Frame] = []
    frames: list[Frame] = [ListenFor(expect="id_number"), *(Dtmf(digit=d) for d in "1A#x²" + "5" * 45)]
    for frame in frames:
        out.extend([f async for f in keypad.process(frame)])
    entries = [f.digits for f in out if isinstance(f, KeypadEntry)]
    assert entries == ["1", "5" * 20, "5" * 20] and keypad.buffer == "55555"
    assert not [f for f in out if isinstance(f, Dtmf) and f.digit in ("A", "x", "²")]


# --- the web app's doors ------------------------------------------------------------------------

BAD_BODIES: list[tuple[str, bytes]] = [
    ("application/json", b"{not json"),
    ("application/json", b"\xff\xfe\xfa binary"),
    ("application/json", b"[]"),
    ("application/json", b"null"),
    ("application/json", b'"text"'),
    ("application/json", b"[" * 50000),
    ("application/json", json.dumps({"text": {"a": 1}, "cid": 7, "title": ["x"], "conversation_id": None,
                                     "transcript": [{"role": {}, "text": 5}], "slots": [], "queue": {},
                                     "status": 3, "client_id": {}, "display": 9, "score": "x"}).encode()),
    ("application/octet-stream", bytes(range(256)) * 4),
    ("text/plain", "你好".encode()),
]


def _operations() -> list[tuple[str, str]]:
    ops = []
    for path, methods in SPEC["paths"].items():
        for method in methods:
            if method in ("post", "put", "patch") and path not in ("/desk/login", "/desk/logout"):
                ops.append((method, re.sub(r"\{[^}]+\}", "1", path)))
    return ops


async def test_every_api_answers_a_bad_body_with_a_json_error_never_a_server_error(app) -> None:
    async with serve(app) as port, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        r = await http.post("/desk/login", json={"username": "supervisor", "password": "supervisor-demo"})
        desk = {"Cookie": f"{COOKIE}={r.cookies[COOKIE]}", **TOKEN}
        http.cookies.clear()
        cid = (await http.get("/api/chat/state")).json()["cid"]
        assert (await http.post("/api/handoff", headers=TOKEN, json={"conversation_id": cid})).status_code == 200
        assert (await http.post("/desk/api/handoffs/1/claim", headers=desk)).status_code == 200
        answers = []
        operations = _operations()
        assert len(operations) >= 8
        for method, path in operations:
            for content_type, body in BAD_BODIES:
                r = await http.request(method, path, content=body, headers={**desk, "Content-Type": content_type})
                answers.append((method, path, body[:20], r.status_code))
                assert r.status_code < 500, (method, path, body[:40], r.status_code, r.text[:300])
                if r.status_code >= 400:
                    assert isinstance(r.json().get("error"), str), (method, path, r.text[:200])
    assert any(status == 400 for *_, status in answers)


async def test_chat_websocket_answers_bad_frames_in_chinese_and_keeps_the_connection(app) -> None:
    async with serve(app) as port, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        r = await http.get("/api/chat/state")
        cookie = "; ".join(f"{k}={v}" for k, v in r.cookies.items())
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws/chat", additional_headers={"Cookie": cookie},
                                      max_size=None) as ws:
            assert json.loads(await ws.recv())["type"] == "state"
            answers = []
            for frame in (b"\x00\xff binary", "not json", "[1, 2]", '{"type": "dance"}', "[" * 100000,
                          json.dumps({"type": "message", "text": "长" * 5000}),
                          json.dumps({"type": "message", "text": {"a": 1}}),
                          json.dumps({"type": "message", "text": "   "})):
                await ws.send(frame)
                answers.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
            assert [a["type"] for a in answers] == ["error"] * 8
            assert answers[0]["text"] == "无法识别这条消息，请输入文字后再发送。"
            assert "消息太长了（5000 字）" in answers[5]["text"]
            assert answers[6]["text"] == answers[7]["text"] == "请输入您要咨询的内容。"
            await ws.send(json.dumps({"type": "message", "text": "社保卡丢了", "client_id": "c1"}))
            seen = [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(2)]
    assert [m["message"]["text"] for m in seen] == ["社保卡丢了", "机器人回答：社保卡丢了"]


async def test_chat_websockets_per_address_are_bounded(tmp_path, monkeypatch) -> None:
    from webapp.app import create_app
    from webapp.rasa_client import RasaClient
    from webapp.settings import Settings as WebSettings

    async def fake_send(self, sender, text, metadata=None, channel="web"):
        return [{"recipient_id": sender, "text": "好的"}]

    monkeypatch.setattr(RasaClient, "send", fake_send)
    app = create_app(WebSettings(database_url=f"sqlite:///{tmp_path}/w.db", chat_max_connections_per_source=2),
                     name=f"w{uuid.uuid4().hex[:8]}")
    async with serve(app) as port, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        r = await http.get("/api/chat/state")
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in r.cookies.items())}
        url = f"ws://127.0.0.1:{port}/ws/chat"
        first = await websockets.connect(url, additional_headers=headers)
        second = await websockets.connect(url, additional_headers=headers)
        for ws in (first, second):
            assert json.loads(await ws.recv())["type"] == "state"
        async with websockets.connect(url, additional_headers=headers) as third:
            refused = json.loads(await third.recv())
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(third.recv(), 5)
        assert refused == {"type": "error", "code": "too_many", "text": "您同时打开的对话页面太多了，请关闭不用的页面后刷新重试。"}
        assert closed.value.rcvd.code == 1013
        await first.close()
        await asyncio.sleep(0.3)
        async with websockets.connect(url, additional_headers=headers) as again:  # a closed page frees its place
            assert json.loads(await again.recv())["type"] == "state"
        await second.close()


# --- Rasa's channels (run in the Rasa environment) ----------------------------------------------

RASA_PYTHON = Path(os.environ.get("RASA_VENV", ROOT / ".venv" / "rasa")) / "bin" / "python"


def test_rasa_channels_refuse_oversized_and_malformed_messages_before_the_nlu() -> None:
    if not RASA_PYTHON.exists():
        pytest.skip("the Rasa environment is not built (make envs)")
    bodies = [
        {"json": {"sender": "s1", "message": "你好"}},
        {"json": {"sender": "s1", "message": "长" * 101}},                      # over the limit of 100
        {"raw": json.dumps({"sender": "s1", "message": "x" * 3_000_000})},      # megabytes: refused unparsed
        {"json": {"sender": "s1", "message": "你好", "metadata": {"k": "v" * 9000}}},
        {"raw": "{not json"},
        {"json": ["sender", "message"]},
        {"json": {"sender": {"a": 1}, "message": 5}},
        {"json": {"sender": "s1", "message": "还在"}},
    ]
    job = {"token": "probe-token", "max_chars": 100, "bodies": bodies}
    done = subprocess.run([str(RASA_PYTHON), str(ROOT / "tests" / "service" / "rasa_channel_probe.py")],
                          input=json.dumps(job), capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    answers = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [a["status"] for a in answers] == [200, 413, 413, 413, 400, 400, 400, 200]
    assert [a["reached_nlu"] for a in answers] == [True, False, False, False, False, False, False, True]
    assert answers[1]["body"]["text"] == "消息太长了，请精简后再发送。" and answers[1]["body"]["max_chars"] == 100
    assert "sender" in answers[4]["body"]["text"]
