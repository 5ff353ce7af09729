"""In-process stand-ins for tests, benchmarks and the fault run (kept out of the gateway package): fake engines, sinks,
a fake Rasa, espeak-ng speech and test callers."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
from sanic import Request, Sanic
from sanic import response as res

from voice.audio import wav_to_pcm8k
from voice.numbers import extract_number
from voice.transports.base import Action


class ScriptedRecognizer:
    """A recogniser that 'hears' whatever text is queued for the next utterance."""

    def __init__(self, factory: ScriptedRecognizerFactory, grammar: tuple[str, ...]) -> None:
        self.factory = factory
        self.grammar = grammar
        self.fed = 0

    def accept(self, pcm: bytes) -> None:
        """Count the audio."""
        self.fed += len(pcm)

    def partial(self) -> str:
        """The next scripted partial result (the factory's `partials`), or none."""
        return self.factory.partials.pop(0) if self.factory.partials else ""

    def finish(self) -> tuple[str, float]:
        """The next scripted text (and confidence), or nothing heard."""
        self.fed = 0
        return self.factory.heard.pop(0) if self.factory.heard else ("", 0.0)

    def reset(self) -> None:
        """Drop the utterance."""
        self.fed = 0


class ScriptedRecognizerFactory:
    """Hands out ScriptedRecognizers sharing one queue of (text, confidence) results."""

    def __init__(self, heard: list[tuple[str, float]] | None = None, partials: list[str] | None = None) -> None:
        self.heard = list(heard or [])
        self.partials = list(partials or [])  # one per feed of the utterance's audio, in order
        self.grammars: list[tuple[str, ...]] = []

    def create(self, grammar: tuple[str, ...] = ()) -> ScriptedRecognizer:
        """A new scripted recogniser."""
        self.grammars.append(grammar)
        return ScriptedRecognizer(self, grammar)


class ToneEngine:
    """A speech engine that renders each text as a 440 Hz tone, 60 ms per character."""

    def __init__(self, rate: int = 16000) -> None:
        self.rate = rate
        self.texts: list[str] = []

    def synthesize(self, text: str) -> tuple[np.ndarray, int]:
        """A tone as long as the text."""
        self.texts.append(text)
        n = int(self.rate * 0.06 * max(1, len(text)))
        return (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / self.rate)).astype(np.float32), self.rate


class ScriptedBot:
    """An in-memory bot: returns queued replies (or a fixed one) and records what it was sent."""

    def __init__(self, replies: list[list[dict[str, Any]]] | None = None) -> None:
        self.replies = list(replies or [])
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    async def send(self, sender: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        """Record the turn and return the next scripted reply."""
        self.sent.append((sender, text, metadata))
        return self.replies.pop(0) if self.replies else [{"recipient_id": sender, "text": "好的。"}]


class CollectingSink:
    """A CallSink that keeps everything sent to it, with the time each audio frame left."""

    name = "collecting"

    def __init__(self) -> None:
        self.frames: list[tuple[float, bytes]] = []
        self.clears = 0
        self.ended: tuple[Action, str] | None = None
        self.ended_event = asyncio.Event()

    async def send_audio(self, pcm: bytes) -> None:
        """Keep the frame."""
        self.frames.append((asyncio.get_running_loop().time(), pcm))

    async def clear(self) -> None:
        """Count the clear."""
        self.clears += 1

    async def end(self, action: Action, queue: str = "") -> None:
        """Remember how the call ended."""
        self.ended = (action, queue)
        self.ended_event.set()


# --- a fake Rasa "phone" channel -------------------------------------------------------------

def fake_rasa_reply(sender: str, message: str) -> list[dict[str, Any]]:
    """The fake bot's script, close to the real one's shapes (kb answers, buttons, hand-off)."""
    def msg(text: str, **extra: Any) -> dict[str, Any]:
        return {"recipient_id": sender, "text": text, **extra}

    number = extract_number(message)
    if "人工" in message or "상담원" in message or message == "/human_handoff":
        return [msg("好的，正在为您转接人工服务，请稍候。",
                    custom={"handoff": {"queue": "shebao-experts", "reason": "caller_asked", "position": 1}})]
    if number and len(number) == 18:
        return [msg(f"收到，您的身份证号是{number}。社保卡挂失需要本人办理，还需要转人工吗？",
                    buttons=[{"title": "转人工", "payload": "/human_handoff"},
                             {"title": "不用了", "payload": "/goodbye"}])]
    if message == "/goodbye":
        return [msg("感谢您的来电，再见。", custom={"end_call": True})]
    if "挂失" in message or "社保卡" in message or message in ("/card_loss", "/report_card_loss"):
        return [msg("请说出您的身份证号码。", custom={"voice": {"expect": "id_number"}})]
    if "养老" in message:
        return [msg("查看 https://example.invalid/pension 了解详情。",
                    custom={"kb": {"id": "pension-001", "score": 0.91,
                                   "voice_answer": "养老保险缴费满十五年，到退休年龄后可以按月领取养老金。"}})]
    return [msg("请问您要办理哪项业务？",
                buttons=[{"title": "社保卡挂失", "payload": "/card_loss"},
                         {"title": "养老保险", "payload": "养老保险怎么领"}])]


def fake_rasa_app(name: str | None = None) -> Sanic:
    """A tiny Sanic app serving /status and /webhooks/phone/webhook with fake_rasa_reply."""
    app = Sanic(name or f"fake_rasa_{uuid.uuid4().hex[:8]}", configure_logging=False)
    app.ctx.requests = []

    @app.get("/status")
    async def status(request: Request) -> res.HTTPResponse:
        return res.json({"model_file": "fake.tar.gz"})

    @app.post("/webhooks/phone/webhook")
    async def webhook(request: Request) -> res.HTTPResponse:
        body = request.json
        app.ctx.requests.append(body)
        return res.json(fake_rasa_reply(body["sender"], body["message"]))

    return app


def fake_desk_app(token: str, name: str | None = None) -> Sanic:
    """A tiny web app serving POST /api/handoff with bearer-token checking."""
    app = Sanic(name or f"fake_desk_{uuid.uuid4().hex[:8]}", configure_logging=False)
    app.ctx.tickets = []

    @app.post("/api/handoff")
    async def handoff(request: Request) -> res.HTTPResponse:
        if request.headers.get("authorization") != f"Bearer {token}":
            return res.json({"error": "unauthorised"}, status=401)
        app.ctx.tickets.append(request.json)
        return res.json({"ok": True}, status=201)

    return app


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def serve(app: Sanic, port: int | None = None) -> AsyncIterator[int]:
    """Serve a Sanic app on loopback inside the running event loop; yields the port."""
    port = port or free_port()
    app.config.TOUCHUP = False  # touch-up recompiles handlers from source; several apps in one process trip it
    server = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False)
    assert server is not None
    await server.startup()
    await server.before_start()
    await server.after_start()
    try:
        yield port
    finally:
        await server.before_stop()
        await server.close()
        await server.after_stop()


# --- speech fixtures made with espeak-ng --------------------------------------------------

def espeak_pcm8k(text: str, voice: str, speed: int = 150) -> bytes:
    """Speak text with espeak-ng (deterministic) and return it as 8 kHz 16-bit PCM."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is missing: run scripts/voice/setup_system.sh")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), text],
                       check=True, capture_output=True)
        return wav_to_pcm8k(path)


def tone_pcm8k(freq: float, ms: int, level: float = 0.3) -> bytes:
    """A sine tone as 8 kHz 16-bit PCM (for noise bursts and 'speech' in stage tests)."""
    n = 8 * ms
    x = level * np.sin(2 * np.pi * freq * np.arange(n) / 8000)
    return (x * 32767).astype("<i2").tobytes()


def digits_of(text: str) -> str:
    """Only the ASCII digits and X of a text."""
    return re.sub(r"[^0-9X]", "", text)


# --- a caller on the media-stream WebSocket -----------------------------------------------

class MediaStreamCaller:
    """Plays a telephony platform: opens a stream, sends paced μ-law audio and keys, records replies."""

    def __init__(self, url: str, call_sid: str | None = None, token: str | None = None) -> None:
        import os

        from common.secrets import DEV_DEFAULTS

        self.url = url
        # the gateway answers only the PBX, which holds MEDIA_STREAM_TOKEN ("" = present none)
        self.token = os.environ.get("MEDIA_STREAM_TOKEN") or DEV_DEFAULTS["MEDIA_STREAM_TOKEN"] if token is None else token
        self.call_sid = call_sid or f"CA{uuid.uuid4().hex}"
        self.stream_sid = f"MZ{uuid.uuid4().hex}"
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.closed = asyncio.Event()
        self._ws: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._chunk = 0

    async def __aenter__(self) -> MediaStreamCaller:
        import websockets

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self._ws = await websockets.connect(self.url, max_size=None, additional_headers=headers)
        await self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self._send({
            "event": "start", "sequenceNumber": "1", "streamSid": self.stream_sid,
            "start": {"streamSid": self.stream_sid, "accountSid": "ACtest", "callSid": self.call_sid,
                      "tracks": ["inbound"], "customParameters": {"from": "13812345678"},
                      "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}},
        })
        self._reader = asyncio.get_running_loop().create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            await self._send({"event": "stop", "streamSid": self.stream_sid,
                              "stop": {"accountSid": "ACtest", "callSid": self.call_sid}})
            await self._ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._reader, 2)

    async def _send(self, message: dict[str, Any]) -> None:
        import json

        await self._ws.send(json.dumps(message))

    async def _read(self) -> None:
        import json

        loop = asyncio.get_running_loop()
        try:
            async for raw in self._ws:
                self.received.append((loop.time(), json.loads(raw)))
        except Exception:
            pass
        finally:
            self.closed.set()

    async def say(self, pcm: bytes, trailing_silence_ms: int = 0) -> float:
        """Send 8 kHz PCM as paced 20 ms μ-law media; returns when the speech itself ended."""
        import base64

        from voice.audio import frames_of, pcm16_to_ulaw, silence

        loop = asyncio.get_running_loop()
        speech_frames = frames_of(pcm)
        frames = speech_frames + frames_of(silence(trailing_silence_ms))
        start = loop.time()
        speech_end = start
        for i, frame in enumerate(frames):
            self._chunk += 1
            await self._send({"event": "media", "streamSid": self.stream_sid,
                              "media": {"track": "inbound", "chunk": str(self._chunk),
                                        "timestamp": str(self._chunk * 20),
                                        "payload": base64.b64encode(pcm16_to_ulaw(frame)).decode()}})
            if i == len(speech_frames) - 1:
                speech_end = loop.time() + 0.02
            delay = start + (i + 1) * 0.02 - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        return speech_end

    async def press(self, keys: str, gap_s: float = 0.1) -> None:
        """Send keypad digits as dtmf events."""
        for key in keys:
            await self._send({"event": "dtmf", "streamSid": self.stream_sid,
                              "dtmf": {"track": "inbound_track", "digit": key}})
            await asyncio.sleep(gap_s)

    def media_times(self, since: float = 0.0) -> list[float]:
        """Arrival times of bot audio frames."""
        return [t for t, m in self.received if m.get("event") == "media" and t >= since]

    def audio(self, since: float = 0.0, until: float = float("inf")) -> bytes:
        """Bot audio received in a time window, decoded to 8 kHz PCM."""
        import base64

        from voice.audio import ulaw_to_pcm16

        return b"".join(ulaw_to_pcm16(base64.b64decode(m["media"]["payload"]))
                        for t, m in self.received if m.get("event") == "media" and since <= t < until)

    def events(self, name: str) -> list[dict[str, Any]]:
        """Received events of one kind (media, clear, mark)."""
        return [m for _, m in self.received if m.get("event") == name]

    async def wait_for_audio(self, since: float, timeout: float = 10.0) -> float:
        """Time the first bot audio frame after `since` arrived."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            times = self.media_times(since)
            if times:
                return times[0]
            await asyncio.sleep(0.005)
        raise TimeoutError("no bot audio arrived")

    async def wait_quiet(self, quiet_s: float = 0.3, timeout: float = 30.0) -> float:
        """Wait until the bot has sent no audio for `quiet_s` (it finished speaking)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            times = self.media_times()
            last = times[-1] if times else 0.0
            if times and loop.time() - last >= quiet_s:
                return last
            await asyncio.sleep(0.02)
        raise TimeoutError("the bot kept talking")
