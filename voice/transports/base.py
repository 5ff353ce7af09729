"""The interface every transport offers the pipeline, and the book of call routes."""

from __future__ import annotations

import re
import time
from typing import Literal, Protocol, runtime_checkable

from voice import prompts
from voice.frames import BotReply, EndCall, Frame

Action = Literal["transfer", "hangup"]
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_SILENCE_S = 300.0  # nothing at all from the peer this long: the call ends politely (VOICE_MAX_SILENCE_S)
START_TIMEOUT_S = 10.0  # a media stream that has not sent its start event by then is closed (it holds a call slot)
GOODBYE_GRACE_S = 30.0  # after the goodbye, how long the peer may keep the line before the call is ended anyway


def silence_goodbye() -> tuple[Frame, ...]:
    """What a transport sends into the call when its peer went quiet for good: a goodbye, then hang-up.

    The pipeline speaks it, the Recorder keeps it in the transcript with the outcome (completed, reason
    no_audio), and the Player ends the call once it has played.
    """
    return (BotReply(messages=({"text": prompts.NO_AUDIO_GOODBYE},)),
            EndCall(action="hangup", reason="no_audio"))


def is_safe_queue(name: str) -> bool:
    """True when a queue name can be handed to a dialplan as is."""
    return bool(_QUEUE_NAME.match(name))


class CallSink(Protocol):
    """Where a call's outbound audio and control go."""

    name: str

    async def send_audio(self, pcm: bytes) -> None:
        """Send one 20 ms frame of 8 kHz signed 16-bit PCM."""

    async def clear(self) -> None:
        """Drop audio the platform has buffered but not played (barge-in)."""

    async def end(self, action: Action, queue: str = "") -> None:
        """End our side of the call: hand it to a queue, or hang up."""


@runtime_checkable
class TranscriptSink(Protocol):
    """A sink that can also show the call's lines to the caller (only our web softphone asks for them)."""

    async def send_transcript(self, role: Literal["caller", "bot"], text: str) -> None:
        """Send one masked transcript line, if the caller's side asked for them; otherwise nothing."""


class RouteBook:
    """Where each finished call goes next; the PBX asks GET /calls/<id>/route after the bot."""

    def __init__(self, keep_s: float = 3600.0) -> None:
        self.keep_s = keep_s
        self._routes: dict[str, tuple[str, float]] = {}

    def set(self, call_id: str, action: Action, queue: str = "") -> None:
        """Record the route: the queue name for a transfer, or 'hangup'."""
        if action == "transfer" and not is_safe_queue(queue):
            raise ValueError(f"queue name {queue!r} is not safe for a dialplan")
        now = time.monotonic()
        self._routes = {k: v for k, v in self._routes.items() if now - v[1] < self.keep_s}
        self._routes[call_id] = (queue if action == "transfer" else "hangup", now)

    def get(self, call_id: str) -> str:
        """The queue to transfer to, 'hangup', or '' when the call is unknown or still with the bot."""
        route = self._routes.get(call_id)
        return route[0] if route else ""


class CallAdmission:
    """Which calls may start: at most `max_calls` at once, and each call id only once at a time.

    Every door of the gateway assumes its peer may lie: a second connection that names a call already
    in progress must not join or replace it, and a flood of connections must not starve the calls in
    progress (beyond the limit, callers go to the people at the queue instead of the bot).
    """

    def __init__(self, max_calls: int) -> None:
        self.max_calls = max_calls
        self.active: set[str] = set()
        self.pending = 0  # connections accepted that have not named their call yet (a media stream before "start")

    @property
    def full(self) -> bool:
        """True when no further call may start now (calls in progress and connections still opening count)."""
        return len(self.active) + self.pending >= self.max_calls

    def hold(self) -> None:
        """Keep a slot for a connection that has not named its call yet (a media stream before "start"):
        a flood of connections that never start cannot get past the limit."""
        self.pending += 1

    def unhold(self) -> None:
        """The held connection named its call (then `active` counts it) or went away."""
        self.pending = max(0, self.pending - 1)

    def admit(self, call_id: str) -> str | None:
        """Take the call (None) or say why not: "duplicate" or "busy"."""
        if call_id in self.active:
            return "duplicate"
        if self.full:
            return "busy"
        self.active.add(call_id)
        return None

    def release(self, call_id: str) -> None:
        """The call has ended."""
        self.active.discard(call_id)
