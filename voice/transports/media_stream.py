"""Twilio-Media-Streams-compatible WebSocket: JSON text frames carrying base64 μ-law at 8 kHz."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal, Protocol

from voice.audio import level_dbfs, pcm16_to_ulaw, ulaw_to_pcm16
from voice.frames import AudioIn, CallStarted, Dtmf, Frame
from voice.transports.base import Action, CallAdmission, RouteBook

log = logging.getLogger(__name__)
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


async def inbound_frames(ws: WebSocketLike, sink: MediaStreamSink,
                         admission: CallAdmission | None = None) -> AsyncIterator[Frame]:
    """Frames of one media stream: CallStarted at the start event, then audio, keys, until stop.

    The call id comes from the platform (callSid); a stream naming a call already in progress gets
    an id of its own, so it can neither join that call nor change where it is routed. Custom parameters
    `transcript: "on"` (transcript and `heard` events back) and `source: "web:<address>"` are what our
    web app's softphone sends; only holders of the media-stream token reach this code.
    """
    loop = asyncio.get_running_loop()
    started = False
    frames_in, loudest = 0, -120.0
    while True:
        try:
            raw = await ws.recv()
        except Exception:  # closed by either side
            return
        if raw is None:
            return
        try:
            message = json.loads(raw)
        except (TypeError, ValueError):
            log.warning("media stream: ignoring a frame that is not JSON")
            continue
        event = message.get("event")
        if event == "start" and not started:
            start = message.get("start") or {}
            sink.stream_sid = str(message.get("streamSid") or start.get("streamSid") or "")
            sink.call_id = str(start.get("callSid") or sink.stream_sid or "")[:64] or f"ms-{uuid.uuid4().hex}"
            if admission is not None:
                if sink.call_id in admission.active:
                    log.warning("media stream: call %s is already in progress; this stream gets its own id",
                                sink.call_id)
                    sink.call_id = f"{sink.call_id}~{uuid.uuid4().hex[:12]}"
                admission.active.add(sink.call_id)
            params = start.get("customParameters") or {}
            started = True
            sink.transcript_on = params.get("transcript") == "on"
            yield CallStarted(call_id=sink.call_id, transport="media_stream", caller=str(params.get("from", ""))[:64],
                              source=str(params.get("source", ""))[:80])
        elif event == "media" and started:
            media = message.get("media") or {}
            if media.get("track", "inbound") in ("inbound", "inbound_track"):
                pcm = ulaw_to_pcm16(base64.b64decode(media.get("payload", "")))
                if sink.transcript_on:
                    frames_in += 1
                    loudest = max(loudest, level_dbfs(pcm))
                    if frames_in % HEARD_EVERY_FRAMES == 0:
                        await sink.send_heard(frames_in, loudest)
                        loudest = -120.0
                yield AudioIn(pcm=pcm, at=loop.time())
        elif event == "dtmf" and started:
            digit = str((message.get("dtmf") or {}).get("digit", ""))[:1]
            if digit:
                yield Dtmf(digit=digit, at=loop.time())
        elif event == "stop":
            return
