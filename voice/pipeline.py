"""A call's pipeline: an ordered list of stages that frames flow through, one frame at a time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Sequence

from voice.frames import Frame, Hangup

log = logging.getLogger(__name__)


class Stage:
    """One step of the pipeline: takes a frame, yields the frames for the next stage."""

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        """Yield zero or more frames; the default passes the frame through unchanged."""
        yield frame


class Pipeline:
    """Runs frames depth-first through the stages; frames pushed later wait their turn."""

    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = list(stages)
        self._inbox: asyncio.Queue[Frame] = asyncio.Queue()

    def push(self, frame: Frame) -> None:
        """Queue a frame at the head of the pipeline (transports, clocks and feedback use this)."""
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
        async for produced in self.stages[index].process(frame):
            await self._flow(index + 1, produced)


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
