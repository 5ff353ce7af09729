"""Asterisk AudioSocket: a TCP server Asterisk connects to, one connection per call."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

from voice.frames import DTMF_DIGITS, AudioIn, CallStarted, Dtmf, Frame
from voice.transports.base import (
    GOODBYE_GRACE_S,
    MAX_SILENCE_S,
    Action,
    CallAdmission,
    CallSink,
    RouteBook,
    silence_goodbye,
)

log = logging.getLogger(__name__)

KIND_HANGUP = 0x00
KIND_UUID = 0x01
KIND_DTMF = 0x03
KIND_AUDIO = 0x10
KIND_ERROR = 0xFF
MAX_MESSAGE_BYTES = 1280  # 80 ms of 8 kHz audio; Asterisk sends 320 (20 ms). Longer messages are dropped.


def encode(kind: int, payload: bytes = b"") -> bytes:
    """One AudioSocket message: kind, 2-byte big-endian length, payload."""
    return bytes([kind]) + len(payload).to_bytes(2, "big") + payload


class OversizeMessage(ValueError):
    """A message longer than the gateway accepts; its payload was read and dropped, the stream stays aligned."""

    def __init__(self, kind: int, length: int) -> None:
        super().__init__(f"AudioSocket message of kind {kind:#04x} with {length} bytes")
        self.kind, self.length = kind, length


async def read_message(reader: asyncio.StreamReader, max_length: int = 0xFFFF) -> tuple[int, bytes]:
    """Read one message; raises asyncio.IncompleteReadError when the socket closes (a cut header included).

    A payload longer than `max_length` is read (at most 64 KiB: the length field has two bytes) and
    dropped, then OversizeMessage is raised: the next message starts where it should.
    """
    header = await reader.readexactly(3)
    length = int.from_bytes(header[1:3], "big")
    payload = await reader.readexactly(length) if length else b""
    if length > max_length:
        raise OversizeMessage(header[0], length)
    return header[0], payload


class AudioSocketSink:
    """Outbound side of one AudioSocket call."""

    name = "audiosocket"

    def __init__(self, writer: asyncio.StreamWriter, call_id: str, routes: RouteBook) -> None:
        self.writer = writer
        self.call_id = call_id
        self.routes = routes
        self.closed = False

    async def send_audio(self, pcm: bytes) -> None:
        """Send one 20 ms frame (signed 16-bit little-endian, 8 kHz)."""
        if self.closed:
            return
        self.writer.write(encode(KIND_AUDIO, pcm))
        try:
            await self.writer.drain()
        except ConnectionError:
            self.closed = True

    async def clear(self) -> None:
        """Nothing to flush: Asterisk plays frames as they arrive, and we simply stop sending."""

    async def end(self, action: Action, queue: str = "") -> None:
        """Record the route, then send a hangup message: AudioSocket() returns and the dialplan goes on."""
        self.routes.set(self.call_id, action, queue)
        if self.closed:
            return
        self.closed = True
        self.writer.write(encode(KIND_HANGUP))
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()
        self.writer.close()


async def inbound_frames(reader: asyncio.StreamReader, call_id: str, max_length: int = MAX_MESSAGE_BYTES,
                         max_silence_s: float = MAX_SILENCE_S) -> AsyncIterator[Frame]:
    """Caller audio, keys and hang-up of one call, after its CallStarted frame.

    Whatever the peer sends, the call goes on: an odd byte of audio waits for the next message (samples
    stay aligned), an unknown kind, an oversize message, an empty audio message or a key no phone has are
    logged and skipped. Nothing at all for `max_silence_s` (Asterisk sends nothing while no RTP comes, so a
    dead peer looks like silence) ends the call politely (a goodbye, then hang-up, reason no_audio).
    """
    loop = asyncio.get_running_loop()
    yield CallStarted(call_id=call_id, transport="audiosocket")
    odd = b""  # the last byte of an odd-length audio message: the first half of the next sample
    skipped = 0
    limit = max_silence_s
    while True:
        try:
            kind, payload = await asyncio.wait_for(read_message(reader, max_length), limit)
        except asyncio.TimeoutError:
            if limit != max_silence_s:  # the goodbye was sent and the peer still holds the line
                return
            log.warning("call %s: nothing from Asterisk for %.0f s; saying goodbye", call_id, max_silence_s)
            for frame in silence_goodbye():
                yield frame
            limit = GOODBYE_GRACE_S
            continue
        except OversizeMessage as exc:
            skipped += 1
            _log_skipped(call_id, skipped, str(exc))
            continue
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        if kind == KIND_AUDIO:
            pcm, odd = split_samples(odd + payload)
            if pcm:
                yield AudioIn(pcm=pcm, at=loop.time())
        elif kind == KIND_DTMF:
            digit = payload[:1].decode("ascii", "replace")
            if len(payload) == 1 and digit in DTMF_DIGITS:
                yield Dtmf(digit=digit, at=loop.time())
            else:
                skipped += 1
                _log_skipped(call_id, skipped, f"DTMF payload {payload[:4]!r}")
        elif kind == KIND_HANGUP:
            return
        elif kind == KIND_ERROR:
            log.warning("call %s: AudioSocket error message %r", call_id, payload[:8])
            return
        elif kind != KIND_UUID:  # a repeated UUID is harmless; anything else is not ours to read
            skipped += 1
            _log_skipped(call_id, skipped, f"unknown kind {kind:#04x}")


def split_samples(data: bytes) -> tuple[bytes, bytes]:
    """(whole 16-bit samples, the odd byte left over or b"")."""
    cut = len(data) - len(data) % 2
    return data[:cut], data[cut:]


def _log_skipped(call_id: str, count: int, what: str) -> None:
    if count in (1, 10, 100) or count % 1000 == 0:  # a flood of bad messages must not flood the log
        log.warning("call %s: skipped %s (%d skipped so far)", call_id, what, count)


CallRunner = Callable[[AsyncIterator[Frame], CallSink], Awaitable[object]]


class AudioSocketServer:
    """Listens for Asterisk's AudioSocket connections and runs a call for each."""

    def __init__(self, run_call: CallRunner, routes: RouteBook, host: str, port: int,
                 peers: tuple[str, ...] = ("127.0.0.1/32", "::1/128"), admission: CallAdmission | None = None,
                 overflow_queue: str = "", max_message_bytes: int = MAX_MESSAGE_BYTES,
                 max_silence_s: float = MAX_SILENCE_S) -> None:
        self.run_call = run_call
        self.routes = routes
        self.host = host
        self.port = port
        self.server: asyncio.base_events.Server | None = None
        self.calls: set[asyncio.Task[None]] = set()
        # only the PBX may connect: AudioSocket carries no credential, so the peer address is the check
        self.peers = tuple(ipaddress.ip_network(p, strict=False) for p in peers)
        self.admission = admission or CallAdmission(max_calls=50)
        self.overflow_queue = overflow_queue
        self.max_message_bytes = max_message_bytes
        self.max_silence_s = max_silence_s

    def peer_allowed(self, address: str) -> bool:
        """True when the connecting address is one of the configured PBX networks."""
        try:
            ip = ipaddress.ip_address(address.split("%")[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self.peers)

    async def start(self) -> None:
        """Start listening; fails if the port is taken."""
        self.server = await asyncio.start_server(self._accept, self.host, self.port)
        self.port = self.server.sockets[0].getsockname()[1]
        log.info("AudioSocket listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        """Stop listening and end the calls in progress."""
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        for task in list(self.calls):
            task.cancel()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        peer = writer.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if not self.peer_allowed(address):
            log.warning("AudioSocket connection from %s refused: not a configured PBX address (AUDIOSOCKET_PEERS)",
                        address or "an unknown address")
            writer.close()
            return
        if task is not None:
            self.calls.add(task)
        call_id = ""
        try:
            kind, payload = await asyncio.wait_for(read_message(reader), timeout=5)
            if kind != KIND_UUID or len(payload) != 16:
                log.warning("AudioSocket connection did not start with a call UUID; closing it")
                return
            call_id = str(uuid.UUID(bytes=payload))
            refused = self.admission.admit(call_id)
            if refused:
                await self._refuse(writer, call_id, refused)
                call_id = ""  # not ours to release
                return
            sink = AudioSocketSink(writer, call_id, self.routes)
            await self.run_call(inbound_frames(reader, call_id, self.max_message_bytes, self.max_silence_s), sink)
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError, OversizeMessage):
            pass
        finally:
            if call_id:
                self.admission.release(call_id)
            if task is not None:
                self.calls.discard(task)
            writer.close()

    async def _refuse(self, writer: asyncio.StreamWriter, call_id: str, why: str) -> None:
        """A call that may not run: a second connection for a call in progress, or too many calls."""
        if why == "duplicate":
            log.warning("AudioSocket: a second connection for call %s refused (the call is in progress)", call_id)
        else:
            log.warning("AudioSocket: %d calls in progress; call %s goes to the people at %s",
                        len(self.admission.active), call_id, self.overflow_queue or "the dialplan's default")
            if self.overflow_queue:
                self.routes.set(call_id, "transfer", self.overflow_queue)
        writer.write(encode(KIND_HANGUP))
        with contextlib.suppress(ConnectionError):
            await writer.drain()
