"""Fuzzer: whatever a media-stream platform sends, the reader yields well-formed frames and never fails.

Short form in `make test`; `make fuzz` runs it with thousands of examples (tests/fuzzing.py).
"""
from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzzing import FUZZ, GARBAGE, JSON
from voice.frames import DTMF_DIGITS, AudioIn, CallStarted, Dtmf
from voice.transports.base import RouteBook
from voice.transports.media_stream import MAX_PAYLOAD_BYTES, MediaStreamSink, inbound_frames

FIELD = JSON | st.text(alphabet="ABCDabcd0123+/=%", max_size=40) | st.binary(max_size=40).map(
    lambda b: base64.b64encode(b).decode())
EVENT = st.sampled_from(["connected", "start", "media", "dtmf", "mark", "stop", "clear", "", "MEDIA"]) | JSON


@st.composite
def messages(draw: st.DrawFn) -> Any:
    """A platform message: mostly the right shape with wrong parts, sometimes anything at all."""
    if draw(st.integers(0, 9)) < 3:
        return draw(GARBAGE)
    event = draw(EVENT)
    body = {"event": event, "streamSid": draw(FIELD),
            "start": draw(st.fixed_dictionaries({"callSid": FIELD, "customParameters": FIELD}) | JSON),
            "media": draw(st.fixed_dictionaries({"payload": FIELD, "track": FIELD}) | JSON),
            "dtmf": draw(st.fixed_dictionaries({"digit": FIELD | st.sampled_from(list("0123456789*#ABCD"))}) | JSON)}
    return json.dumps(body)


class FakeSocket:
    """Plays the platform: hands out the messages, then closes; keeps what the gateway sent."""

    def __init__(self, frames: list[Any]) -> None:
        self.frames = list(frames)
        self.sent: list[str] = []

    async def recv(self) -> Any:
        if not self.frames:
            raise ConnectionError("closed")
        return self.frames.pop(0)

    async def send(self, data: str) -> None:
        self.sent.append(data)

    async def close(self) -> None:
        self.frames.clear()


async def _frames(raw: list[Any]) -> list[object]:
    sink = MediaStreamSink(FakeSocket(raw), RouteBook())  # type: ignore[arg-type]
    return [f async for f in inbound_frames(sink.ws, sink, max_silence_s=5.0)]


@FUZZ
@given(st.lists(messages(), max_size=25))
@example([json.dumps({"event": "start", "start": []}), json.dumps({"event": "media", "media": {"payload": "AAA"}}),
          json.dumps({"event": "dtmf", "dtmf": {"digit": "A"}}), "[" * 5000])
@example([json.dumps({"event": "start"}), json.dumps({"event": "dtmf", "dtmf": {"digit": "²"}}),  # isdigit(), not int()
          json.dumps({"event": "media", "media": "AAAA"})])
def test_any_messages_give_well_formed_frames(raw: list[Any]) -> None:
    frames = asyncio.run(_frames(raw))
    starts = [f for f in frames if isinstance(f, CallStarted)]
    assert len(starts) <= 1 and (not frames or frames[0] is starts[0])
    for frame in frames[1:]:
        if isinstance(frame, AudioIn):
            assert frame.pcm and len(frame.pcm) % 2 == 0 and len(frame.pcm) <= 2 * MAX_PAYLOAD_BYTES
        else:
            assert isinstance(frame, Dtmf) and frame.digit in DTMF_DIGITS
    if starts:
        assert isinstance(starts[0].call_id, str) and 0 < len(starts[0].call_id) <= 64
        assert len(starts[0].caller) <= 64 and len(starts[0].source) <= 80


@FUZZ
@given(st.lists(st.binary(min_size=1, max_size=400), max_size=10), st.lists(st.sampled_from(list("0123456789*#")), max_size=5))
def test_good_media_and_keys_all_arrive_whatever_comes_between(chunks: list[bytes], keys: list[str]) -> None:
    raw: list[Any] = [json.dumps({"event": "start", "start": {"callSid": "CA1"}})]
    for chunk in chunks:
        raw += ["garbage", json.dumps({"event": "media", "media": {"payload": base64.b64encode(chunk).decode()}})]
    raw += [json.dumps({"event": "dtmf", "dtmf": {"digit": k}}) for k in keys]
    frames = asyncio.run(_frames(raw))
    assert [len(f.pcm) for f in frames if isinstance(f, AudioIn)] == [2 * len(c) for c in chunks]
    assert [f.digit for f in frames if isinstance(f, Dtmf)] == keys
