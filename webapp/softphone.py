"""The browser softphone: one call of the /phone page relayed to the voice gateway's media stream.

    browser ──/phone/ws (media, dtmf, stop)──▶ Softphone.call ──/media-stream + MEDIA_STREAM_TOKEN──▶ voice gateway
            ◀── media, clear, mark, transcript, heard, ended, error ──┘◀── media, clear, mark, transcript, heard ──┘

The web app is the media-stream client, so the token never reaches the browser; it writes the `connected` and
`start` events itself (call and stream ids of its own making, the caller marked `web`, the client's address as
the source for the card system's limits), and passes on only what it has checked: 20 ms μ-law frames within
real time, single keypad digits, stop. Nothing the page sends chooses a call, a stream or a caller.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any, Protocol

import websockets
from websockets.exceptions import InvalidStatus, WebSocketException

log = logging.getLogger(__name__)

MAX_CALLS = 10  # softphone calls at once, all browsers together (the gateway's own VOICE_MAX_CALLS still applies)
MAX_CALLS_PER_ADDRESS = 2  # …from one client address (a family behind one router may call twice)
MAX_MESSAGE_CHARS = 2048  # a media event of 20 ms is ~260 characters
MAX_FRAME_BYTES = 320  # μ-law bytes in one media event (40 ms); the page sends 160
AUDIO_BURST_BYTES = 8000  # audio may run one second ahead of real time, then frames are dropped
MAX_GATEWAY_MESSAGE = 65536
CONNECT_TIMEOUT_S = 5.0
KEYS = frozenset("0123456789*#")

UNAVAILABLE = "电话服务暂未开通，请稍后再试，或使用文字客服。"
BUSY = "现在打网页电话的人较多，请稍后再拨，或使用文字客服。"
BUSY_ADDRESS = "您这里已经有通话在进行，请先挂断那一通再拨。"
TOO_LARGE = "发送的数据太大，通话已断开。请刷新页面后重新拨打。"
INVALID = "收到一条无法识别的数据，已忽略。"


class Channel(Protocol):
    """The part of a WebSocket the relay uses (Sanic's server side and websockets' client side both fit)."""

    async def send(self, data: str) -> None:
        """Send a text frame."""

    async def recv(self) -> Any:
        """The next frame; None or an exception once closed."""

    async def close(self) -> None:
        """Close the connection."""


class CallSlots:
    """How many softphone calls run, overall and per client address; a call takes a slot or is told why not."""

    def __init__(self, max_calls: int = MAX_CALLS, max_per_address: int = MAX_CALLS_PER_ADDRESS) -> None:
        self.max_calls = max_calls
        self.max_per_address = max_per_address
        self.by_address: dict[str, int] = {}

    @property
    def active(self) -> int:
        """Calls in progress."""
        return sum(self.by_address.values())

    def take(self, address: str) -> str | None:
        """None when the call may start (its slot is taken); otherwise why not: "busy" or "busy_address"."""
        if self.by_address.get(address, 0) >= self.max_per_address:
            return "busy_address"
        if self.active >= self.max_calls:
            return "busy"
        self.by_address[address] = self.by_address.get(address, 0) + 1
        return None

    def give_back(self, address: str) -> None:
        """The call has ended."""
        left = self.by_address.get(address, 0) - 1
        if left > 0:
            self.by_address[address] = left
        else:
            self.by_address.pop(address, None)


@dataclass
class AudioBudget:
    """Caller audio may not outrun real time by more than a second (a page cannot flood the gateway)."""

    start: float
    sent: int = 0

    def allows(self, now: float, size: int) -> bool:
        """Count the frame if it fits the budget; False means drop it."""
        if self.sent + size > (now - self.start) * 8000 + AUDIO_BURST_BYTES:
            return False
        self.sent += size
        return True


@dataclass
class Call:
    """One softphone call: our own ids, and what the page may still send."""

    address: str
    call_sid: str = field(default_factory=lambda: "web-" + secrets.token_hex(16))
    stream_sid: str = field(default_factory=lambda: "MZ" + secrets.token_hex(16))
    budget: AudioBudget = field(default_factory=lambda: AudioBudget(asyncio.get_running_loop().time()))
    last_mark: str = ""
    warned: set[str] = field(default_factory=set)

    def start_events(self) -> list[dict[str, Any]]:
        """The Twilio-style opening of the stream, written by the web app (never by the page)."""
        source = f"web:{self.address}"[:70] if self.address else ""
        return [
            {"event": "connected", "protocol": "Call", "version": "1.0.0"},
            {"event": "start", "sequenceNumber": "1", "streamSid": self.stream_sid,
             "start": {"streamSid": self.stream_sid, "callSid": self.call_sid, "tracks": ["inbound"],
                       "customParameters": {"from": "web", "source": source, "transcript": "on"},
                       "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}},
        ]

    def from_page(self, raw: object, now: float) -> tuple[dict[str, Any] | None, str | None]:
        """(event for the gateway or None, problem code or None) for one message of the page.

        Problems: "too_large" (the call is ended), "invalid" (ignored). Frames beyond the audio budget are
        dropped silently: a slow tab catching up is not a mistake.
        """
        if isinstance(raw, (str, bytes)) and len(raw) > MAX_MESSAGE_CHARS:
            return None, "too_large"
        if not isinstance(raw, str):  # binary frames are not part of the protocol
            return None, "invalid"
        try:
            message = json.loads(raw)
        except ValueError:
            return None, "invalid"
        event = message.get("event") if isinstance(message, dict) else None
        if event == "media":
            payload = (message.get("media") or {}).get("payload") if isinstance(message.get("media"), dict) else None
            try:
                audio = base64.b64decode(payload or "", validate=True) if isinstance(payload, str) else b""
            except (binascii.Error, ValueError):
                audio = b""
            if not audio or len(audio) > MAX_FRAME_BYTES:
                return None, "invalid"
            if not self.budget.allows(now, len(audio)):
                return None, None
            return {"event": "media", "streamSid": self.stream_sid,
                    "media": {"track": "inbound", "payload": base64.b64encode(audio).decode("ascii")}}, None
        if event == "dtmf":
            digit = (message.get("dtmf") or {}).get("digit") if isinstance(message.get("dtmf"), dict) else None
            if not isinstance(digit, str) or digit not in KEYS:
                return None, "invalid"
            return {"event": "dtmf", "streamSid": self.stream_sid, "dtmf": {"track": "inbound_track", "digit": digit}}, None
        if event == "stop":
            return {"event": "stop", "streamSid": self.stream_sid, "stop": {"callSid": self.call_sid}}, None
        return None, "invalid"

    def from_gateway(self, raw: object) -> dict[str, Any] | None:
        """What the page gets of one gateway event: audio, clear, mark, transcript lines, heard; nothing else."""
        try:
            message = json.loads(raw) if isinstance(raw, (str, bytes)) else None
        except ValueError:
            return None
        event = message.get("event") if isinstance(message, dict) else None
        if event == "media":
            payload = (message.get("media") or {}).get("payload")
            return {"event": "media", "payload": payload} if isinstance(payload, str) else None
        if event == "clear":
            return {"event": "clear"}
        if event == "mark":
            self.last_mark = str((message.get("mark") or {}).get("name", ""))[:80]
            return {"event": "mark", "name": self.last_mark}
        if event == "transcript" and message.get("role") in ("caller", "bot"):
            return {"event": "transcript", "role": message["role"], "text": str(message.get("text", ""))[:2000]}
        if event == "heard":
            return {"event": "heard", "frames": message.get("frames"), "level_dbfs": message.get("level_dbfs")}
        return None

    def ending(self) -> dict[str, Any]:
        """How the call ended, for the page: the bot hung up, handed over to a person, or the line dropped."""
        if self.last_mark.startswith("transfer"):
            return {"event": "ended", "reason": "transfer"}
        return {"event": "ended", "reason": "hangup" if self.last_mark == "hangup" else "gateway"}


def _error(code: str, text: str) -> str:
    return json.dumps({"event": "error", "code": code, "text": text}, ensure_ascii=False)


class Softphone:
    """Relays browser calls to the voice gateway's media stream, within the call limits."""

    def __init__(self, voice_url: str, token: str, slots: CallSlots | None = None) -> None:
        self.media_stream_url = voice_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1).rstrip("/") \
            + "/media-stream"
        self.token = token
        self.slots = slots or CallSlots()

    async def call(self, page: Channel, address: str) -> None:
        """Serve one call of the page until the page or the gateway goes away; always ends both sides."""
        refused = self.slots.take(address)
        if refused is not None:
            await page.send(_error(refused, BUSY_ADDRESS if refused == "busy_address" else BUSY))
            return
        try:
            await self._relay(page, Call(address))
        finally:
            self.slots.give_back(address)

    async def _connect(self) -> tuple[Any, str | None]:
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            gateway = await websockets.connect(self.media_stream_url, additional_headers=headers,
                                               max_size=MAX_GATEWAY_MESSAGE, open_timeout=CONNECT_TIMEOUT_S,
                                               ping_interval=None)
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status == 503:
                return None, "busy"
            log.error("softphone: the voice gateway refused the media stream (HTTP %s); is MEDIA_STREAM_TOKEN the "
                      "same for the web app and the gateway?", status)
            return None, "unavailable"
        except (OSError, TimeoutError, WebSocketException) as exc:
            log.warning("softphone: the voice gateway at %s is not reachable (%s)", self.media_stream_url,
                        type(exc).__name__)
            return None, "unavailable"
        return gateway, None

    async def _relay(self, page: Channel, call: Call) -> None:
        gateway, problem = await self._connect()
        if gateway is None:
            await page.send(_error(problem or "unavailable", BUSY if problem == "busy" else UNAVAILABLE))
            return
        loop = asyncio.get_running_loop()
        page_left = stopped = False

        async def page_to_gateway() -> None:
            nonlocal page_left, stopped
            while True:
                try:
                    raw = await page.recv()
                except Exception:  # the page closed
                    raw = None
                if raw is None:
                    page_left = True
                    return
                event, problem = call.from_page(raw, loop.time())
                if problem == "too_large":
                    log.warning("softphone call %s: a page message too large; call ended", call.call_sid)
                    await page.send(_error("too_large", TOO_LARGE))
                    page_left = True
                    return
                if problem is not None and problem not in call.warned:
                    call.warned.add(problem)  # once per call: a broken page must not get a flood back
                    await page.send(_error(problem, INVALID))
                if event is not None:
                    await gateway.send(json.dumps(event))
                    if event["event"] == "stop":
                        page_left = stopped = True
                        return

        async def gateway_to_page() -> None:
            async for raw in gateway:
                out = call.from_gateway(raw)
                if out is not None:
                    await page.send(json.dumps(out, ensure_ascii=False))

        try:
            for event in call.start_events():
                await gateway.send(json.dumps(event))
            await page.send(json.dumps({"event": "started"}))
            tasks = [asyncio.create_task(page_to_gateway()), asyncio.create_task(gateway_to_page())]
            try:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
        except WebSocketException:  # the gateway went away while we were writing to it
            pass
        finally:
            if page_left and not stopped:  # the caller hung up: the gateway ends the call (and saves it) at stop
                with contextlib.suppress(Exception):
                    await gateway.send(json.dumps({"event": "stop", "streamSid": call.stream_sid,
                                                   "stop": {"callSid": call.call_sid}}))
            with contextlib.suppress(Exception):
                await gateway.close()
            if not page_left:
                with contextlib.suppress(Exception):
                    await page.send(json.dumps(call.ending()))
