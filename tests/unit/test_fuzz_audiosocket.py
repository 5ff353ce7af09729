"""Fuzzer: whatever bytes Asterisk's side of an AudioSocket sends, the reader yields only well-formed frames.

Short form in `make test`; `make fuzz` runs it with thousands of examples (tests/fuzzing.py).
"""
from __future__ import annotations

import asyncio

from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzzing import FUZZ
from voice.frames import DTMF_DIGITS, AudioIn, CallStarted, Dtmf
from voice.transports.audiosocket import (
    KIND_AUDIO,
    KIND_DTMF,
    KIND_ERROR,
    KIND_HANGUP,
    KIND_UUID,
    MAX_MESSAGE_BYTES,
    encode,
    inbound_frames,
)

KINDS = st.sampled_from([KIND_HANGUP, KIND_UUID, KIND_DTMF, KIND_AUDIO, KIND_ERROR, 0x02, 0x11, 0x12, 0x7F])
MESSAGES = st.lists(st.tuples(KINDS, st.binary(max_size=MAX_MESSAGE_BYTES + 200)), max_size=30)


async def _frames(stream: bytes, max_silence_s: float = 5.0) -> list[object]:
    reader = asyncio.StreamReader()
    reader.feed_data(stream)
    reader.feed_eof()
    return [f async for f in inbound_frames(reader, "call-1", MAX_MESSAGE_BYTES, max_silence_s)]


def _well_formed(frames: list[object]) -> None:
    assert isinstance(frames[0], CallStarted) and not any(isinstance(f, CallStarted) for f in frames[1:])
    for frame in frames[1:]:
        if isinstance(frame, AudioIn):
            assert frame.pcm and len(frame.pcm) % 2 == 0 and len(frame.pcm) <= MAX_MESSAGE_BYTES + 1
        else:
            assert isinstance(frame, Dtmf) and frame.digit in DTMF_DIGITS


@FUZZ
@given(st.binary(max_size=4000))
@example(bytes([KIND_AUDIO, 0x00]))                        # a header cut short
@example(encode(KIND_AUDIO, b"\x01\x02\x03"))              # an odd length
@example(encode(KIND_DTMF, "五".encode()))                  # not one ASCII key
def test_any_byte_stream_gives_well_formed_frames(stream: bytes) -> None:
    _well_formed(asyncio.run(_frames(stream)))


@FUZZ
@given(MESSAGES)
def test_every_audio_byte_taken_is_passed_on_in_whole_samples(messages: list[tuple[int, bytes]]) -> None:
    frames = asyncio.run(_frames(b"".join(encode(kind, payload) for kind, payload in messages)))
    _well_formed(frames)
    taken = 0
    for kind, payload in messages:  # the reader stops at the first hang-up or error message
        if kind in (KIND_HANGUP, KIND_ERROR):
            break
        if kind == KIND_AUDIO and len(payload) <= MAX_MESSAGE_BYTES:
            taken += len(payload)
    passed_on = sum(len(f.pcm) for f in frames if isinstance(f, AudioIn))
    assert passed_on == taken - taken % 2  # only a last odd byte waits (for a next message that never came)
    keys = [f.digit for f in frames if isinstance(f, Dtmf)]
    expected: list[str] = []
    for kind, payload in messages:
        if kind in (KIND_HANGUP, KIND_ERROR):
            break
        if kind == KIND_DTMF and len(payload) == 1 and chr(payload[0]) in DTMF_DIGITS:
            expected.append(chr(payload[0]))
    assert keys == expected
