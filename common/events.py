"""Hotline events: what the web app and the voice gateway publish for the supervision analytics.

They go where Rasa's event broker publishes, selected by the same URL (RASA_EVENTS_URL):

| URL | where the event goes |
|---|---|
| sqlite:///… or postgresql+psycopg://… | a row of `events(id, sender_id, data)`, the table of Rasa 3.6's `SQLEventBroker` |
| amqp://user:pass@host:5672/ | RabbitMQ: the fanout exchange `rasa-exchange` bound to RASA_EVENTS_QUEUE, as Rasa's pika broker |

One event is JSON: `{"event": "hotline", "kind": "handoff_queued", "id": "<uuid4 hex>", "sender_id": "<conversation
or call id>", "timestamp": <epoch seconds>, "data": {…}}`; `data` is masked (common.privacy) before it leaves.
Rasa's own readers skip it: `Event.from_parameters` returns None for an unknown type.

Publishing never blocks or breaks a chat or a call: `publish` only appends to a bounded in-memory outbox,
a daemon thread delivers it, and a delivery that fails is logged (masked) and tried again with back-off, so
every event arrives at least once (the analytics ingester de-duplicates by `id`). What the outbox still holds
when the process dies is not lost for the figures: the ingester's pull of the services' databases is the backfill.
"""
from __future__ import annotations

import collections
import datetime as dt
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from common.privacy import mask_json, mask_text
from common.settings import Env, SettingsError, redact_url

log = logging.getLogger(__name__)
HOTLINE = "hotline"  # the `event` field of every hotline event (Rasa's events have user, bot, action…)
KINDS = ("handoff_queued", "handoff_claimed", "handoff_transferred", "handoff_resolved", "handoff_timed_out",
         "handoff_callback", "handoff_abandoned", "handoff_returned", "rating", "workorder_opened",
         "workorder_updated", "workorder_closed", "call_started", "call_ended")
EXCHANGE = "rasa-exchange"  # rasa.core.brokers.pika.RABBITMQ_EXCHANGE (a fanout exchange)
DEFAULT_QUEUE = "rasa_core_events"  # rasa.core.brokers.pika.DEFAULT_QUEUE_NAME: set RASA_EVENTS_QUEUE to endpoints.yml's `queues`
OUTBOX_SIZE = 10_000  # events kept while the broker is unreachable; beyond that the oldest are dropped (and logged)
BATCH = 500
# fields kept as they are when they hold a 64-hex HMAC (masking would mangle its digit runs); anything else in
# them is masked like the rest
OPAQUE = ("caller_key",)
HEX_KEY = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class EventSettings:
    """Where hotline events go: RASA_EVENTS_URL ("" publishes nothing) and, for RabbitMQ, RASA_EVENTS_QUEUE."""

    url: str = ""
    queue: str = DEFAULT_QUEUE

    @classmethod
    def from_env(cls, env: Mapping[str, str] | Env | None = None, default_url: str = "") -> EventSettings:
        """Read RASA_EVENTS_URL and RASA_EVENTS_QUEUE; SettingsError names the variable to fix."""
        env = Env.of(env)
        url = env.url("RASA_EVENTS_URL", default_url, schemes=("sqlite", "postgresql", "amqp", "amqps"),
                      example="sqlite:///var/rasa_events.db or amqp://user:pass@rabbitmq:5672/")
        queue = env.text("RASA_EVENTS_QUEUE", DEFAULT_QUEUE)
        if not queue.replace("_", "").replace("-", "").replace(".", "").isalnum():
            raise SettingsError(f"Set RASA_EVENTS_QUEUE to the queue named in endpoints.yml's event_broker "
                                f"(letters, digits, '_', '-', '.'; got {queue!r}).")
        return cls(url=url, queue=queue)


def is_amqp(url: str) -> bool:
    """Whether the URL names RabbitMQ rather than a database."""
    return url.split("://", 1)[0].lower() in ("amqp", "amqps")


def hotline_event(kind: str, sender_id: str, data: Mapping[str, Any], at: float | None = None,
                  event_id: str | None = None) -> dict[str, Any]:
    """One hotline event, its data masked; `id` (a fresh uuid) makes a replay or a retry count once."""
    if kind not in KINDS:
        raise ValueError(f"unknown hotline event kind {kind!r}")
    data = dict(data)
    keys = {k: data.pop(k) for k in OPAQUE if k in data and isinstance(data[k], str) and HEX_KEY.fullmatch(data[k])}
    return {"event": HOTLINE, "kind": kind, "id": event_id or uuid.uuid4().hex, "sender_id": str(sender_id or ""),
            "timestamp": time.time() if at is None else float(at), "data": {**mask_json(data), **keys}}


def utc_iso(value: dt.datetime | None) -> str | None:
    """A naive UTC datetime (as the web app stores times) as ISO text, microseconds kept; None stays None."""
    return value.isoformat() if value is not None else None


class Transport(Protocol):
    """Delivers a batch of events or raises; `close` releases its connection."""

    def send(self, events: list[dict[str, Any]]) -> None: ...

    def close(self) -> None: ...


class SQLTransport:
    """Rows of Rasa's `events(id, sender_id, data)` table (created as Rasa's SQLEventBroker creates it)."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import Column, Integer, MetaData, String, Table, Text

        from common.database import create_sql_engine

        self.engine = create_sql_engine(url)
        metadata = MetaData()
        self.table = Table("events", metadata, Column("id", Integer, primary_key=True),
                           Column("sender_id", String(255)), Column("data", Text))
        metadata.create_all(self.engine)

    def send(self, events: list[dict[str, Any]]) -> None:
        """Insert the events in one transaction."""
        with self.engine.begin() as conn:
            conn.execute(self.table.insert(), [{"sender_id": e.get("sender_id"), "data": json.dumps(e, ensure_ascii=False)}
                                               for e in events])

    def close(self) -> None:
        """Dispose of the engine."""
        self.engine.dispose()


def declare_amqp(channel: Any, queue: str) -> None:
    """Declare what Rasa's pika broker declares: the fanout exchange (not durable, aio-pika's default) and the
    durable queue bound to it; declaring them again with the same properties is harmless."""
    channel.exchange_declare(exchange=EXCHANGE, exchange_type="fanout", durable=False)
    channel.queue_declare(queue=queue, durable=True)
    channel.queue_bind(queue=queue, exchange=EXCHANGE, routing_key="")


class AmqpTransport:
    """Persistent messages to Rasa's fanout exchange, so they land in the same queue(s) as Rasa's events."""

    def __init__(self, url: str, queue: str = DEFAULT_QUEUE, timeout: float = 5.0) -> None:
        import pika

        params = pika.URLParameters(url)
        params.socket_timeout = params.blocked_connection_timeout = timeout
        params.connection_attempts = 1
        self._pika = pika
        self.connection = pika.BlockingConnection(params)
        self.channel = self.connection.channel()
        self.channel.tx_select()  # a batch is committed at once: tx_commit returns when the broker has taken it all
        declare_amqp(self.channel, queue)

    def send(self, events: list[dict[str, Any]]) -> None:
        """Publish the events (JSON, persistent) in one transaction: the broker has them all, or raises."""
        props = self._pika.BasicProperties(content_type="application/json", delivery_mode=2, app_id="hotline")
        for e in events:
            self.channel.basic_publish(exchange=EXCHANGE, routing_key="", body=json.dumps(e, ensure_ascii=False).encode(),
                                       properties=props, mandatory=False)
        self.channel.tx_commit()

    def close(self) -> None:
        """Close the connection (quietly: it may already be gone)."""
        try:
            self.connection.close()
        except Exception:  # noqa: BLE001 - closing a broken connection may fail in many ways
            pass


def transport_for(settings: EventSettings) -> Transport:
    """The transport the URL selects (opened now: raises when the broker or database cannot be reached)."""
    if is_amqp(settings.url):
        return AmqpTransport(settings.url, settings.queue)
    return SQLTransport(settings.url)


class Publisher(Protocol):
    """What the services call: `publish` returns at once and never raises."""

    def publish(self, kind: str, sender_id: str, data: Mapping[str, Any], at: float | None = None) -> dict[str, Any] | None: ...


class NullPublisher:
    """Publishes nothing (RASA_EVENTS_URL unset, and in tests that do not look at events)."""

    def publish(self, kind: str, sender_id: str, data: Mapping[str, Any], at: float | None = None) -> dict[str, Any] | None:
        """Nothing is sent."""
        return None

    def flush(self, timeout: float = 0.0) -> bool:
        """Nothing is waiting."""
        return True

    def close(self, timeout: float = 0.0) -> None:
        """Nothing to close."""


class EventPublisher:
    """A bounded outbox delivered by one daemon thread, retried with back-off until the transport takes it."""

    def __init__(self, connect: Any, outbox_size: int = OUTBOX_SIZE, retry_seconds: tuple[float, float] = (1.0, 30.0),
                 where: str = "") -> None:
        self._connect = connect  # () -> Transport, called again after each failure
        self._outbox: collections.deque[dict[str, Any]] = collections.deque()
        self._size = outbox_size
        self._retry = retry_seconds
        self._where = where
        self._cond = threading.Condition()
        self._transport: Transport | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._sending = 0  # events taken by the thread and not yet confirmed
        self.delivered = self.failures = self.dropped = 0

    @classmethod
    def for_settings(cls, settings: EventSettings, **kwargs: Any) -> EventPublisher | NullPublisher:
        """The publisher RASA_EVENTS_URL selects (NullPublisher when it is empty)."""
        if not settings.url:
            return NullPublisher()
        return cls(lambda: transport_for(settings), where=redact_url(settings.url), **kwargs)

    def publish(self, kind: str, sender_id: str, data: Mapping[str, Any], at: float | None = None) -> dict[str, Any] | None:
        """Queue one event for delivery and return it (None if it could not even be built: logged, never raised)."""
        try:
            event = hotline_event(kind, sender_id, data, at)
        except Exception:  # noqa: BLE001 - a bad event must not break the chat or the call that made it
            log.exception("events: could not build a %s event", kind)
            return None
        self.put(event)
        return event

    def put(self, event: dict[str, Any]) -> None:
        """Queue a ready event (the oldest is dropped, and logged, when the outbox is full)."""
        with self._cond:
            if len(self._outbox) >= self._size:
                self._outbox.popleft()
                self.dropped += 1
                if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
                    log.error("events: outbox full (%d), %d events dropped so far; the analytics pull will backfill them",
                              self._size, self.dropped)
            self._outbox.append(event)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="hotline-events", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    @property
    def pending(self) -> int:
        """Events not yet delivered."""
        with self._cond:
            return len(self._outbox) + self._sending

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until the outbox is empty (True) or the timeout passed (False)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._outbox or self._sending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def close(self, timeout: float = 2.0) -> None:
        """Try to deliver what is left for up to `timeout` seconds, then stop the thread."""
        self.flush(timeout)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        self._drop_transport()

    def _drop_transport(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def _run(self) -> None:
        delay = self._retry[0]
        while True:
            with self._cond:
                while not self._outbox and not self._stopping:
                    self._cond.wait(1.0)
                if self._stopping:
                    return
                batch = [self._outbox.popleft() for _ in range(min(BATCH, len(self._outbox)))]
                self._sending = len(batch)
            try:
                if self._transport is None:
                    self._transport = self._connect()
                self._transport.send(batch)
            except Exception as exc:  # noqa: BLE001 - any failure: keep the events, log, retry later
                self.failures += 1
                with self._cond:
                    self._sending = 0
                    room = self._size - len(self._outbox)
                    kept = batch[-room:] if room > 0 else []
                    self.dropped += len(batch) - len(kept)
                    self._outbox.extendleft(reversed(kept))  # back at the front, in order: at least once
                log.warning("events: could not publish %d events to %s (%s: %s); retrying in %.0f s", len(batch),
                            self._where, type(exc).__name__, mask_text(redact_url(str(exc)))[:300], delay)
                try:
                    self._drop_transport()
                except Exception:  # noqa: BLE001
                    self._transport = None
                until = time.monotonic() + delay
                with self._cond:  # new events do not shorten the pause: a broker that is down is not hammered
                    while not self._stopping and time.monotonic() < until:
                        self._cond.wait(until - time.monotonic())
                delay = min(self._retry[1], delay * 2)
                continue
            delay = self._retry[0]
            with self._cond:
                self._sending = 0
                self.delivered += len(batch)
                self._cond.notify_all()
