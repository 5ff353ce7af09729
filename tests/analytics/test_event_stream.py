"""One event stream: the web app's and the voice gateway's events, ingested with Rasa's, count like the pulls.

The web app's real services (hand-offs, ratings, work orders) and the gateway's call store publish hotline
events to the test's events table (common/events.py) while they write their own databases; then the same
history is ingested from the pulls alone, from the events alone, from both, and twice: the figures and the
rows must be identical. Repeat callers are hand-counted; no raw number reaches the store.
"""
from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
import time
import uuid
from pathlib import Path

import pytest

from analytics import figures as F
from analytics.ingest import Ingester
from analytics.sources import SourceWriter
from analytics.store import AnalyticsStore, CallRow, HandoffRow, RatingRow, WorkOrderRow
from common.events import EventPublisher, EventSettings, declare_amqp, hotline_event
from common.handoff import HandoffRequest
from common.secrets import Secret
from tests.analytics.conftest import ZONE, Sources
from tests.unit.test_events import AMQP_URL, rabbitmq_reachable
from voice.engines.desk import TranscriptLine
from voice.store import CallRecord, CallStore, caller_key
from webapp.handoffs import HandoffService
from webapp.ratings import RatingService
from webapp.store import Agent, Store
from webapp.workorders import WorkOrderService

SECRET = Secret("test-caller-key-secret-0123")
CALLER_A, CALLER_A_INTL, CALLER_C = "13912345678", "+86 139 1234 5678", "13911115678"  # A and C mask alike: 139****5678
DAY = 86400.0


def run(coro):
    import asyncio
    return asyncio.run(coro)


def write_stream(src: Sources) -> float:
    """Web chats with hand-offs, a rating and work orders, and six calls; returns the reference time."""
    now = time.time()
    pub = EventPublisher.for_settings(EventSettings(url=f"sqlite:///{src.events}"))
    w = SourceWriter(src.events, src.webapp_url, src.calls)
    # the Rasa side: web sessions a few minutes ago, and a session for each call
    for cid, topic in (("w1", "社保卡/挂失"), ("w2", "养老保险/领取"), ("w3", "社保卡/挂失")):
        w.session(cid, now - 600)
        w.user(cid, now - 590, "社保卡丢了咋办", "ask_question")
        w.kb_reply(cid, now - 589, "confident", "card-0501", topic)
    calls = [  # call id, caller number, days ago, topic
        ("k1", CALLER_A, 6.0, "社保卡/挂失"), ("k2", CALLER_A, 4.0, "社保卡/挂失"), ("k3", CALLER_C, 3.9, "社保卡/挂失"),
        ("k4", CALLER_A, 3.0, "养老保险/领取"), ("k5", CALLER_A_INTL, 2.0, "社保卡/挂失"), ("k6", "", 1.0, "社保卡/挂失")]
    for call_id, _number, ago, topic in calls:
        t = now - ago * DAY
        w.session(call_id, t)
        w.user(call_id, t + 5, "我的社保卡丢了", "ask_question", channel="phone")
        w.kb_reply(call_id, t + 6, "confident", "card-0501", topic)
    w.close()
    # the web app, through its real services, publishing as it goes
    store = Store(src.webapp_url)
    handoffs, ratings = HandoffService(store, events=pub), RatingService(store, events=pub)
    orders = WorkOrderService(store, events=pub)
    boss = Agent(username="boss", display_name="组长", password_hash="x", role="supervisor", queues=[])

    async def web() -> None:
        h1 = await handoffs.open(HandoffRequest("w1", reason=f"要人工，回电{CALLER_A}", queue="社保卡"))
        await handoffs.claim(h1.id, boss)
        await handoffs.resolve(h1.id, boss)
        assert await ratings.reply("w1", "满意") == "满意"
        h2 = await handoffs.open(HandoffRequest("w2", reason="市民要求人工", queue="养老"))
        await handoffs.abandon(h2.id)
        await handoffs.open(HandoffRequest("w3", reason="市民要求人工", queue="社保卡"))
        await handoffs.time_out(0.0)
        await handoffs.callback("w3", 24)
        made = await orders.create(boss, "核实缴费记录", 3, category="养老", conversation_id="w2")
        await orders.update(made["id"], lambda _w: True, "in_progress")
        await orders.update(made["id"], lambda _w: True, "closed", resolution="已核实")
    run(web())
    store.engine.dispose()
    # the voice gateway's call store, publishing call_started / call_ended
    calls_store = CallStore(src.calls, SECRET, pub)
    for call_id, number, ago, _topic in calls:
        t = now - ago * DAY
        record = CallRecord(call_id=call_id, transport="media_stream", caller=number, started_at=t, ended_at=t + 120,
                            outcome="answered_by_bot", transcript=[TranscriptLine("caller", "我的社保卡丢了", t + 5)])
        calls_store.started(record)
        calls_store.save(record)
        calls_store.ended(record)
    assert pub.flush(10) and pub.pending == 0
    pub.close()
    return now


def without_hotline_events(src: Sources, tmp: Path) -> Path:
    """A copy of the events table holding Rasa's events only (what the pull-only ingestion reads)."""
    copy = tmp / "rasa_only.db"
    shutil.copy(src.events, copy)
    with sqlite3.connect(copy) as con:
        con.execute("""DELETE FROM events WHERE json_extract(data, '$.event') = 'hotline'""")
    return copy


def snapshot(ing: Ingester, period: F.Period) -> dict:
    """Every figure the events feed, and the rows behind them."""
    def read(s):
        return {"summary": F.summary(s, period), "seat": F.seat_figures(s, period, ("channel",)),
                "ratings": F.rating_figures(s, period), "sessions": F.session_figures(s, period, ("channel",)),
                "repeat": F.repeat_contacts(s, period), "reasons": F.handoff_reasons(s, period),
                "handoffs": sorted((h.source_id, h.conversation_id, h.status, h.source_status, h.queue, h.reason, h.agent,
                                    h.queued_at, h.claimed_at, h.resolved_at, h.session_id) for h in s.query(HandoffRow)),
                "ratings_rows": sorted((r.source_id, r.score, r.at, r.session_id) for r in s.query(RatingRow)),
                "orders": sorted((o.source_id, o.status, o.category, o.created_at, o.closed_at, o.deadline) for o in s.query(WorkOrderRow)),
                "calls": sorted((c.call_id, c.outcome, c.started_at, c.ended_at, c.turns, c.caller_key, c.session_id)
                                for c in s.query(CallRow))}
    return ing.store.call(read)


@pytest.fixture()
def stream(sources: Sources, tmp_path: Path):
    now = write_stream(sources)
    today = dt.datetime.fromtimestamp(now, ZONE).date()
    return sources, now, F.Period(today - dt.timedelta(days=7), today + dt.timedelta(days=1))


def ingester(src: Sources, name: str, now: float, **overrides) -> Ingester:
    settings = src.settings(database_url=f"sqlite:///{src.events.parent / name}", **overrides)
    local_now = dt.datetime.fromtimestamp(now + 60, ZONE).replace(tzinfo=None)
    return Ingester(AnalyticsStore(settings.database_url), settings, now=local_now)


def test_events_and_pulls_count_the_same_and_together_once(stream, tmp_path: Path):
    src, now, period = stream
    rasa_only = without_hotline_events(src, tmp_path)
    # 1. the pulls (web app database, call store) with Rasa's events
    pulled = ingester(src, "pull.db", now, rasa_events_url=f"sqlite:///{rasa_only}")
    pulled.run(sources=("rasa", "webapp", "voice"))
    # 2. the event stream alone: Rasa's and the hotline events from one table, no pull
    evented = ingester(src, "events.db", now)
    report = evented.run(sources=("rasa",))
    assert report.handoffs > 0 and report.ratings == 1 and report.calls == 6 and report.work_orders > 0
    # 3. both, and then both again (a replay)
    both = ingester(src, "both.db", now)
    both.run(sources=("rasa", "webapp", "voice"))
    expected = snapshot(pulled, period)
    assert snapshot(evented, period) == expected
    assert snapshot(both, period) == expected
    both.run(replay=True, sources=("rasa", "webapp", "voice"))
    assert snapshot(both, period) == expected
    # what the history holds: 3 web hand-offs (resolved and rated, abandoned, timed out -> callback), 2 work orders
    statuses = sorted(h[3] for h in expected["handoffs"])
    assert statuses == ["abandoned", "callback", "resolved"] and len(expected["orders"]) == 2
    assert sorted(o[1] for o in expected["orders"]) == ["closed", "open"]
    assert expected["ratings"][0]["ratings"] == 1 and expected["seat"][0]["resolved"] == 1


def test_an_older_state_delivered_late_does_not_roll_a_handoff_back(stream):
    src, now, period = stream
    ing = ingester(src, "late.db", now)
    ing.run(sources=("rasa",))
    row = ing.store.call(lambda s: s.query(HandoffRow).filter_by(conversation_id="w1").one())
    assert row.source_status == "resolved"
    late = hotline_event("handoff_claimed", "w1", {"id": row.source_id, "conversation_id": "w1", "channel": "web",
                                                   "queue": "社保卡", "reason": "", "status": "claimed", "agent": "boss",
                                                   "created_at": "2020-01-01T00:00:00", "claimed_at": "2020-01-01T00:01:00",
                                                   "resolved_at": None}, at=now - 500)
    ing.ingest_rasa_rows([(10 ** 9, "w1", late)], source="late")
    assert ing.store.call(lambda s: s.query(HandoffRow).filter_by(conversation_id="w1").one().source_status) == "resolved"


def test_repeat_callers_hand_counted_and_no_raw_number_stored(stream):
    src, now, period = stream
    ing = ingester(src, "repeat.db", now)
    ing.run(sources=("rasa", "webapp", "voice"))
    rep = ing.store.call(lambda s: F.repeat_contacts(s, period))
    phone = rep["channels"]["phone"]
    # k1 A 社保卡 (first) · k2 A 社保卡 2 days later: repeat · k3 C (masks like A, another caller): first ·
    # k4 A 养老 (another topic): first · k5 A as +86 … 社保卡 2 days after k2: repeat · k6 no number: not counted
    assert (phone["sessions"], phone["repeat_sessions"], phone["repeat_citizens"], phone["unkeyed"]) == (5, 2, 1, 1)
    assert phone["repeat_rate"] == pytest.approx(2 / 5)
    web = rep["channels"]["web"]
    assert (web["sessions"], web["repeat_sessions"]) == (3, 0)  # three chats, three citizens
    assert (rep["sessions"], rep["repeat_sessions"], rep["repeat_citizens"]) == (8, 2, 1)
    assert rep["topics"] == [{"topic": "社保卡/挂失", "repeat_sessions": 2, "citizens": 1}]
    # a shorter window: k2 is 2 days after k1 and k5 2 days after k2, so 1 day counts neither
    assert ing.store.call(lambda s: F.repeat_contacts(s, period, days=1))["repeat_sessions"] == 0
    keys = ing.store.call(lambda s: {c.call_id: c.caller_key for c in s.query(CallRow)})
    assert keys["k1"] == keys["k5"] == caller_key(CALLER_A, SECRET) and keys["k3"] != keys["k1"] and keys["k6"] is None
    dump = "\n".join(sqlite3.connect(src.events.parent / "repeat.db").iterdump())
    events = "\n".join(sqlite3.connect(src.events).iterdump())
    for raw in (CALLER_A, CALLER_C, "8613912345678"):
        assert raw not in dump and raw not in events


def test_an_analytics_store_without_caller_keys_is_migrated(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    AnalyticsStore(url).dispose()
    with sqlite3.connect(tmp_path / "old.db") as con:  # as the store was before caller keys
        con.execute("ALTER TABLE calls DROP COLUMN caller_key")
        con.execute("INSERT INTO calls (call_id, transport, started_at, ended_at, ended_ts, duration_seconds, outcome, reason, "
                    "handoff_status, turns, channel, day, month, hour) VALUES ('k0', '', '2026-03-01 10:00:00', "
                    "'2026-03-01 10:01:00', 0, 60, 'completed', '', '', 1, 'phone', '2026-03-01', '2026-03', 10)")
    store = AnalyticsStore(url)
    assert store.call(lambda s: s.get(CallRow, "k0").caller_key) is None
    store.dispose()


@pytest.mark.skipif(not rabbitmq_reachable(), reason="RabbitMQ is not listening on 127.0.0.1:5672")
def test_the_stream_through_rabbitmq_counts_the_same(stream, tmp_path: Path):
    """Production: Rasa's pika broker and the services publish to one RabbitMQ queue, the ingester drains it."""
    import json

    import pika

    from common.events import AmqpTransport

    src, now, period = stream
    reference = ingester(src, "sql.db", now)
    reference.run(sources=("rasa",))
    queue = f"test_stream_{uuid.uuid4().hex[:8]}"
    transport = AmqpTransport(AMQP_URL, queue)
    with sqlite3.connect(src.events) as con:
        events = [json.loads(d) for (d,) in con.execute("SELECT data FROM events ORDER BY id")]
    try:
        transport.send(events + events[:50])  # some delivered twice: at least once
        amqp = ingester(src, "amqp.db", now)
        report = amqp.ingest_amqp(AMQP_URL, queue)
        assert report.events_read == len(events) + 50
        assert snapshot(amqp, period) == snapshot(reference, period)
        con = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        ch = con.channel()
        declare_amqp(ch, queue)
        assert ch.queue_declare(queue=queue, durable=True, passive=True).method.message_count == 0  # all acknowledged
        ch.queue_delete(queue=queue)
        con.close()
    finally:
        transport.close()
