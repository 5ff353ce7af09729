"""A call's pipeline: an ordered list of stages that frames flow through, one frame at a time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Sequence

from voice.frames import AudioIn, Dtmf, Frame, Hangup, Tick

log = logging.getLogger(__name__)
INBOX_FRAMES = 500  # 10 s of caller audio: far more than a call that keeps up ever holds
# what the caller's side and the clock send: dropped when the inbox is full (stale audio is worth nothing,
# the next tick comes 100 ms later); the call's own feedback (ListenFor, PlaybackFinished) and Hangup never are
_SHEDDABLE = (AudioIn, Dtmf, Tick)


class Stage:
    """One step of the pipeline: takes a frame, yields the frames for the next stage."""

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        """Yield zero or more frames; the default passes the frame through unchanged."""
        yield frame


class Pipeline:
    """Runs frames depth-first through the stages; frames pushed later wait their turn.

    Bounded and unbreakable: the inbox holds at most `max_frames` of the caller's frames (beyond that
    the newest caller audio, keys and ticks are dropped and counted, so a peer that sends faster than
    the call can work costs no memory), and a stage that fails on a frame is logged and skipped for that
    frame only: the call goes on, and a Hangup still reaches every later stage (the Recorder saves the
    call, the hand-off keeps its ticket).
    """

    def __init__(self, stages: Sequence[Stage], max_frames: int = INBOX_FRAMES) -> None:
        self.stages = list(stages)
        self.max_frames = max_frames
        self.dropped = 0
        self.failures = 0
        self._inbox: asyncio.Queue[Frame] = asyncio.Queue()

    def push(self, frame: Frame) -> None:
        """Queue a frame at the head of the pipeline (transports, clocks and feedback use this)."""
        if self._inbox.qsize() >= self.max_frames and isinstance(frame, _SHEDDABLE):
            self.dropped += 1
            if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
                log.warning("call pipeline overloaded: %d caller frames dropped so far", self.dropped)
            return
        self._inbox.put_nowait(frame)

    async def run(self) -> None:
        """Process queued frames until a Hangup frame has gone through every stage."""
        while True:
            frame = await self._inbox.get()
            await self._flow(0, frame)
            if isinstance(frame, Hangup):
                return

    async def _flow(self, index: int, frame: Frame) -> None:
        if index == len(self.stages):
            return
        stage = self.stages[index]
        passed_on = False
        try:
            async for produced in stage.process(frame):
                passed_on = passed_on or produced is frame
                await self._flow(index + 1, produced)
        except Exception:  # noqa: BLE001 - one bad frame must not end the call (later stages ran in _flow)
            self.failures += 1
            log.exception("stage %s failed on a %s frame; the call goes on", type(stage).__name__,
                          type(frame).__name__)
            if isinstance(frame, Hangup) and not passed_on:  # the later stages still close the call: record, ticket
                await self._flow(index + 1, frame)


async def run_stages(stages: Sequence[Stage], frames: Iterable[Frame]) -> list[Frame]:
    """Frames in, frames out: feed frames through stages and collect what leaves the last one."""
    collected: list[Frame] = []

    class _Collect(Stage):
        async def process(self, frame: Frame) -> AsyncIterator[Frame]:
            collected.append(frame)
            yield frame

    pipeline = Pipeline([*stages, _Collect()])
    for frame in frames:
        await pipeline._flow(0, frame)
    return collected
