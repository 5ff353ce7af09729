"""Fill the analytics store from what the services already record, safely replayable.

Sources, each read by URL and never written:
- Rasa's event broker table `events(id, sender_id, data)` (endpoints.yml `event_broker`), read from the
  last id seen; the tracker store's `events` table has the same three columns, so the same reader is the
  backfill for conversations held before the broker existed (`--source tracker`).
- The web app's database (webapp/store.py): hand-offs, ratings, work orders, agents' replies.
- The voice gateway's call store (voice/store.py): one row per finished call, with its caller key.
- Hotline events (common/events.py) that the web app and the voice gateway publish to the same place as
  Rasa's broker: rows of the same `events` table, or, with an amqp:// RASA_EVENTS_URL, messages of the
  RabbitMQ queue (Rasa's events and the hotline events together). They upsert the same rows as the pulls
  (hand-offs, ratings, work orders by their web app id, calls by call id), so pulling and events together
  count everything once; an event id already ingested is skipped, and an event older than the state already
  held does not roll it back. The pulls stay as the backfill.

Replay safety: a Rasa event's identity (sender, type, timestamp, name, masked text) is hashed into
`ingested`; the broker and the tracker store give the same event the same key, so ingesting both, or
one twice, counts it once. Web app and call rows are upserted by their source id. Whatever depends on
several rows (session outcome, turn topics, feedback on an answer, which session a hand-off belongs to)
is recomputed per conversation by `derive`, so the order in which sources arrive does not matter; so is the
dashboard's per-day roll-up (analytics.rollup) of every day those conversations have a row on.
Every text is masked with common.privacy.mask_text on the way in.
"""
from __future__ import annotations

import argparse
import bisect
import datetime as dt
import hashlib
import json
import logging
import sqlite3
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, delete, insert, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from analytics import rollup
from analytics.settings import Settings, load_settings, redact_url
from analytics.store import (
    AnalyticsStore,
    CallRow,
    ChatSession,
    Cursor,
    HandoffRow,
    Ingested,
    KnowledgeAnswer,
    RatingRow,
    Turn,
    WorkOrderRow,
    buckets,
)
from analytics.topics import ANSWER_BANDS, reply_topic, turn_topic
from common.events import DEFAULT_QUEUE, HOTLINE, EventSettings, declare_amqp, is_amqp
from common.privacy import mask_text

log = logging.getLogger(__name__)
BATCH = 5000
CHUNK = 500  # ids per IN (...) clause
KEPT_EVENTS = ("session_started", "user", "bot")
OPEN_HANDOFF = ("queued", "claimed")


@dataclass
class IngestReport:
    """What one ingestion run did."""

    events_read: int = 0
    events_new: int = 0
    turns: int = 0
    sessions: int = 0
    handoffs: int = 0
    ratings: int = 0
    work_orders: int = 0
    calls: int = 0
    conversations_derived: int = 0
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One line for the terminal."""
        rate = self.events_read / self.seconds if self.seconds else 0.0
        return (f"read {self.events_read} events ({self.events_new} new, {rate:,.0f}/s), {self.sessions} sessions, "
                f"{self.turns} turns, {self.handoffs} hand-offs, {self.ratings} ratings, {self.work_orders} work orders, "
                f"{self.calls} calls; {self.conversations_derived} conversations derived in {self.seconds:.1f} s"
                + (f"; skipped: {', '.join(self.skipped)}" if self.skipped else ""))


def channel_of(input_channel: str | None) -> str:
    """web or phone (Rasa's rest channel, used by integrations and tests, counts as web)."""
    return "phone" if input_channel == "phone" else "web"


def event_key(sender: str, event: dict[str, Any], masked_text: str | None) -> str:
    """The identity of a Rasa event, the same whether it comes from the broker or the tracker store."""
    ident = "\x1f".join((sender, str(event.get("event")), repr(float(event.get("timestamp") or 0.0)),
                         str(event.get("name") or ""), masked_text or ""))
    return hashlib.sha1(ident.encode("utf-8")).hexdigest()


def _chunks(items: list, size: int = CHUNK) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def cursor_name(source: str, url: str) -> str:
    """A cursor per source and database (the simulator's files must not move the live broker's cursor)."""
    return f"{source}:{hashlib.sha1(url.encode()).hexdigest()[:10]}"


def _open_source(url: str) -> Engine | None:
    """An engine on a source database, or None when its SQLite file does not exist (never created here)."""
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return None
    return create_engine(url)


class Ingester:
    """Reads the sources into an AnalyticsStore; `now` (local time) decides which waits count as abandoned."""

    def __init__(self, store: AnalyticsStore, settings: Settings | None = None, now: dt.datetime | None = None) -> None:
        self.store = store
        self.settings = settings or load_settings()
        self.zone: ZoneInfo = self.settings.zone
        self.now = now or dt.datetime.now(self.zone).replace(tzinfo=None)
        store.call(rollup.ensure)  # a store from before the roll-up (or of an older one) gets it built first

    # ------------------------------------------------------------------ times
    def local(self, ts: float) -> dt.datetime:
        """Epoch seconds -> local time without tzinfo."""
        return dt.datetime.fromtimestamp(ts, self.zone).replace(tzinfo=None)

    def local_from_utc(self, value: dt.datetime | None) -> dt.datetime | None:
        """A naive UTC time (the web app's) -> local time without tzinfo."""
        if value is None:
            return None
        return value.replace(tzinfo=dt.timezone.utc).astimezone(self.zone).replace(tzinfo=None)

    def _epoch_from_local(self, value: dt.datetime) -> float:
        return value.replace(tzinfo=self.zone).timestamp()

    # ------------------------------------------------------------------ cursors
    @staticmethod
    def _cursor(s: Session, source: str) -> str | None:
        row = s.get(Cursor, source)
        return row.position if row else None

    @staticmethod
    def _set_cursor(s: Session, source: str, position: str) -> None:
        row = s.get(Cursor, source)
        if row is None:
            s.add(Cursor(source=source, position=position))
        else:
            row.position = position

    # ------------------------------------------------------------------ Rasa events
    def ingest_rasa(self, url: str, source: str = "rasa_events", replay: bool = False,
                    report: IngestReport | None = None) -> IngestReport:
        """Read an `events(id, sender_id, data)` table (event broker or tracker store) from its cursor on."""
        report = report or IngestReport()
        engine = _open_source(url)
        if engine is None:
            report.skipped.append(f"{source} (no database at {redact_url(url)})")
            return report
        try:
            with engine.connect() as conn:
                if not engine.dialect.has_table(conn, "events"):
                    report.skipped.append(f"{source} (no events table)")
                    return report
            cursor = cursor_name(source, url)
            last = 0 if replay else int(self.store.call(lambda s: self._cursor(s, cursor)) or 0)
            while True:
                with engine.connect() as conn:
                    rows = conn.execute(text("SELECT id, sender_id, data FROM events WHERE id > :last ORDER BY id LIMIT :n"),
                                        {"last": last, "n": BATCH}).all()
                if not rows:
                    break
                last = rows[-1][0]
                self.store.call(lambda s, rows=rows, last=last: self._rasa_batch(s, rows, cursor, last, report))
        finally:
            engine.dispose()
        return report

    def ingest_rasa_rows(self, rows: Iterable[tuple[int, str, str]], source: str = "rasa_events",
                         report: IngestReport | None = None) -> IngestReport:
        """Ingest already-read `(id, sender_id, data)` rows (the simulator and the tests use this)."""
        report = report or IngestReport()
        batch: list[tuple[int, str, str]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= BATCH:
                self.store.call(lambda s, b=batch: self._rasa_batch(s, b, source, b[-1][0], report))
                batch = []
        if batch:
            self.store.call(lambda s, b=batch: self._rasa_batch(s, b, source, b[-1][0], report))
        return report

    def _rasa_batch(self, s: Session, rows: list, source: str, last: int, report: IngestReport) -> None:
        report.events_read += len(rows)
        parsed: list[tuple[str, dict, str | None, str]] = []
        hotline: list[dict] = []
        seen: set[str] = set()
        for _id, sender, data in rows:
            event = json.loads(data) if isinstance(data, (str, bytes)) else dict(data or {})
            kind = event.get("event")
            if kind == HOTLINE:
                hotline.append(event)
                continue
            if kind not in KEPT_EVENTS or not sender:
                continue
            masked = mask_text(event.get("text") or "") if kind in ("user", "bot") else None
            key = event_key(sender, event, masked)
            if key in seen:
                continue
            seen.add(key)
            parsed.append((sender, event, masked, key))
        if parsed:
            known: set[str] = set()
            for part in _chunks([p[3] for p in parsed], 900):
                known.update(s.scalars(select(Ingested.key).where(Ingested.key.in_(part))))
            parsed = [p for p in parsed if p[3] not in known]
        touched: set[str] = set()
        if parsed:
            report.events_new += len(parsed)
            s.execute(insert(Ingested), [{"key": p[3]} for p in parsed])
            touched = self._add_events(s, parsed, report)
        if hotline:
            touched |= self._hotline_events(s, hotline, report)
        if touched:  # once for both: a batch holds a conversation's Rasa events and its hotline events alike
            report.conversations_derived += self.derive(s, touched)
        self._set_cursor(s, source, str(last))

    # ------------------------------------------------------------------ hotline events (web app, voice gateway)
    def _hotline_events(self, s: Session, events: list[dict], report: IngestReport) -> set[str]:
        """Upsert what the events say, as the pulls would; returns the conversations touched."""
        keys = {}
        for e in events:
            if e.get("id") and e.get("kind"):
                keys.setdefault(hashlib.sha1(f"hotline:{e['id']}".encode()).hexdigest(), e)
        known: set[str] = set()
        for part in _chunks(list(keys), 900):
            known.update(s.scalars(select(Ingested.key).where(Ingested.key.in_(part))))
        new = [(k, e) for k, e in keys.items() if k not in known]
        if not new:
            return set()
        s.execute(insert(Ingested), [{"key": k} for k, _ in new])
        report.events_new += len(new)
        touched: set[str] = set()
        for _key, e in sorted(new, key=lambda ke: float(ke[1].get("timestamp") or 0.0)):
            kind, data = str(e["kind"]), e.get("data") or {}
            try:
                if kind.startswith("handoff_"):
                    touched |= self._event_handoff(s, data, float(e.get("timestamp") or 0.0), report)
                elif kind == "rating":
                    touched |= self._event_rating(s, data, report)
                elif kind.startswith("workorder_"):
                    self._event_work_order(s, data, float(e.get("timestamp") or 0.0), report)
                elif kind == "call_ended":
                    touched |= self._event_call(s, data, report)
                # call_started: nothing is counted until the call ends (the call store too keeps finished calls only)
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("analytics: skipped a malformed %s event (%s)", kind, type(exc).__name__)
        return touched

    @staticmethod
    def _utc(value: str | None) -> dt.datetime | None:
        return dt.datetime.fromisoformat(value) if value else None

    def _event_handoff(self, s: Session, d: dict, ts: float, report: IngestReport) -> set[str]:
        queued = self.local_from_utc(self._utc(d["created_at"]))
        values = {"conversation_id": d["conversation_id"], "channel": channel_of(d.get("channel")), "queue": d.get("queue") or "",
                  "reason": mask_text(d.get("reason") or "")[:200], "source_status": d["status"], "status": d["status"],
                  "agent": d.get("agent"), "queued_at": queued, "claimed_at": self.local_from_utc(self._utc(d.get("claimed_at"))),
                  "resolved_at": self.local_from_utc(self._utc(d.get("resolved_at"))), **buckets(queued)}
        row = s.scalars(select(HandoffRow).where(HandoffRow.source == "webapp", HandoffRow.source_id == int(d["id"]))).first()
        if row is None:
            s.add(HandoffRow(source="webapp", source_id=int(d["id"]), **values))
            s.flush()
        else:
            held = max(x for x in (row.queued_at, row.claimed_at, row.resolved_at) if x is not None)
            if self.local(ts) < held:  # an older state delivered late (a retry): the newer one stays
                return set()
            for k, v in values.items():
                setattr(row, k, v)
        report.handoffs += 1
        return {d["conversation_id"]}

    def _event_rating(self, s: Session, d: dict, report: IngestReport) -> set[str]:
        if s.get(RatingRow, int(d["id"])) is not None:
            return set()
        at = self.local_from_utc(self._utc(d["created_at"]))
        s.add(RatingRow(source_id=int(d["id"]), conversation_id=d["conversation_id"], handoff_source_id=d.get("handoff_id"),
                        score=d["score"], comment=mask_text(d.get("comment") or ""), at=at, **buckets(at)))
        s.flush()
        report.ratings += 1
        return {d["conversation_id"]}

    def _event_work_order(self, s: Session, d: dict, ts: float, report: IngestReport) -> None:
        row = s.get(WorkOrderRow, int(d["id"]))
        if row is not None and self.local(ts) < max(x for x in (row.created_at, row.closed_at) if x is not None):
            return
        created = self.local_from_utc(self._utc(d["created_at"]))
        s.merge(WorkOrderRow(source_id=int(d["id"]), conversation_id=d.get("conversation_id"), category=d.get("category") or "",
                             status=d["status"], created_by=d.get("created_by") or "", created_at=created,
                             deadline=self.local_from_utc(self._utc(d["deadline"])),
                             closed_at=self.local_from_utc(self._utc(d.get("closed_at"))), channel="web", **buckets(created)))
        s.flush()
        report.work_orders += 1

    def _event_call(self, s: Session, d: dict, report: IngestReport) -> set[str]:
        call_id, started, ended = str(d["call_id"]), float(d["started_at"]), float(d["ended_at"])
        values = self._call_values(d.get("transport") or "", started, ended, d["outcome"], d.get("reason") or "",
                                   d.get("handoff_status") or "", int(d.get("turns") or 0), d.get("caller_key") or "")
        if s.get(CallRow, call_id) is not None:
            s.execute(update(CallRow).where(CallRow.call_id == call_id).values(**values))
        else:
            s.add(CallRow(call_id=call_id, **values))
            s.flush()
        report.calls += 1
        return {call_id}

    def _call_values(self, transport: str, started: float, ended: float, outcome: str, reason: str, handoff_status: str,
                     turns: int, caller_key: str) -> dict[str, Any]:
        """A call row's values, the same from the call store and from a call_ended event."""
        start_at, end_at = self.local(started), self.local(ended)
        return {"transport": transport, "started_at": start_at, "ended_at": end_at, "ended_ts": ended,
                "duration_seconds": max(0.0, ended - started), "outcome": outcome, "reason": mask_text(reason or "")[:200],
                "handoff_status": (handoff_status or "")[:64], "turns": turns,
                "caller_key": caller_key[:64] if caller_key else None, "channel": "phone", **buckets(start_at)}

    # ------------------------------------------------------------------ RabbitMQ (production broker)
    def ingest_amqp(self, url: str, queue: str = DEFAULT_QUEUE, report: IngestReport | None = None,
                    max_messages: int | None = None) -> IngestReport:
        """Drain the queue Rasa's pika broker and the services publish to; a batch is acknowledged only after the
        store committed it (a crash in between redelivers it, and the keys make that harmless)."""
        import pika

        report = report or IngestReport()
        params = pika.URLParameters(url)
        params.connection_attempts, params.socket_timeout = 1, 10
        try:
            connection = pika.BlockingConnection(params)
        except pika.exceptions.AMQPError as exc:
            report.skipped.append(f"rasa_events (RabbitMQ at {redact_url(url)} not reachable: {type(exc).__name__})")
            return report
        try:
            channel = connection.channel()
            declare_amqp(channel, queue)
            taken = 0
            while max_messages is None or taken < max_messages:
                rows, tag = [], None
                while len(rows) < BATCH and (max_messages is None or taken < max_messages):
                    method, _props, body = channel.basic_get(queue=queue, auto_ack=False)
                    if method is None:
                        break
                    taken += 1
                    tag = method.delivery_tag
                    try:
                        event = json.loads(body)
                    except ValueError:
                        continue  # not ours: acknowledged with the batch, never retried forever
                    rows.append((taken, str(event.get("sender_id") or ""), event))
                if tag is None:
                    break
                if rows:
                    self.store.call(lambda s, rows=rows: self._rasa_batch(s, rows, cursor_name("rasa_amqp", url), rows[-1][0], report))
                channel.basic_ack(delivery_tag=tag, multiple=True)
        finally:
            try:
                connection.close()
            except pika.exceptions.AMQPError:
                pass
        return report

    def _add_events(self, s: Session, parsed: list, report: IngestReport) -> set[str]:
        parsed.sort(key=lambda p: (p[0], float(p[1].get("timestamp") or 0.0)))
        senders = sorted({p[0] for p in parsed})
        starts: dict[str, list[tuple[float, str, str]]] = defaultdict(list)  # sender -> [(start ts, session id, channel)]
        for part in _chunks(senders):
            for sid, conv, ts, channel in s.execute(select(ChatSession.id, ChatSession.conversation_id, ChatSession.started_ts,
                                                           ChatSession.channel).where(ChatSession.conversation_id.in_(part))):
                starts[conv].append((ts, sid, channel))
        for lst in starts.values():
            lst.sort()
        new_sessions: list[dict] = []
        turns: list[dict] = []

        def open_session(sender: str, ts: float, channel: str) -> tuple[float, str, str]:
            sid = f"{sender}#{int(round(ts * 1000))}"
            entry = (ts, sid, channel)
            lst = starts[sender]
            if any(e[1] == sid for e in lst):
                return next(e for e in lst if e[1] == sid)
            bisect.insort(lst, entry)
            at = self.local(ts)
            new_sessions.append({"id": sid, "conversation_id": sender, "started_ts": ts, "started_at": at, "ended_at": at,
                                 "weekday": at.isoweekday(), "channel": channel, **buckets(at)})
            return entry

        def session_for(sender: str, ts: float, channel: str) -> tuple[float, str, str]:
            lst = starts[sender]
            i = bisect.bisect_right(lst, (ts, "\uffff", ""))
            return lst[i - 1] if i else open_session(sender, ts, channel)

        for sender, event, masked, _key in parsed:
            ts = float(event.get("timestamp") or 0.0)
            kind = event["event"]
            if kind == "session_started":
                open_session(sender, ts, "web")
                continue
            at = self.local(ts)
            if kind == "user":
                channel = channel_of(event.get("input_channel"))
                _, sid, _ = session_for(sender, ts, channel)
                intent = (event.get("parse_data") or {}).get("intent") or {}
                turns.append({"session_id": sid, "conversation_id": sender, "channel": channel, "role": "citizen", "ts": ts,
                              "at": at, "hour_at": at.replace(minute=0, second=0, microsecond=0), "text": masked or "",
                              "intent": intent.get("name"), "intent_confidence": intent.get("confidence"), "source": "rasa"})
            else:  # bot
                _, sid, channel = session_for(sender, ts, "web")
                custom = ((event.get("data") or {}).get("custom") or {}) if isinstance(event.get("data"), dict) else {}
                kb = custom.get("kb") if isinstance(custom.get("kb"), dict) else {}
                handoff = custom.get("handoff") if isinstance(custom.get("handoff"), dict) else {}
                band = kb.get("band")
                turns.append({"session_id": sid, "conversation_id": sender, "channel": channel, "role": "bot", "ts": ts, "at": at,
                              "hour_at": at.replace(minute=0, second=0, microsecond=0), "text": masked or "",
                              "entry_id": kb.get("id"), "band": band, "score": kb.get("score"),
                              "suggestions": kb.get("suggestions"),
                              "topic": reply_topic(band, kb.get("id"), kb.get("category"), kb.get("suggestions")),
                              "asks": band in ("clarify", "unsure") or (masked or "").rstrip().endswith(("？", "?")),
                              "handoff_status": (str(handoff.get("status") or "queued")[:16]) if handoff else None,
                              "handoff_reason": mask_text(str(handoff.get("reason") or ""))[:200] if handoff else None,
                              "source": "rasa"})
        if new_sessions:
            s.execute(insert(ChatSession), new_sessions)
            report.sessions += len(new_sessions)
        if turns:
            s.execute(insert(Turn), turns)
            report.turns += len(turns)
        return set(senders)

    # ------------------------------------------------------------------ web app
    def ingest_webapp(self, url: str, report: IngestReport | None = None) -> IngestReport:
        """Hand-offs, ratings, work orders and agents' replies from the web app's database."""
        from webapp.store import Handoff, Message, Rating, WorkOrder

        report = report or IngestReport()
        engine = _open_source(url)
        if engine is None:
            report.skipped.append(f"webapp (no database at {redact_url(url)})")
            return report
        touched: set[str] = set()
        try:
            with Session(engine) as src:
                def handoffs(s: Session) -> None:
                    last = int(self._cursor(s, cursor_name("webapp_handoffs", url)) or 0)
                    open_ids = list(s.scalars(select(HandoffRow.source_id).where(HandoffRow.source == "webapp",
                                                                                 HandoffRow.source_status.in_(OPEN_HANDOFF))))
                    rows = list(src.scalars(select(Handoff).where(Handoff.id > last)))
                    for part in _chunks(open_ids):
                        rows += src.scalars(select(Handoff).where(Handoff.id.in_(part), Handoff.id <= last))
                    existing: dict[int, HandoffRow] = {}
                    for part in _chunks([h.id for h in rows]):
                        existing.update((r.source_id, r) for r in s.scalars(select(HandoffRow).where(
                            HandoffRow.source == "webapp", HandoffRow.source_id.in_(part))))
                    for h in rows:
                        queued = self.local_from_utc(h.created_at)
                        values = {"conversation_id": h.conversation_id, "channel": channel_of(h.channel), "queue": h.queue,
                                  "reason": mask_text(h.reason or "")[:200], "source_status": h.status, "status": h.status,
                                  "agent": h.agent, "queued_at": queued, "claimed_at": self.local_from_utc(h.claimed_at),
                                  "resolved_at": self.local_from_utc(h.resolved_at), **buckets(queued)}
                        row = existing.get(h.id)
                        if row is None:
                            s.add(HandoffRow(source="webapp", source_id=h.id, **values))
                        else:
                            for k, v in values.items():
                                setattr(row, k, v)
                        touched.add(h.conversation_id)
                    report.handoffs += len(rows)
                    if rows:
                        self._set_cursor(s, cursor_name("webapp_handoffs", url), str(max(last, max(h.id for h in rows))))
                self.store.call(handoffs)

                def ratings(s: Session) -> None:
                    last = int(self._cursor(s, cursor_name("webapp_ratings", url)) or 0)
                    rows = list(src.scalars(select(Rating).where(Rating.id > last).order_by(Rating.id)))
                    have = set()
                    for part in _chunks([r.id for r in rows]):
                        have.update(s.scalars(select(RatingRow.source_id).where(RatingRow.source_id.in_(part))))
                    new = [r for r in rows if r.id not in have]
                    if new:
                        s.execute(insert(RatingRow), [
                            {"source_id": r.id, "conversation_id": r.conversation_id, "handoff_source_id": r.handoff_id,
                             "score": r.score, "comment": mask_text(r.comment or ""), "at": self.local_from_utc(r.created_at),
                             **buckets(self.local_from_utc(r.created_at))} for r in new])
                    touched.update(r.conversation_id for r in new)
                    report.ratings += len(new)
                    if rows:
                        self._set_cursor(s, cursor_name("webapp_ratings", url), str(rows[-1].id))
                self.store.call(ratings)

                def work_orders(s: Session) -> None:
                    last = int(self._cursor(s, cursor_name("webapp_work_orders", url)) or 0)
                    open_ids = list(s.scalars(select(WorkOrderRow.source_id).where(WorkOrderRow.status != "closed")))
                    rows = list(src.scalars(select(WorkOrder).where(WorkOrder.id > last)))
                    for part in _chunks(open_ids):
                        rows += src.scalars(select(WorkOrder).where(WorkOrder.id.in_(part), WorkOrder.id <= last))
                    for w in rows:
                        created = self.local_from_utc(w.created_at)
                        s.merge(WorkOrderRow(source_id=w.id, conversation_id=w.conversation_id, category=w.category,
                                             status=w.status, created_by=w.created_by, created_at=created,
                                             deadline=self.local_from_utc(w.deadline), closed_at=self.local_from_utc(w.closed_at),
                                             channel="web", **buckets(created)))
                    report.work_orders += len(rows)
                    if rows:
                        self._set_cursor(s, cursor_name("webapp_work_orders", url), str(max(last, max(w.id for w in rows))))
                self.store.call(work_orders)

                def agent_lines(s: Session) -> None:
                    last = int(self._cursor(s, cursor_name("webapp_messages", url)) or 0)
                    while True:
                        rows = list(src.execute(select(Message.id, Message.conversation_id, Message.role, Message.text,
                                                       Message.created_at).where(Message.id > last).order_by(Message.id)
                                                .limit(BATCH)))
                        if not rows:
                            break
                        last = rows[-1][0]
                        agent = [r for r in rows if r[2] == "agent"]
                        keys = {r[0]: hashlib.sha1(f"webapp:message:{r[0]}".encode()).hexdigest() for r in agent}
                        known = set()
                        for part in _chunks(list(keys.values()), 900):
                            known.update(s.scalars(select(Ingested.key).where(Ingested.key.in_(part))))
                        new = [r for r in agent if keys[r[0]] not in known]
                        if new:
                            s.execute(insert(Ingested), [{"key": keys[r[0]]} for r in new])
                            lines = []
                            for _mid, conv, _role, body, created in new:
                                at = self.local_from_utc(created)
                                lines.append({"session_id": "", "conversation_id": conv, "channel": "web", "role": "agent",
                                              "ts": self._epoch_from_local(at), "at": at,
                                              "hour_at": at.replace(minute=0, second=0, microsecond=0),
                                              "text": mask_text(body or ""), "source": "webapp"})
                            s.execute(insert(Turn), lines)
                            report.turns += len(lines)
                            touched.update(r[1] for r in new)
                    self._set_cursor(s, cursor_name("webapp_messages", url), str(last))
                self.store.call(agent_lines)
        finally:
            engine.dispose()
        report.conversations_derived += self.store.call(lambda s: self.derive(s, touched))
        return report

    # ------------------------------------------------------------------ voice gateway
    def ingest_calls(self, path_or_url: str, report: IngestReport | None = None) -> IngestReport:
        """Finished calls from the voice gateway's SQLite call store (a path or sqlite:/// URL)."""
        report = report or IngestReport()
        path = Path(path_or_url.removeprefix("sqlite:///"))
        if not path.exists():
            report.skipped.append(f"calls (no call store at {path})")
            return report
        last = float(self.store.call(lambda s: self._cursor(s, cursor_name("voice_calls", str(path)))) or 0.0)
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            keyed = "caller_key" in {r[1] for r in con.execute("PRAGMA table_info(calls)")}  # older gateways had none
            rows = con.execute("SELECT call_id, transport, started_at, ended_at, outcome, reason, handoff_status, transcript, "
                               + ("caller_key" if keyed else "''") + " FROM calls WHERE ended_at >= ? AND ended_at > 0 "
                               "ORDER BY ended_at",  # ended_at 0: the call is still running
                               (last,)).fetchall()
        finally:
            con.close()

        def save(s: Session) -> set[str]:
            existing = set()
            for part in _chunks([r[0] for r in rows]):
                existing.update(s.scalars(select(CallRow.call_id).where(CallRow.call_id.in_(part))))
            for call_id, transport, started, ended, outcome, reason, handoff_status, transcript, key in rows:
                values = self._call_values(transport, started, ended, outcome, reason, handoff_status,
                                           len(json.loads(transcript or "[]")), key or "")
                if call_id in existing:
                    s.execute(update(CallRow).where(CallRow.call_id == call_id).values(**values))
                else:
                    s.add(CallRow(call_id=call_id, **values))
            report.calls += len(rows)
            if rows:
                self._set_cursor(s, cursor_name("voice_calls", str(path)), repr(rows[-1][3]))
            return {r[0] for r in rows}
        touched = self.store.call(save)
        report.conversations_derived += self.store.call(lambda s: self.derive(s, touched))
        return report

    # ------------------------------------------------------------------ derived figures
    def derive(self, s: Session, conversations: Iterable[str]) -> int:
        """Recompute everything that depends on several rows, for these conversations, and the roll-up of every day
        they have a row on (analytics.rollup); returns how many conversations."""
        convs = sorted(set(conversations))
        days: set[str] = set()
        for part in _chunks(convs):
            days |= self._derive_chunk(s, part)
        if days:
            rollup.refresh(s, days)
        return len(convs)

    def _derive_chunk(self, s: Session, convs: list[str]) -> set[str]:
        """Derive these conversations; returns the days their sessions, hand-offs, ratings and answers are on."""
        sessions: dict[str, list[ChatSession]] = defaultdict(list)
        for row in s.scalars(select(ChatSession).where(ChatSession.conversation_id.in_(convs))):
            sessions[row.conversation_id].append(row)
        turns: dict[str, list[Turn]] = defaultdict(list)
        for row in s.scalars(select(Turn).where(Turn.conversation_id.in_(convs))):
            turns[row.conversation_id].append(row)
        handoffs: dict[str, list[HandoffRow]] = defaultdict(list)
        for row in s.scalars(select(HandoffRow).where(HandoffRow.conversation_id.in_(convs))):
            handoffs[row.conversation_id].append(row)
        ratings: dict[str, list[RatingRow]] = defaultdict(list)
        for row in s.scalars(select(RatingRow).where(RatingRow.conversation_id.in_(convs))):
            ratings[row.conversation_id].append(row)
        calls = {row.call_id: row for row in s.scalars(select(CallRow).where(CallRow.call_id.in_(convs)))}
        days = {row.day for rows in (sessions, handoffs, ratings) for lst in rows.values() for row in lst}
        days.update(s.scalars(select(KnowledgeAnswer.day).where(KnowledgeAnswer.conversation_id.in_(convs)).distinct()))
        s.execute(delete(KnowledgeAnswer).where(KnowledgeAnswer.conversation_id.in_(convs)))
        answers: list[dict] = []
        for conv in convs:
            answers += self._derive_conversation(conv, sorted(sessions.get(conv, []), key=lambda x: x.started_ts),
                                                 sorted(turns.get(conv, []), key=lambda t: (t.ts, t.id)),
                                                 sorted(handoffs.get(conv, []), key=lambda h: (h.queued_at, h.source_id)),
                                                 ratings.get(conv, []), calls.get(conv))
        if answers:
            s.execute(insert(KnowledgeAnswer), answers)
        return days | {a["day"] for a in answers}

    def _derive_conversation(self, conv: str, sessions: list[ChatSession], turns: list[Turn], handoffs: list[HandoffRow],
                             ratings: list[RatingRow], call: CallRow | None) -> list[dict]:
        if not sessions:  # seen only by the web app or the phone so far: derived once its Rasa events arrive
            return []
        starts = [x.started_at for x in sessions]

        def session_at(at: dt.datetime) -> ChatSession:
            i = bisect.bisect_right(starts, at)
            return sessions[max(0, i - 1)]

        by_session: dict[str, list[Turn]] = defaultdict(list)
        for t in turns:
            owner = session_at(t.at)
            if t.session_id != owner.id:
                t.session_id = owner.id
            by_session[owner.id].append(t)
        handoffs_by: dict[str, list[HandoffRow]] = defaultdict(list)
        for i, h in enumerate(handoffs):
            owner = session_at(h.queued_at)
            h.session_id = owner.id
            handoffs_by[owner.id].append(h)
            later = any(x.queued_at > h.queued_at for x in handoffs[i + 1:]) or any(x.started_at > h.queued_at for x in sessions)
            limit = h.queued_at + dt.timedelta(minutes=self.settings.abandon_minutes)
            if h.source_status == "queued" and h.channel == "web" and (later or limit <= self.now):
                h.status, h.abandoned_at = "abandoned", limit
            else:
                h.status, h.abandoned_at = h.source_status, None
            h.wait_seconds = (h.claimed_at - h.queued_at).total_seconds() if h.claimed_at else None
            h.handle_seconds = (h.resolved_at - h.claimed_at).total_seconds() if h.claimed_at and h.resolved_at else None
        for r in ratings:
            r.session_id = session_at(r.at).id
            r.channel = session_at(r.at).channel
        if call is not None:
            call.session_id = session_at(call.started_at).id
        answers: list[dict] = []
        for sess in sessions:
            answers += self._derive_session(sess, by_session.get(sess.id, []), handoffs_by.get(sess.id, []),
                                            call if call is not None and call.session_id == sess.id else None)
        return answers

    def _derive_session(self, sess: ChatSession, turns: list[Turn], handoffs: list[HandoffRow], call: CallRow | None) -> list[dict]:
        citizen = [t for t in turns if t.role == "citizen"]
        channel = citizen[0].channel if citizen else ("phone" if call is not None else sess.channel)
        answers: list[dict] = []
        # a citizen turn's topic is its intent's, or that of the first knowledge reply before the next citizen turn
        for i, t in enumerate(turns):
            if t.channel != channel:
                t.channel = channel
            if t.role != "citizen":
                continue
            reply = None
            for nxt in turns[i + 1:]:
                if nxt.role == "citizen":
                    break
                if nxt.role == "bot" and nxt.band:
                    reply = nxt.topic
                    break
            topic = turn_topic(t.intent, reply)
            if t.topic != topic:
                t.topic = topic
        handoff_times = [t.at for t in turns if t.role == "bot" and t.handoff_status] + [h.queued_at for h in handoffs]
        given = [t for t in turns if t.role == "bot" and t.band in ANSWER_BANDS and t.entry_id]
        for n, ans in enumerate(given):
            nxt_at = given[n + 1].at if n + 1 < len(given) else dt.datetime.max
            feedback = None
            for t in turns:
                if t.role == "citizen" and ans.at < t.at < nxt_at and t.intent in ("feedback_helpful", "feedback_unhelpful"):
                    feedback = t.intent.removeprefix("feedback_")
                    break
            question = next((t.text for t in reversed(turns) if t.role == "citizen" and t.at <= ans.at), "")
            answers.append({"turn_id": ans.id, "session_id": sess.id, "conversation_id": sess.conversation_id,
                            "channel": channel, "at": ans.at, **buckets(ans.at), "entry_id": ans.entry_id,
                            "category": ans.topic or "", "topic": ans.topic or "", "band": ans.band, "score": ans.score,
                            "question": "" if question.startswith("/") else question, "feedback": feedback,
                            "handoff_after": any(ans.at <= h < nxt_at for h in handoff_times)})
        handoff_turns = [t for t in turns if t.role == "bot" and t.handoff_status]
        reasons = [t.handoff_reason for t in handoff_turns if t.handoff_reason] + [h.reason for h in handoffs if h.reason]
        transferred = call is not None and call.outcome == "transferred"
        if transferred and call.reason:
            reasons.append(call.reason)
        handed_off = bool(handoff_turns or handoffs or transferred)
        unhelpful = any(t.intent == "feedback_unhelpful" for t in citizen)
        spoken = [t for t in turns if t.role in ("citizen", "bot")]
        abandoned = bool(spoken) and spoken[-1].role == "bot" and spoken[-1].asks and not handed_off
        ended = max([sess.started_at] + [t.at for t in turns] + [h.resolved_at or h.queued_at for h in handoffs]
                    + ([call.ended_at] if call is not None else []))
        sess.channel = channel
        sess.ended_at = ended
        sess.citizen_turns = len(citizen)
        sess.topic = next((t.topic for t in citizen if t.topic), None)
        sess.handed_off = handed_off
        sess.handoff_reason = (reasons[0] if reasons else "")[:200]
        sess.unhelpful = unhelpful
        sess.abandoned = abandoned
        sess.outcome = "empty" if not citizen else "handoff" if handed_off else "unhelpful" if unhelpful else "direct"
        return answers

    # ------------------------------------------------------------------ everything
    def run(self, replay: bool = False, sources: tuple[str, ...] = ("rasa", "webapp", "voice")) -> IngestReport:
        """Ingest the configured sources; `replay` re-reads the Rasa events from the start (nothing is counted twice)."""
        report = IngestReport()
        started = time.perf_counter()
        if "tracker" in sources:
            self.ingest_rasa(self.settings.tracker_store_url, "tracker_store", replay, report)
        if "rasa" in sources and is_amqp(self.settings.rasa_events_url):  # production: RabbitMQ, drained
            self.ingest_amqp(self.settings.rasa_events_url, EventSettings.from_env(
                default_url=self.settings.rasa_events_url).queue, report)
        elif "rasa" in sources:
            self.ingest_rasa(self.settings.rasa_events_url, "rasa_events", replay, report)
        if "webapp" in sources:
            self.ingest_webapp(self.settings.webapp_database_url, report)
        if "voice" in sources:
            self.ingest_calls(self.settings.voice_db_path, report)
        if "webapp" in sources:  # re-judge waits that became abandoned since
            self.store.call(lambda s: self.derive(s, s.scalars(select(HandoffRow.conversation_id).where(
                HandoffRow.status == "queued", HandoffRow.channel == "web").distinct())))
        report.seconds = time.perf_counter() - started
        return report


def main(argv: list[str] | None = None) -> int:
    """Command line: python -m analytics.ingest [--source rasa,webapp,voice,tracker] [--replay]."""
    parser = argparse.ArgumentParser(prog="python -m analytics.ingest", description="Fill the analytics store from the services' data.")
    parser.add_argument("--source", default="rasa,webapp,voice",
                        help="comma-separated: rasa (event broker), tracker (backfill from the tracker store), webapp, voice")
    parser.add_argument("--replay", action="store_true", help="re-read the Rasa events from the first one (safe: nothing is counted twice)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        settings = load_settings()
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    sources = tuple(x.strip() for x in args.source.split(",") if x.strip())
    unknown = set(sources) - {"rasa", "tracker", "webapp", "voice"}
    if unknown:
        print(f"Unknown source(s) {', '.join(sorted(unknown))}: use rasa, tracker, webapp or voice.", file=sys.stderr)
        return 2
    store = AnalyticsStore(settings.database_url)
    report = Ingester(store, settings).run(replay=args.replay, sources=sources)
    print(f"[analytics] {report.line()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
