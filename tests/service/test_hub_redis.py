"""The live-event hub across web app replicas (webapp/hub.py with HUB_REDIS_URL), against the real Redis.

Each test is two or three Hub instances — the "replicas" — on a channel of its own (Redis pub/sub ignores the
database number, so the channel is what keeps tests and installations apart). Outages are played by a relay
between the hubs and Redis that the test closes (every connection cut) and opens again.

Skipped without a reachable Redis, except in CI (CI=true), where that is a failure.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest

from common.settings import SettingsError
from tests.voice.doubles import free_port
from webapp import hub as hub_module
from webapp.hub import Hub, channel_for, shown
from webapp.settings import load_settings

REDIS_URL = os.environ.get("WEBAPP_TEST_REDIS_URL", "redis://127.0.0.1:6379/2")


def reachable_redis() -> str:
    """The test Redis' URL; skip (fail in CI) when nothing answers there."""
    parts = urlsplit(REDIS_URL)
    try:
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=2).close()
    except OSError as e:
        message = f"Redis is not reachable at {REDIS_URL} ({e}); start it or set WEBAPP_TEST_REDIS_URL"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return REDIS_URL


@pytest.fixture()
def redis_url() -> str:
    return reachable_redis()


@pytest.fixture()
def channel() -> str:
    return f"test:hub:{os.getpid()}:{secrets.token_hex(6)}"


class Relay:
    """A TCP relay from a loopback port to Redis that can be cut (listener and connections) and opened again."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self.host, self.port_to, self.db = parts.hostname or "127.0.0.1", parts.port or 6379, parts.path
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}{self.db}"

    async def open(self) -> None:
        self.server = await asyncio.start_server(self._pair, "127.0.0.1", self.port)

    async def cut(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        for w in list(self.writers):
            w.close()
        self.writers.clear()

    async def _pair(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port_to)
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@contextlib.asynccontextmanager
async def replicas(*urls: str, channel: str, **options) -> AsyncIterator[list[Hub]]:
    """Started hubs, one per URL, on one channel; stopped at the end."""
    hubs = [Hub(url, channel=channel, **options) for url in urls]
    for h in hubs:
        h.start()
    try:
        yield hubs
    finally:
        for h in hubs:
            await h.stop()


async def until(condition, seconds: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds} s for {what or condition}"
        await asyncio.sleep(0.02)


async def take(q: asyncio.Queue, n: int, seconds: float = 5.0) -> list[dict]:
    return [await asyncio.wait_for(q.get(), seconds) for _ in range(n)]


async def settle(*hubs: Hub, queues: list[asyncio.Queue], topic: str) -> None:
    """Every event published so far has arrived everywhere: a marker from each hub reached every queue."""
    for h in hubs:
        h.publish(topic, {"type": "marker", "from": h.replica})
    for q in queues:
        got = await take(q, len(hubs))
        assert [e["type"] for e in got] == ["marker"] * len(hubs), got


def dead_port() -> int:
    return free_port()  # nothing listens there


# ---------------------------------------------------------------------------------------------------------------------

def test_the_setting_and_the_channel() -> None:
    assert load_settings({}).hub_redis_url == ""
    assert load_settings({"HUB_REDIS_URL": "redis://:pw@redis:6379/2"}).hub_redis_url == "redis://:pw@redis:6379/2"
    with pytest.raises(SettingsError, match="HUB_REDIS_URL"):
        load_settings({"HUB_REDIS_URL": "http://redis:6379"})
    assert channel_for("redis://127.0.0.1:6379/2") == "hotline:hub:2" and channel_for("redis://h") == "hotline:hub:0"
    assert channel_for("rediss://u:p@h:6380/7") == "hotline:hub:7"
    assert shown("redis://:s3cret@redis:6379/2") == "redis://***@redis:6379/2" == shown("redis://u:s3cret@redis:6379/2")


async def test_without_redis_the_hub_stays_in_process() -> None:
    h = Hub()
    h.start()  # nothing to start
    assert h._tasks == []
    q = h.subscribe("desk")
    assert h.publish("desk", {"type": "x"}) == 1 and q.get_nowait() == {"type": "x"}
    assert h.listeners("desk") == 1
    h.unsubscribe("desk", q)
    assert h.listeners("desk") == 0
    await h.stop()


async def test_a_replica_gets_what_another_publishes_and_its_own_exactly_once(redis_url, channel) -> None:
    async with replicas(redis_url, redis_url, channel=channel) as (a, b):
        await until(lambda: a.connected and b.connected, what="both subscribed")
        qa, qb = a.subscribe("conv:c1"), b.subscribe("conv:c1")
        other = b.subscribe("conv:c2")
        assert a.publish("conv:c1", {"type": "message", "message": {"id": 1, "text": "您好"}}) == 1  # local: at once
        assert qa.get_nowait()["message"]["id"] == 1
        assert (await take(qb, 1))[0] == {"type": "message", "message": {"id": 1, "text": "您好"}}
        await settle(a, b, queues=[qa, qb], topic="conv:c1")
        assert qa.empty() and qb.empty(), "no second copy, from Redis or elsewhere"
        assert other.empty(), "another conversation's page gets nothing"
        b.publish("desk", {"type": "queue_changed", "queue": "社保卡"})  # no desk page on A: nothing, no error
        await settle(a, b, queues=[qa, qb], topic="conv:c1")


async def test_one_publishers_events_keep_their_order(redis_url, channel) -> None:
    async with replicas(redis_url, redis_url, redis_url, channel=channel) as (a, b, c):
        await until(lambda: a.connected and b.connected and c.connected, what="all subscribed")
        qb, qc = b.subscribe("conv:c1"), c.subscribe("conv:c1")
        for i in range(300):
            a.publish("conv:c1", {"type": "message", "message": {"id": i}})
            if i % 3 == 0:
                c.publish("conv:c1", {"type": "other", "n": i})  # another replica interleaves: A's order still holds
        for q in (qb, qc):  # C's own events reached C at once, A's through Redis: each publisher's order holds
            got = await take(q, 400)
            assert [e["message"]["id"] for e in got if e["type"] == "message"] == list(range(300))
            assert [e["n"] for e in got if e["type"] == "other"] == list(range(0, 300, 3))
        await settle(a, b, c, queues=[qb, qc], topic="conv:c1")


async def test_redis_down_at_start_local_delivery_goes_on_and_the_replicas_meet_when_it_comes(redis_url, channel) -> None:
    relay = Relay(redis_url)
    async with replicas(relay.url, redis_url, channel=channel) as (a, b):
        qa, qb = a.subscribe("conv:c1"), b.subscribe("conv:c1")
        started = time.monotonic()
        for i in range(3):
            assert a.publish("conv:c1", {"type": "message", "message": {"id": i}}) == 1
        assert time.monotonic() - started < 0.1, "publish never waits for Redis"
        assert [e["message"]["id"] for e in await take(qa, 3)] == [0, 1, 2]
        await asyncio.sleep(1.0)
        assert not a.connected and qb.empty()
        await relay.open()  # Redis "comes back" for A
        try:
            await until(lambda: a.connected, 20, "A subscribed after Redis came back")
            # what A published while cut off waited in its bounded outbox, in order
            assert [e["message"]["id"] for e in await take(qb, 3, 10)] == [0, 1, 2]
            b.publish("conv:c1", {"type": "message", "message": {"id": 10}})
            assert (await take(qa, 1))[0]["message"]["id"] == 10
            assert (await take(qb, 1))[0]["message"]["id"] == 10
            await settle(a, b, queues=[qa, qb], topic="conv:c1")
            assert qa.empty() and qb.empty()
        finally:
            await relay.cut()


async def test_redis_lost_midway_local_delivery_goes_on_and_cross_replica_resumes(redis_url, channel) -> None:
    relay = Relay(redis_url)
    await relay.open()
    try:
        async with replicas(relay.url, redis_url, channel=channel) as (a, b):
            await until(lambda: a.connected and b.connected, what="both subscribed")
            qa, qb = a.subscribe("desk"), b.subscribe("desk")
            a.publish("desk", {"type": "queue_changed", "n": 1})
            assert (await take(qb, 1))[0]["n"] == 1 and qa.get_nowait()["n"] == 1
            await relay.cut()  # every connection of A to Redis dies, and nothing listens any more
            await until(lambda: not a.connected, 10, "A noticed")
            assert a.publish("desk", {"type": "queue_changed", "n": 2}) == 1 and qa.get_nowait()["n"] == 2
            b.publish("desk", {"type": "queue_changed", "n": 3})  # B's Redis is fine; A is cut off: A misses it
            assert qb.get_nowait()["n"] == 3
            await relay.open()
            await until(lambda: a.connected, 20, "A subscribed again")
            assert (await take(qb, 1, 10))[0]["n"] == 2  # A's event from the outage, delivered late
            a.publish("desk", {"type": "queue_changed", "n": 4})
            b.publish("desk", {"type": "queue_changed", "n": 5})
            for q in (qa, qb):  # each one's own at once, the other's through Redis again
                assert sorted(e["n"] for e in await take(q, 2)) == [4, 5]
            await settle(a, b, queues=[qa, qb], topic="desk")
            assert qa.empty() and qb.empty()
    finally:
        await relay.cut()


async def test_publish_never_blocks_and_the_outbox_is_bounded(channel) -> None:
    async with replicas(f"redis://127.0.0.1:{dead_port()}/0", channel=channel) as (a,):
        q = a.subscribe("desk")
        started = time.monotonic()
        for i in range(hub_module.OUTBOX_SIZE * 3):
            a.publish("desk", {"type": "x", "n": i})
            if q.full():
                q.get_nowait()
        assert time.monotonic() - started < 1.0
        assert a._outbox.qsize() <= hub_module.OUTBOX_SIZE and a._dropped > 0
        await asyncio.sleep(0.5)
        assert not a.connected
    assert all(t.done() for t in a._tasks) and a._tasks == []


async def test_a_page_on_another_replica_counts_for_the_handoff_clock(redis_url, channel) -> None:
    async with replicas(redis_url, redis_url, channel=channel, presence_seconds=0.3) as (a, b):
        await until(lambda: a.connected and b.connected, what="both subscribed")
        assert a.listeners("conv:c1") == 0
        q = b.subscribe("conv:c1")
        await until(lambda: a.listeners("conv:c1") == 1, 5, "A hears of B's page")
        assert b.listeners("conv:c1") == 1 and a.listeners("conv:c2") == 0
        b.unsubscribe("conv:c1", q)
        await until(lambda: a.listeners("conv:c1") == 0, 5, "A hears the page left")
        b.subscribe("conv:c1")
        await until(lambda: a.listeners("conv:c1") == 1, 5)
        await b.stop()  # a replica that stops says so
        await until(lambda: a.listeners("conv:c1") == 0, 5, "A forgets a stopped replica")


async def test_a_silent_replica_stops_counting_but_not_while_this_one_is_cut_off(redis_url, channel) -> None:
    relay = Relay(redis_url)
    await relay.open()
    try:
        async with replicas(relay.url, redis_url, channel=channel, presence_seconds=0.3) as (a, b):
            await until(lambda: a.connected and b.connected, what="both subscribed")
            b.subscribe("conv:c1")
            await until(lambda: a.listeners("conv:c1") == 1, 5)
            await relay.cut()
            await until(lambda: not a.connected, 10)
            await asyncio.sleep(1.5)  # far beyond three periods: A cannot hear B, so what it knew stands
            assert a.listeners("conv:c1") == 1
            await relay.open()
            await until(lambda: a.connected, 20)
            assert a.listeners("conv:c1") == 1
            for t in b._tasks:  # B dies without a word: A forgets it after three periods of silence
                t.cancel()
            await until(lambda: a.listeners("conv:c1") == 0, 5, "A forgets a silent replica")
    finally:
        await relay.cut()
