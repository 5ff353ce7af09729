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
every event arrives at least once (the analytics ingester de-duplicates by `id`).

The outbox is durable when the publisher has a journal (the services pass a name; the folder is
HOTLINE_OUTBOX_DIR, default var/outbox): before `publish` returns, the masked event is one JSON line appended
to this process's journal file with a single write (no fsync: see `Journal`). The delivery thread records
in an ack file how far the journal is delivered, and rewrites the journal without its delivered (or dropped)
head once that is over 1 MiB and at least half the file, so the file stays near the outbox's cap. Each
process holds an exclusive lock (flock) on its journal's lock file, so replicas never share one; a new publisher
of the same name and destination adopts the journals whose lock nobody holds (their process died): it
re-journals and delivers what they had not delivered, then deletes them. A torn last line, a corrupt line, an
unreadable journal or a folder that cannot be written is logged and skipped: publishing goes on in memory.
"""
from __future__ import annotations

import collections
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
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
OUTBOX_DIR_ENV = "HOTLINE_OUTBOX_DIR"  # where the services keep their journals (see outbox_dir)
DEFAULT_OUTBOX_DIR = Path(__file__).resolve().parents[1] / "var" / "outbox"
COMPACT_BYTES = 1 << 20  # a journal's delivered head is cut off once it is this long and half the file
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
    if data.get("conversation_id") == str(sender_id or "") != "":  # the event's own sender id, kept unmasked beside it:
        keys["conversation_id"] = data.pop("conversation_id")  # a digit run in a random id must not break the join
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


def outbox_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The folder of the services' journals: HOTLINE_OUTBOX_DIR, or var/outbox in the repository (/app/var/outbox
    in the image, the pod's writable emptyDir). Read here rather than by each service's load_settings, so the
    services' settings (and their documented key lists) do not change; a bad value shows as a logged journal error."""
    value = (os.environ if environ is None else environ).get(OUTBOX_DIR_ENV, "").strip()
    return Path(value) if value else DEFAULT_OUTBOX_DIR


def _lock(path: Path) -> int | None:
    """An open descriptor holding an exclusive flock on `path` (created if missing), or None when a live process
    holds it. The kernel releases the lock when its holder dies, however it dies."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except OSError:
        os.close(fd)
        raise
    return fd


def _unlink(*paths: Path) -> None:
    """Remove files, logging (not raising) what cannot be removed."""
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("events: could not remove %s (%s)", path, exc)


class Journal:
    """One process's append-only file of the (masked) events it published, one JSON line each, with an ack file
    saying up to which byte they are delivered and a lock file held for the process's life.

    `append` is one write(2) of the whole line to a file opened O_APPEND, and no fsync: the line is in the kernel's
    page cache when `publish` returns, which a crash of the process (kill -9, OOM, an exception) cannot lose;
    only a crash of the machine within the few seconds before the kernel writes it back can. An fsync would add
    a disk flush to every hand-off and call in the caller's thread (2 CPUs, ext4, 2026-12-07: the journal adds
    ~7 µs to a publish's ~30 µs median; an fsync would add ~0.25 ms median and 1-3 ms at p99, printed by
    tests/unit/test_events_journal.py), and the journal's folder is the pod's emptyDir, which does not survive
    the node anyway; for a lost machine the analytics pulls backfill.

    Offsets are logical (they keep counting across compactions): file position = offset - `base`.
    Methods raise OSError; the publisher logs it and carries on in memory.
    """

    def __init__(self, directory: Path, prefix: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.path = directory / f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        fd = _lock(self.path.with_suffix(".lock"))
        if fd is None:  # a fresh random name: nobody else can hold it
            raise OSError(f"the lock of {self.path} is held")
        self._lock_fd = fd
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            self._ack_fd = os.open(self.path.with_suffix(".ack"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            self.close(delete=True)
            raise
        self.base = self.end = 0

    @property
    def size(self) -> int:
        """Bytes in the file."""
        return self.end - self.base

    def append(self, event: dict[str, Any]) -> None:
        """Add the event's line; a short write is cut off again, so no torn line stays before the next one."""
        line = (json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        written = os.write(self._fd, line)
        if written != len(line):
            os.ftruncate(self._fd, self.size)
            raise OSError(f"short write to {self.path} ({written} of {len(line)} bytes)")
        self.end += written

    def ack(self, upto: int) -> None:
        """Record that everything before logical offset `upto` is delivered or dropped (one small pwrite)."""
        self._write_ack(upto - self.base)

    def _write_ack(self, position: int) -> None:
        os.pwrite(self._ack_fd, b"%020d\n" % position, 0)

    def compact(self, upto: int) -> None:
        """Rewrite the file without its bytes before logical offset `upto` (delivered or dropped). The ack is
        reset to 0 before the new file replaces the old one: a crash in between delivers the head again (the
        ingester skips it by id) but never skips an undelivered event."""
        with open(self.path, "rb") as old:
            old.seek(upto - self.base)
            rest = old.read()
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(rest)
            while view:
                view = view[os.write(fd, view):]
            self._write_ack(0)
            os.replace(tmp, self.path)
        except OSError:
            os.close(fd)
            _unlink(tmp)
            raise
        os.close(self._fd)
        self._fd, self.base = fd, upto

    def close(self, delete: bool) -> None:
        """Close the files (releasing the lock); `delete` removes them too (everything was delivered)."""
        for name in ("_fd", "_ack_fd"):
            if hasattr(self, name):
                os.close(getattr(self, name))
        if delete:
            _unlink(self.path, self.path.with_suffix(".ack"), self.path.with_name(self.path.name + ".tmp"),
                    self.path.with_suffix(".lock"))
        os.close(self._lock_fd)

    def orphans(self) -> Iterator[tuple[Path, int]]:
        """The journals of this prefix whose process is gone, each with its lock, now held by us."""
        for path in sorted(self.path.parent.glob(f"{self.prefix}-*.jsonl")):
            if path == self.path:
                continue
            try:
                fd = _lock(path.with_suffix(".lock"))
            except OSError as exc:
                log.error("events: cannot lock the journal %s (%s); left as it is", path, exc)
                continue
            if fd is not None:
                yield path, fd


def read_journal(path: Path) -> list[dict[str, Any]]:
    """The events of a dead process's journal that its ack does not cover, in order. A torn last line (a
    crash mid-write) and corrupt lines are logged and skipped; an unreadable file raises OSError."""
    data = path.read_bytes()
    start = _read_ack(path.with_suffix(".ack"))
    if start > len(data) or (start and data[start - 1:start] != b"\n"):
        log.warning("events: the ack of %s (%d) does not fit the journal (%d bytes); delivering it all again",
                    path, start, len(data))
        start = 0
    lines = data[start:].split(b"\n")
    torn = lines.pop()  # b"" when the file ends with a whole line
    if torn:
        log.warning("events: %s ends in a torn line (%d bytes, the process died writing it); skipped", path, len(torn))
    events, bad = [], 0
    for line in filter(None, lines):
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if isinstance(event, dict) and event.get("event") == HOTLINE and event.get("id"):
            events.append(event)
        else:
            bad += 1
    if bad:
        log.error("events: %d corrupt lines in %s skipped (%d events read)", bad, path, len(events))
    return events


def _read_ack(path: Path) -> int:
    """The ack file's offset; 0 (deliver it all again: at least once) when it is missing or unreadable."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return 0
    except (OSError, ValueError) as exc:
        log.warning("events: cannot read %s (%s); delivering its journal from the start", path, exc)
        return 0
    if not text.isdigit():
        log.warning("events: %s holds no offset; delivering its journal from the start", path)
        return 0
    return int(text)


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


def _now_and_then(count: int) -> bool:
    """Whether the count-th occurrence of a repeated problem is logged (1st, 10th, 100th, every 1000th)."""
    return count in (1, 10, 100) or count % 1000 == 0


class EventPublisher:
    """A bounded outbox delivered by one daemon thread, retried with back-off until the transport takes it;
    with `journal_dir`, each event is also journaled before `publish` returns (see `Journal`)."""

    def __init__(self, connect: Any, outbox_size: int = OUTBOX_SIZE, retry_seconds: tuple[float, float] = (1.0, 30.0),
                 where: str = "", journal_dir: Path | None = None, name: str = "events",
                 compact_bytes: int = COMPACT_BYTES) -> None:
        if not re.fullmatch(r"[a-z0-9_]+", name):
            raise ValueError(f"a journal name is lower-case letters, digits and '_' (got {name!r})")
        self._connect = connect  # () -> Transport, called again after each failure
        # (journal offset where the event starts, event): the offsets say how far the journal is done
        self._outbox: collections.deque[tuple[int, dict[str, Any]]] = collections.deque()
        self._size = outbox_size
        self._retry = retry_seconds
        self._where = where
        self._compact = compact_bytes
        self._cond = threading.Condition()
        self._transport: Transport | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._sending = 0  # events taken by the thread and not yet confirmed
        self._sending_from = 0  # the journal offset where they start
        self.delivered = self.failures = self.dropped = self.journal_errors = 0
        self._journal = self._open_journal(journal_dir, name) if journal_dir is not None else None
        if self._journal is not None:
            try:
                self._adopt_orphans()
            except OSError as exc:  # e.g. the folder cannot be listed: the dead journals wait for the next start
                log.error("events: could not look for journals to adopt in %s (%s)", journal_dir, exc)

    @classmethod
    def for_settings(cls, settings: EventSettings, name: str = "", journal_dir: Path | None = None,
                     **kwargs: Any) -> EventPublisher | NullPublisher:
        """The publisher RASA_EVENTS_URL selects (NullPublisher when it is empty). A `name` (the process kind:
        "webapp", "voice") makes the outbox durable, journaled in `journal_dir` or else `outbox_dir()`."""
        if not settings.url:
            return NullPublisher()
        if name:
            kwargs.update(name=name, journal_dir=journal_dir or outbox_dir())
        return cls(lambda: transport_for(settings), where=redact_url(settings.url), **kwargs)

    def _open_journal(self, directory: Path, name: str) -> Journal | None:
        """This process's journal, named by process kind and destination (a journal is adopted only by a process
        publishing to the same place); None, logged, when the folder cannot be written."""
        prefix = f"{name}-{hashlib.sha1(self._where.encode()).hexdigest()[:8]}"
        try:
            return Journal(directory, prefix)
        except OSError as exc:
            log.error("events: cannot keep a journal in %s (%s); events are held in memory only", directory, exc)
            return None

    def _adopt_orphans(self) -> None:
        """Take over the undelivered events of dead processes' journals (re-journaled in ours, then theirs removed)."""
        assert self._journal is not None
        for path, lock_fd in self._journal.orphans():
            try:
                events = read_journal(path)
            except FileNotFoundError:  # another new process adopted it between our listing and our lock
                _unlink(path.with_suffix(".lock"))
                os.close(lock_fd)
                continue
            except OSError as exc:
                log.error("events: cannot read the journal %s (%s); left as it is", path, exc)
                os.close(lock_fd)
                continue
            for event in events:
                self.put(event)
            if events:
                log.warning("events: %d undelivered events adopted from %s (its process is gone)", len(events), path)
            _unlink(path, path.with_suffix(".ack"), path.with_name(path.name + ".tmp"), path.with_suffix(".lock"))
            os.close(lock_fd)

    @property
    def journal_path(self) -> Path | None:
        """This process's journal file (None when the outbox is in memory only)."""
        return self._journal.path if self._journal is not None else None

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
        """Journal and queue a ready event (the oldest is dropped, and logged, when the outbox is full)."""
        with self._cond:
            start = self._append(event)
            if len(self._outbox) >= self._size:
                self._outbox.popleft()
                self.dropped += 1
                if _now_and_then(self.dropped):
                    log.error("events: outbox full (%d), %d events dropped so far; the analytics pull will backfill them",
                              self._size, self.dropped)
            self._outbox.append((start, event))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="hotline-events", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def _append(self, event: dict[str, Any]) -> int:
        """Journal the event (caller holds the lock); returns its offset. A failure is logged now and then: the
        event is still queued in memory, and its offset is where the next journaled event will start."""
        if self._journal is None:
            return 0
        start = self._journal.end
        try:
            self._journal.append(event)
        except (OSError, TypeError, ValueError) as exc:
            self._journal_error("append to", exc)
        return start

    def _journal_error(self, doing: str, exc: Exception) -> None:
        self.journal_errors += 1
        if _now_and_then(self.journal_errors):
            log.error("events: could not %s the journal %s (%s: %s); %d journal errors so far", doing,
                      self.journal_path, type(exc).__name__, exc, self.journal_errors)

    def _checkpoint(self) -> None:
        """Ack how far the journal is done, and compact it once its done head is long (caller holds the lock)."""
        if self._journal is None:
            return
        j = self._journal
        done = self._sending_from if self._sending else self._outbox[0][0] if self._outbox else j.end
        try:
            j.ack(done)
            if done - j.base >= self._compact and 2 * (done - j.base) >= j.size:
                j.compact(done)
        except OSError as exc:
            self._journal_error("update", exc)

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
        """Try to deliver what is left for up to `timeout` seconds, then stop the thread. The journal is removed
        when everything was delivered, else kept (and its lock released) for the next start to deliver."""
        self.flush(timeout)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        self._drop_transport()
        with self._cond:
            journal, self._journal = self._journal, None
            left = len(self._outbox) + self._sending
        if journal is not None:
            if left:
                log.warning("events: %d undelivered events kept in %s for the next start", left, journal.path)
            try:
                journal.close(delete=not left)
            except OSError as exc:
                log.error("events: could not close the journal %s (%s)", journal.path, exc)

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
                taken = [self._outbox.popleft() for _ in range(min(BATCH, len(self._outbox)))]
                self._sending, self._sending_from = len(taken), taken[0][0]
            batch = [event for _, event in taken]
            try:
                if self._transport is None:
                    self._transport = self._connect()
                self._transport.send(batch)
            except Exception as exc:  # noqa: BLE001 - any failure: keep the events, log, retry later
                self.failures += 1
                with self._cond:
                    self._sending = 0
                    room = self._size - len(self._outbox)
                    kept = taken[-room:] if room > 0 else []
                    self.dropped += len(taken) - len(kept)
                    self._outbox.extendleft(reversed(kept))  # back at the front, in order: at least once
                    self._checkpoint()  # what the cap dropped meanwhile is done: the journal may shrink
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
                self._checkpoint()
                self._cond.notify_all()
