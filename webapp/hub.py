"""In-process publish/subscribe for live pages: a conversation's chat page and the agent desk.

Topics: "conv:<conversation id>" (the citizen's open chat pages) and "desk" (all agent pages).
The web app runs as one process; the database is the source of truth, so a page that
reconnects re-reads its state and misses nothing.
"""
from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any

log = logging.getLogger(__name__)


class Hub:
    """Fan-out of JSON events to the queues of subscribed WebSocket handlers."""

    def __init__(self) -> None:
        self._subs: dict[str, set[asyncio.Queue]] = defaultdict(set)

    def subscribe(self, topic: str) -> asyncio.Queue:
        """A new queue receiving the topic's events."""
        q: asyncio.Queue = asyncio.Queue(maxsize=1000)
        self._subs[topic].add(q)
        return q

    def unsubscribe(self, topic: str, q: asyncio.Queue) -> None:
        """Stop delivering to the queue."""
        self._subs[topic].discard(q)
        if not self._subs[topic]:
            self._subs.pop(topic, None)

    def publish(self, topic: str, event: dict[str, Any]) -> int:
        """Deliver the event to every subscriber of the topic; returns how many got it."""
        n = 0
        for q in list(self._subs.get(topic, ())):
            try:
                q.put_nowait(event)
                n += 1
            except asyncio.QueueFull:  # a stuck page must not block the others; it re-syncs on reconnect
                log.warning("dropping event for a slow subscriber of %s", topic)
        return n

    def listeners(self, topic: str) -> int:
        """How many subscribers a topic has."""
        return len(self._subs.get(topic, ()))
