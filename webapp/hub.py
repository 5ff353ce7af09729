"""Publish/subscribe for live pages: a conversation's chat page and the agent desk, across web app replicas.

Topics: "conv:<conversation id>" (the citizen's open chat pages) and "desk" (all agent pages). The database is
the source of truth, so a page that reconnects re-reads its state and misses nothing.

Without HUB_REDIS_URL (the default) the hub is in-process: an event reaches the pages connected to this process.
With it, every replica also sends each event to one Redis channel and a subscriber task hands what the other
replicas send to its own pages:

    publish(topic, event) ─▶ this replica's queues (at once, exactly once)
                          └▶ outbox (bounded) ─▶ sender task ─▶ PUBLISH <channel> {"r": replica, "t": topic, "e": event}
    subscriber task ◀─ SUBSCRIBE <channel>: a message of another replica ─▶ this replica's queues
                                            one of this replica's own ─▶ ignored (already delivered)

One channel for every topic, the topic inside the message: each replica receives every event and keeps those its
pages subscribe to. The hotline's rate (tens of events a second at most, a few replicas) costs Redis and the
replicas nothing, and in exchange the subscription never changes: no SUBSCRIBE/UNSUBSCRIBE as pages come and go,
no window where a just-opened page's topic is not subscribed yet, one re-subscription after an outage, and one
publisher's events stay in the order it published them (one connection, one channel). Redis pub/sub ignores the
database number, so the channel is named after it ("hotline:hub:<db>"): two installations sharing a Redis on
different database numbers do not see each other's events.

Presence: `listeners(topic)` tells the hand-off clock whether a citizen still has a chat page open (webapp/chat.py
closes an abandoned hand-off). With Redis it counts the pages of the other replicas too: each replica announces a
topic's first page and its last page's departure, and its whole list every `presence_seconds`; a replica silent
for three periods counts no more. While this replica is cut off from Redis, what it last knew is kept (a Redis
outage must not close the hand-offs of citizens connected elsewhere).

Redis unreachable: a warning, local delivery goes on, the tasks reconnect with a growing pause (0.5 s to 30 s);
events for the other replicas wait in the bounded outbox and those beyond its bound are dropped (the pages re-sync
when they reconnect). Nothing here ever blocks a request or stops the web app. Events hold masked text only.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import secrets
import time
from collections import defaultdict
from typing import Any
from urllib.parse import urlsplit

from webapp.store import dumps

log = logging.getLogger(__name__)

QUEUE_SIZE = 1000  # events waiting for one page; a stuck page must not block the others
OUTBOX_SIZE = 1000  # events waiting for Redis
PRESENCE_SECONDS = 10.0  # each replica's list of topics with pages, this often; also the subscriber's liveness check
CONNECT_TIMEOUT = 3.0
COMMAND_TIMEOUT = 5.0
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 30.0
STOP_FLUSH_SECONDS = 1.0  # at stop, what is left in the outbox gets this long to reach Redis


def shown(redis_url: str) -> str:
    """The URL for a log line: no user, no password (common.settings.redact_url misses a password without a user name)."""
    return re.sub(r"://[^@/]*@", "://***@", redis_url)


def channel_for(redis_url: str) -> str:
    """The Redis channel of the hub: one per database number of the URL (pub/sub itself ignores the number)."""
    db = urlsplit(redis_url).path.strip("/") if redis_url.startswith(("redis://", "rediss://")) else ""
    return f"hotline:hub:{db if db.isdigit() else '0'}"


class Hub:
    """Fan-out of JSON events to the queues of subscribed WebSocket handlers, on every replica with Redis."""

    def __init__(self, redis_url: str = "", channel: str | None = None,
                 presence_seconds: float = PRESENCE_SECONDS) -> None:
        self._subs: dict[str, set[asyncio.Queue]] = defaultdict(set)
        self.redis_url = redis_url
        self.channel = channel or channel_for(redis_url)
        self.replica = secrets.token_hex(8)  # tells this replica's own messages apart when Redis sends them back
        self.presence_seconds = presence_seconds
        self.connected = False  # the subscriber holds a live subscription
        self._outbox: asyncio.Queue[bytes] = asyncio.Queue(maxsize=OUTBOX_SIZE)  # a new one at each start
        self._tasks: list[asyncio.Task] = []
        self._running = False
        self._sending = False  # the sender's last PUBLISH succeeded
        self._dropped = 0
        self._remote: dict[str, tuple[float, set[str]]] = {}  # replica -> (counts until, its topics with pages)

    # ------------------------------------------------------------------ the interface of the pages and services
    def subscribe(self, topic: str) -> asyncio.Queue:
        """A new queue receiving the topic's events."""
        q: asyncio.Queue = asyncio.Queue(maxsize=QUEUE_SIZE)
        first = not self._subs.get(topic)
        self._subs[topic].add(q)
        if first:
            self._announce({"k": "+", "t": topic})
        return q

    def unsubscribe(self, topic: str, q: asyncio.Queue) -> None:
        """Stop delivering to the queue."""
        subs = self._subs.get(topic)
        if subs is None:
            return
        subs.discard(q)
        if not subs:
            self._subs.pop(topic, None)
            self._announce({"k": "-", "t": topic})

    def publish(self, topic: str, event: dict[str, Any]) -> int:
        """Deliver the event to this replica's subscribers of the topic, and through Redis to the other replicas'.

        Never waits: the Redis side is a bounded outbox a task drains. Returns how many local subscribers got it.
        """
        n = self._deliver(topic, event)
        if self._running:
            try:
                data = dumps({"r": self.replica, "t": topic, "e": event}).encode()
            except (TypeError, ValueError) as e:  # dumps turns anything unknown into text; never the caller's problem
                log.warning("live event for %s not sent to the other replicas (%s)", topic, type(e).__name__)
            else:
                self._enqueue(data)
        return n

    def listeners(self, topic: str) -> int:
        """How many subscribers a topic has here, plus the other replicas having at least one (with Redis)."""
        return len(self._subs.get(topic, ())) + self._remote_listeners(topic)

    # ------------------------------------------------------------------ start and stop (webapp/app.py)
    def start(self) -> None:
        """Start the sender and subscriber tasks in the running loop (nothing to do without HUB_REDIS_URL)."""
        if not self.redis_url or self._running:
            return
        self._running = True
        self._dropped = 0
        self._outbox = asyncio.Queue(maxsize=OUTBOX_SIZE)  # of this loop
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._send_loop(), name="hub-sender"),
                       loop.create_task(self._listen_loop(), name="hub-subscriber"),
                       loop.create_task(self._presence_loop(), name="hub-presence")]
        log.info("live events cross replicas through Redis %s, channel %s", shown(self.redis_url), self.channel)

    async def stop(self) -> None:
        """Say goodbye to the other replicas, give the outbox a moment to reach Redis, and end the tasks."""
        if not self._tasks:
            return
        self._announce({"k": "bye"})
        self._running = False
        if self._sending:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._outbox.join(), STOP_FLUSH_SECONDS)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        self.connected = self._sending = False

    # ------------------------------------------------------------------ local delivery
    def _deliver(self, topic: str, event: dict[str, Any]) -> int:
        n = 0
        for q in list(self._subs.get(topic, ())):
            try:
                q.put_nowait(event)
                n += 1
            except asyncio.QueueFull:  # a stuck page must not block the others; it re-syncs on reconnect
                log.warning("dropping event for a slow subscriber of %s", topic)
        return n

    def _receive(self, data: bytes) -> None:
        """A message from the channel: another replica's event or presence; this replica's own are ignored."""
        try:
            msg = json.loads(data)
            sender = msg["r"]
        except (ValueError, TypeError, KeyError):
            log.warning("ignoring a malformed message on %s", self.channel)
            return
        if sender == self.replica or not isinstance(sender, str):
            return
        kind, topic = msg.get("k"), msg.get("t")
        if kind is None:
            if isinstance(topic, str) and isinstance(msg.get("e"), dict):
                self._deliver(topic, msg["e"])
            return
        until = time.monotonic() + 3 * self.presence_seconds
        if kind == "=" and isinstance(msg.get("ts"), list):
            self._remote[sender] = (until, {t for t in msg["ts"] if isinstance(t, str)})
            self._forget_silent()
        elif kind == "+" and isinstance(topic, str):
            self._remote.setdefault(sender, (until, set()))[1].add(topic)
        elif kind == "-" and isinstance(topic, str) and sender in self._remote:
            self._remote[sender][1].discard(topic)
        elif kind == "bye":
            self._remote.pop(sender, None)

    # ------------------------------------------------------------------ presence of the other replicas' pages
    def _remote_listeners(self, topic: str) -> int:
        if not self._remote:
            return 0
        now = time.monotonic()
        # cut off from Redis, this replica cannot hear the others: what it last knew stands
        return sum(1 for until, topics in self._remote.values()
                   if topic in topics and (until > now or not self.connected))

    def _forget_silent(self) -> None:
        now = time.monotonic()
        for replica in [r for r, (until, _) in self._remote.items() if until <= now]:
            del self._remote[replica]

    def _announce(self, control: dict[str, Any]) -> None:
        if self._running:
            self._enqueue(json.dumps({"r": self.replica, **control}, ensure_ascii=False).encode())

    async def _presence_loop(self) -> None:
        while True:
            self._announce({"k": "=", "ts": sorted(self._subs)})
            if self.connected:
                self._forget_silent()
            await asyncio.sleep(self.presence_seconds)

    # ------------------------------------------------------------------ Redis
    def _enqueue(self, data: bytes) -> None:
        try:
            self._outbox.put_nowait(data)
        except asyncio.QueueFull:
            if not self._dropped:
                log.warning("Redis is behind or unreachable: live events for the other replicas are being dropped "
                            "(pages there re-sync when they reconnect)")
            self._dropped += 1
            return
        if self._dropped:
            log.warning("%d live events for the other replicas were dropped", self._dropped)
            self._dropped = 0

    def _client(self) -> Any:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # no retries inside redis-py: the loops below reconnect with their own pause, and never block a request
        return Redis.from_url(self.redis_url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=COMMAND_TIMEOUT,
                              retry=Retry(NoBackoff(), 0))

    async def _send_loop(self) -> None:
        """Drain the outbox into the channel in order, one connection; an event is retried until Redis takes it."""
        client, pause, data = None, BACKOFF_FIRST, None
        try:
            while True:
                if data is None:
                    data = await self._outbox.get()
                try:
                    if client is None:
                        client = self._client()
                    await client.publish(self.channel, data)
                except asyncio.CancelledError:
                    raise
                except Exception as e:  # noqa: BLE001 - Redis down, refused, timed out: local delivery goes on
                    if self._sending or pause == BACKOFF_FIRST:
                        log.warning("cannot publish live events to Redis %s (%s: %s); retrying",
                                    shown(self.redis_url), type(e).__name__, str(e)[:200])
                    self._sending = False
                    await _close(client)
                    client = None
                    await asyncio.sleep(pause * random.uniform(0.8, 1.2))
                    pause = min(pause * 2, BACKOFF_MAX)
                    continue
                if not self._sending and pause > BACKOFF_FIRST:
                    log.info("publishing live events to Redis again")
                self._sending, pause, data = True, BACKOFF_FIRST, None
                self._outbox.task_done()
        finally:
            await _close(client)

    async def _listen_loop(self) -> None:
        """Hold a subscription to the channel, handing other replicas' events to the local queues; reconnect."""
        pause = BACKOFF_FIRST
        while True:
            client = pubsub = None
            try:
                client = self._client()
                pubsub = client.pubsub()
                await pubsub.subscribe(self.channel)
                heard = pinged = time.monotonic()
                while True:
                    msg = await pubsub.get_message(timeout=1.0)
                    now = time.monotonic()
                    if msg is not None:
                        heard = now
                        if msg["type"] == "message":
                            self._receive(msg["data"])
                        elif msg["type"] == "subscribe":
                            self._subscribed(pause)
                            pause = BACKOFF_FIRST
                    elif now - heard > 3 * self.presence_seconds:  # a silent connection (network cut): start afresh
                        raise ConnectionError("no answer from Redis")
                    if now - max(heard, pinged) > self.presence_seconds:
                        await pubsub.ping()  # answered by a "pong" message
                        pinged = now
            except asyncio.CancelledError:
                self.connected = False
                raise
            except Exception as e:  # noqa: BLE001 - Redis down, refused, timed out: local delivery goes on
                if self.connected or pause == BACKOFF_FIRST:
                    log.warning("live events from the other replicas interrupted: Redis %s unreachable (%s: %s); "
                                "retrying", shown(self.redis_url), type(e).__name__, str(e)[:200])
                self.connected = False
            finally:
                await _close(pubsub)
                await _close(client)
            await asyncio.sleep(pause * random.uniform(0.8, 1.2))
            pause = min(pause * 2, BACKOFF_MAX)

    def _subscribed(self, pause: float) -> None:
        if pause > BACKOFF_FIRST:
            log.info("live events from the other replicas resumed (Redis %s)", shown(self.redis_url))
        self.connected = True
        until = time.monotonic() + 3 * self.presence_seconds
        self._remote = {r: (until, topics) for r, (_, topics) in self._remote.items()}  # a fresh chance to speak
        self._announce({"k": "=", "ts": sorted(self._subs)})


async def _close(resource: Any) -> None:
    """Close a Redis client or subscription, whatever state its connection is in."""
    if resource is None:
        return
    with contextlib.suppress(Exception):
        await asyncio.wait_for(resource.aclose(), 2.0)
