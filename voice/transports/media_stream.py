"""Twilio-Media-Streams-compatible WebSocket: JSON text frames carrying base64 μ-law at 8 kHz."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal, Protocol

from voice.audio import level_dbfs, pcm16_to_ulaw, ulaw_to_pcm16
from voice.frames import DTMF_DIGITS, AudioIn, CallStarted, Dtmf, Frame
from voice.transports.base import (
    GOODBYE_GRACE_S,
    MAX_SILENCE_S,
    START_TIMEOUT_S,
    Action,
    CallAdmission,
    RouteBook,
    silence_goodbye,
)

log = logging.getLogger(__name__)
MAX_PAYLOAD_BYTES = 1280  # 160 ms of μ-law; platforms send 160 bytes (20 ms), longer payloads are dropped
RECV_SLICE_S = 1.0  # how often a waiting stream checks that its socket is still open
HEARD_EVERY_FRAMES = 50  # with transcripts on: tell the caller's side every second how much audio arrived


class WebSocketLike(Protocol):
    """The part of a server WebSocket the transport uses (Sanic's and websockets' both fit)."""

    async def send(self, data: str) -> None:
        """Send a text frame."""

    async def recv(self) -> Any:
        """Receive one frame (None or an exception when closed)."""

    async def close(self) -> None:
        """Close the connection."""


class MediaStreamSink:
    """Outbound side of one media stream: media, mark and clear events."""

    name = "media_stream"

    def __init__(self, ws: WebSocketLike, routes: RouteBook) -> None:
        self.ws = ws
        self.routes = routes
        self.stream_sid = ""
        self.call_id = ""
        self.closed = False
        # opt-in extras for our web softphone (customParameters "transcript": "on"); PBX streams never get them
        self.transcript_on = False

    async def _send(self, message: dict[str, Any]) -> None:
        if self.closed:
            return
        try:
            await self.ws.send(json.dumps(message))
        except Exception:  # the platform went away mid-send: the reader sees the close
            self.closed = True

    async def send_audio(self, pcm: bytes) -> None:
        """Send one 20 ms frame as a media event (160 bytes of μ-law)."""
        payload = base64.b64encode(pcm16_to_ulaw(pcm)).decode("ascii")
        await self._send({"event": "media", "streamSid": self.stream_sid, "media": {"payload": payload}})

    async def send_transcript(self, role: Literal["caller", "bot"], text: str) -> None:
        """A transcript line (already masked), only when the stream's start asked for them."""
        if self.transcript_on:
            await self._send({"event": "transcript", "streamSid": self.stream_sid, "role": role, "text": text})

    async def send_heard(self, frames: int, level: float) -> None:
        """How much caller audio arrived so far and its loudest frame of the last second (dBFS), when asked for."""
        if self.transcript_on:
            await self._send({"event": "heard", "streamSid": self.stream_sid, "frames": frames,
                              "level_dbfs": round(max(level, -99.0), 1)})

    async def clear(self) -> None:
        """Ask the platform to drop the audio it has queued (barge-in)."""
        await self._send({"event": "clear", "streamSid": self.stream_sid})

    async def end(self, action: Action, queue: str = "") -> None:
        """Record the route, mark it on the stream, and close: the platform's call flow goes on."""
        self.routes.set(self.call_id, action, queue)
        name = f"transfer:{queue}" if action == "transfer" else "hangup"
        await self._send({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}})
        self.closed = True
        with contextlib.suppress(Exception):
            await self.ws.close()


async def inbound_frames(ws: WebSocketLike, sink: MediaStreamSink, admission: CallAdmission | None = None,
                         max_silence_s: float = MAX_SILENCE_S,
                         start_timeout_s: float = START_TIMEOUT_S) -> AsyncIterator[Frame]:
    """Frames of one media stream: CallStarted at the start event, then audio, keys, until stop.

    The call id comes from the platform (callSid); a stream naming a call already in progress gets
    an id of its own, so it can neither join that call nor change where it is routed. Custom parameters
    `transcript: "on"` (transcript and `heard` events back) and `source: "web:<address>"` are what our
    web app's softphone sends; only holders of the media-stream token reach this code.

    Whatever the platform sends, the call goes on: a frame that is not a JSON object, an unknown event, a
    field of the wrong type, a payload that is not base64 (or too long), a key no phone has are logged and
    skipped. No message at all for `max_silence_s` (platforms send media every 20 ms, silence included)
    ends the call politely (a goodbye, then hang-up, reason no_audio). A stream that has not sent its start
    event within `start_timeout_s` is closed: until then it holds one of VOICE_MAX_CALLS' slots (voice/app.py).
    """
    loop = asyncio.get_running_loop()
    started = False
    frames_in, loudest = 0, -120.0
    skipped = 0
    limit = max_silence_s
    start_by = loop.time() + start_timeout_s
    while True:
        try:
            raw = await _receive(ws, limit if started else max(0.0, min(limit, start_by - loop.time())))
        except asyncio.TimeoutError:
            if not started:
                log.warning("media stream: no start event within %.0f s; closing", start_timeout_s)
                return
            if limit != max_silence_s:  # the goodbye was sent
                return
            log.warning("media stream %s: nothing for %.0f s; saying goodbye", sink.call_id, max_silence_s)
            for frame in silence_goodbye():
                yield frame
            limit = GOODBYE_GRACE_S
            continue
        except Exception:  # closed by either side
            return
        if raw is None:
            return
        message = parse_message(raw)
        if message is None:
            skipped += 1
            _log_skipped(skipped, "a frame that is not a JSON object")
            continue
        event = message.get("event")
        if event == "start" and not started:
            start = _object(message.get("start"))
            sink.stream_sid = _text(message.get("streamSid") or start.get("streamSid"))[:64]
            sink.call_id = _text(start.get("callSid") or sink.stream_sid)[:64] or f"ms-{uuid.uuid4().hex}"
            if admission is not None:
                admission.unhold()  # held since the connection opened (voice/app.py); now counted as active
                if sink.call_id in admission.active:
                    log.warning("media stream: call %s is already in progress; this stream gets its own id",
                                sink.call_id)
                    sink.call_id = f"{sink.call_id}~{uuid.uuid4().hex[:12]}"
                admission.active.add(sink.call_id)
            params = _object(start.get("customParameters"))
            started = True
            sink.transcript_on = params.get("transcript") == "on"
            yield CallStarted(call_id=sink.call_id, transport="media_stream", caller=_text(params.get("from"))[:64],
                              source=_text(params.get("source"))[:80])
        elif event == "media" and started:
            media = _object(message.get("media"))
            if media.get("track", "inbound") not in ("inbound", "inbound_track"):
                continue
            ulaw = decode_payload(media.get("payload"))
            if ulaw is None:
                skipped += 1
                _log_skipped(skipped, "a media payload that is not base64 of at most 1280 bytes")
                continue
            pcm = ulaw_to_pcm16(ulaw)  # μ-law has one byte a sample: any length decodes whole
            if not pcm:
                continue
            if sink.transcript_on:
                frames_in += 1
                loudest = max(loudest, level_dbfs(pcm))
                if frames_in % HEARD_EVERY_FRAMES == 0:
                    await sink.send_heard(frames_in, loudest)
                    loudest = -120.0
            yield AudioIn(pcm=pcm, at=loop.time())
        elif event == "dtmf" and started:
            digit = _object(message.get("dtmf")).get("digit")
            if isinstance(digit, (str, int)) and not isinstance(digit, bool) and str(digit) in DTMF_DIGITS:
                yield Dtmf(digit=str(digit), at=loop.time())
            else:
                skipped += 1
                _log_skipped(skipped, "a DTMF event without a phone key")
        elif event == "stop":
            return
        elif event not in ("connected", "start", "media", "dtmf", "mark"):
            skipped += 1
            _log_skipped(skipped, "an unknown event")



async def _receive(ws: WebSocketLike, limit: float) -> Any:
    """The next frame; asyncio.TimeoutError after `limit` seconds without one, None once the socket is closed.

    Sanic's WebSocket must not have a waiting recv() cancelled (its frame assembler then refuses every later
    read), and it does not wake a waiting recv() when it fails the connection itself (a frame larger than
    WEBSOCKET_MAX_SIZE: it sends 1009 and closes). So there the wait is cut in slices with recv's own timeout,
    and the state looked at between; other WebSockets (the websockets library) may be cancelled safely.
    """
    if not hasattr(ws, "ws_proto"):
        return await asyncio.wait_for(ws.recv(), limit)
    waited = 0.0
    while waited < limit:
        step = min(RECV_SLICE_S, limit - waited)
        raw = await ws.recv(timeout=step)  # type: ignore[call-arg]  # Sanic: None when the time is up
        if raw is not None:
            return raw
        if _closed(ws):
            return None
        waited += step
    raise asyncio.TimeoutError


def _closed(ws: WebSocketLike) -> bool:
    state = getattr(getattr(ws, "ws_proto", None), "state", None) or getattr(ws, "state", None)
    return getattr(state, "name", "") in ("CLOSING", "CLOSED")


def parse_message(raw: Any) -> dict[str, Any] | None:
    """The JSON object of a text (or UTF-8 binary) frame, or None for anything else."""
    try:
        message = json.loads(raw)
    except (TypeError, ValueError, RecursionError):
        return None
    return message if isinstance(message, dict) else None


def decode_payload(payload: Any) -> bytes | None:
    """The μ-law bytes of a media payload, or None when it is not strict base64 of at most MAX_PAYLOAD_BYTES."""
    if not isinstance(payload, str) or len(payload) > (MAX_PAYLOAD_BYTES + 2) // 3 * 4:
        return None
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value) if isinstance(value, (int, float)) and value else ""


def _log_skipped(count: int, what: str) -> None:
    if count in (1, 10, 100) or count % 1000 == 0:  # a flood of bad frames must not flood the log
        log.warning("media stream: skipped %s (%d skipped so far)", what, count)
