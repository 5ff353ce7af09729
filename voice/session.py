"""One phone call: the pipeline of stages, fed by a transport and a clock, until hang-up."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

from voice.engines.bot import BotClient
from voice.engines.desk import HandoffDesk
from voice.engines.recognition import RecognizerFactory
from voice.engines.synthesis import SpeechCache
from voice.frames import Frame, Hangup, Tick
from voice.ivr.live import LiveMenu
from voice.ivr.menu import GeneratedMenu, Menu
from voice.ivr.service import KeypadService
from voice.pipeline import Pipeline, Stage
from voice.settings import Settings
from voice.stages.dialogue import Dialogue
from voice.stages.endpointer import Endpointer
from voice.stages.formatter import SpeechFormatter
from voice.stages.handoff import Handoff
from voice.stages.keypad import KeypadCollector
from voice.stages.normaliser import NumberNormaliser
from voice.stages.player import Player
from voice.stages.recogniser import Recogniser
from voice.stages.recorder import Recorder
from voice.stages.synthesiser import Synthesiser
from voice.stages.transcript_feed import TranscriptFeed
from voice.store import CallRecord, CallStore
from voice.transports.base import CallSink, RouteBook

log = logging.getLogger(__name__)
TICK_S = 0.1


@dataclass
class Services:
    """What every call shares: one model (or none: keypad mode), one speech cache, the bot, the desk and the store."""

    settings: Settings
    recognizers: RecognizerFactory | None  # None: no speech model, callers are served by keypad (`menu`)
    speech: SpeechCache
    bot: BotClient
    desk: HandoffDesk
    store: CallStore
    routes: RouteBook = field(default_factory=RouteBook)
    executor: Executor | None = None
    menu: GeneratedMenu | None = None  # the keypad menu new calls get (swapped when the desk publishes)
    live_menu: LiveMenu | None = None  # what rebuilds it (voice/ivr/live.py); None: the menu stays as given
    active_calls: int = 0
    finished_calls: list[CallRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.recognizers is None and self.menu is None:
            raise ValueError("Services without a recogniser need the keypad menu (voice.ivr.menu.load_menu).")

    def main_menu(self) -> Menu:
        """The keypad menu's top level as it is now (a call takes it whenever it is back at the top)."""
        assert self.menu is not None
        return self.menu.root

    @property
    def recognition(self) -> str:
        """How callers are heard: 'none' (keypad only) or 'vosk:<model folder>'."""
        if self.recognizers is None:
            return "none"
        path = getattr(self.recognizers, "path", None)
        return f"vosk:{Path(path).name}" if path else type(self.recognizers).__name__


def build_stages(sink: CallSink, services: Services, record: CallRecord, pipeline: Pipeline) -> list[Stage]:
    """The call's pipeline, in the order audio and text flow through it."""
    settings = services.settings
    if services.recognizers is None:  # keypad mode: no listening stages, the menu answers the keys
        assert services.menu is not None
        listening: list[Stage] = []
        keypad = KeypadService(services.menu.root, services.bot, latest=services.main_menu)
        dialogue = Dialogue(keypad, settings, pipeline.push, opening=keypad.opening(), keypad_only=True)
    else:
        listening = [
            Endpointer(settings.timings),                          # audio → utterance boundaries
            Recogniser(services.recognizers, services.executor, pipeline.push),  # utterance audio → transcript
            NumberNormaliser(),                                     # 幺三八… → 138…
        ]
        dialogue = Dialogue(services.bot, settings, pipeline.push)
    return [
        *listening,
        KeypadCollector(settings.timings.keypad_timeout_ms, settings.keypad_max_digits),  # keys → entries, 0 → a person
        dialogue,                                               # input → Rasa turn (or keypad menu) → reply
        Recorder(record, services.store),                       # transcript and outcome, saved at the end
        TranscriptFeed(sink, record),                           # the lines, live, to a web softphone that asked
        Handoff(services.desk, record),                         # transfer → ticket for the expert seat
        SpeechFormatter(),                                      # reply → speakable text
        Synthesiser(services.speech),                           # text → 8 kHz audio
        Player(sink, pipeline.push),                            # audio → paced 20 ms frames, barge-in
    ]


_running: set[asyncio.Task[CallRecord]] = set()


async def run_call(inbound: AsyncIterator[Frame], sink: CallSink, services: Services) -> CallRecord:
    """Run one call until it hangs up; goes on (and saves the call) even if the caller's task is cancelled."""
    # Web servers cancel a WebSocket handler when the peer disconnects: the call must still
    # see its Hangup frame and save its record, so it runs in a task of its own.
    task = asyncio.get_running_loop().create_task(_run_call(inbound, sink, services))
    _running.add(task)
    task.add_done_callback(_running.discard)
    return await asyncio.shield(task)


async def _run_call(inbound: AsyncIterator[Frame], sink: CallSink, services: Services) -> CallRecord:
    loop = asyncio.get_running_loop()
    record = CallRecord()
    pipeline = Pipeline([], max_frames=services.settings.inbox_frames)
    pipeline.stages = build_stages(sink, services, record, pipeline)

    async def read() -> None:
        try:
            async for frame in inbound:
                pipeline.push(frame)
        except Exception:
            log.exception("transport %s failed", sink.name)
        finally:
            pipeline.push(Hangup(at=loop.time()))

    async def tick() -> None:
        while True:
            await asyncio.sleep(TICK_S)
            pipeline.push(Tick(now=loop.time()))

    tasks = [loop.create_task(read()), loop.create_task(tick())]
    services.active_calls += 1
    try:
        await pipeline.run()
    finally:
        services.active_calls -= 1
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        player = pipeline.stages[-1]
        if isinstance(player, Player) and player.task is not None:
            player.task.cancel()
    services.finished_calls.append(record)
    del services.finished_calls[:-100]
    return record
