"""Ingestion: replay safety, backfill from the tracker store, order of sources, masking, incremental reads."""
from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3

from analytics import figures as F
from analytics.sources import SourceWriter
from analytics.store import AnalyticsStore
from tests.analytics.conftest import RAW_ID, RAW_PHONE, Sources, T

PERIOD = F.Period.days(dt.date(2026, 3, 2), 2)


def snapshot(store: AnalyticsStore) -> dict:
    """Every figure of the hand-counted period, plus row counts of every table."""
    def read(s):
        out = {"volume": F.session_figures(s, PERIOD, ("channel", "day")), "reasons": F.handoff_reasons(s, PERIOD),
               "seat": F.seat_figures(s, PERIOD), "ratings": F.rating_figures(s, PERIOD),
               "entries": F.answer_figures(s, PERIOD), "topics": F.topic_sessions(s, PERIOD)}
        for table in ("sessions", "turns", "knowledge_answers", "handoffs", "ratings", "calls", "ingested"):
            out[table] = s.connection().exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar()
        return out
    return store.call(read)


def as_tracker_store(events_db, tracker_db) -> None:
    """Copy the broker's events into a table shaped like Rasa's SQL tracker store (the backfill source)."""
    src = sqlite3.connect(events_db)
    rows = src.execute("SELECT sender_id, data FROM events ORDER BY id").fetchall()
    src.close()
    con = sqlite3.connect(tracker_db)
    con.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id VARCHAR(255) NOT NULL, type_name VARCHAR(255) NOT NULL, "
                "timestamp FLOAT, intent_name VARCHAR(255), action_name VARCHAR(255), data TEXT)")
    for sender, data in rows:
        event = json.loads(data)
        event.pop("sender_id")
        con.execute("INSERT INTO events (sender_id, type_name, timestamp, action_name, data) VALUES (?,?,?,?,?)",
                    (sender, event["event"], event["timestamp"], event.get("name"), json.dumps(event)))
    con.commit()
    con.close()


def test_ingesting_twice_gives_the_same_figures(history: Sources):
    first = history.ingester()
    first.run()
    once = snapshot(first.store)
    first.run(replay=True)  # the Rasa events again from id 0, the web app and calls again
    assert snapshot(first.store) == once
    assert once["volume"] and once["ingested"] > 0


def test_backfill_from_the_tracker_store_does_not_double_count_the_broker(history: Sources, tmp_path):
    tracker = tmp_path / "rasa_tracker.db"
    as_tracker_store(history.events, tracker)
    ingester = history.ingester(tracker_store_url=f"sqlite:///{tracker}")
    ingester.run()
    only_broker = snapshot(ingester.store)
    ingester.run(sources=("tracker",))
    assert snapshot(ingester.store) == only_broker


def test_the_order_of_the_sources_does_not_matter(history: Sources, tmp_path):
    in_order = history.ingester()
    in_order.run()
    reversed_url = f"sqlite:///{tmp_path / 'reversed.db'}"
    other = history.ingester(database_url=reversed_url)
    other.run(sources=("voice",))
    other.run(sources=("webapp",))
    other.run(sources=("rasa",))
    assert snapshot(other.store) == snapshot(in_order.store)


def test_new_events_are_read_from_the_cursor_and_counted_once(history: Sources):
    ingester = history.ingester()
    ingester.run()
    before = snapshot(ingester.store)
    w = SourceWriter(history.events, history.webapp_url, history.calls)
    w.session("w9", T("2026-03-03 17:00"))
    w.user("w9", T("2026-03-03 17:00:05"), "社保卡丢了咋办", "ask_question")
    w.kb_reply("w9", T("2026-03-03 17:00:06"), "confident", "card-0501", "社保卡/挂失")
    w.close()
    report = ingester.run()
    after = snapshot(ingester.store)
    assert report.events_read == 10  # only the new rows were read (3 + 2 + 5 events)
    assert sum(r["sessions"] for r in after["volume"]) == sum(r["sessions"] for r in before["volume"]) + 1
    assert after["entries"][0] == {**before["entries"][0], "answers": 3, "unhelpful_rate": 0.0, "handoff_after_rate": 0.0}


def test_a_call_still_running_is_counted_once_it_has_ended(history: Sources):
    from analytics.store import CallRow

    w = SourceWriter(history.events, history.webapp_url, history.calls)
    w.call("CA9", T("2026-03-03 17:00"), 0.0, "answered_by_bot")  # the gateway writes a running call with ended_at 0
    w.close()
    ingester = history.ingester()
    ingester.run()  # a first ingest reads every call from the start
    calls = lambda: ingester.store.call(lambda s: {c.call_id: c.outcome for c in s.query(CallRow)})  # noqa: E731
    assert "CA9" not in calls()
    con = sqlite3.connect(history.calls)  # the gateway's next start closes it as interrupted
    con.execute("UPDATE calls SET ended_at = ?, outcome = 'interrupted' WHERE call_id = 'CA9'", (T("2026-03-03 18:00"),))
    con.commit()
    con.close()
    ingester.run()
    assert calls()["CA9"] == "interrupted" and len(calls()) == 3


def test_a_handoff_claimed_later_is_updated_not_added(history: Sources):
    from webapp.store import Handoff, Store

    ingester = history.ingester()
    ingester.run()
    web = Store(history.webapp_url)

    def claim(s):
        h = s.query(Handoff).filter(Handoff.conversation_id == "w4").one()
        h.status, h.agent = "claimed", "agent2"
        h.claimed_at = h.created_at + dt.timedelta(seconds=45)
    web.call(claim)
    web.engine.dispose()
    ingester.run()
    seat = ingester.store.call(lambda s: F.seat_figures(s, PERIOD))[0]
    assert (seat["queued"], seat["claimed"], seat["abandoned"]) == (4, 4, 0)
    assert seat["wait_mean"] == (60 + 120 + 30 + 45) / 4


def test_the_web_apps_handoff_outcomes_are_counted_as_recorded(history: Sources):
    """Timed out, callback, abandoned and returned to the bot (webapp/handoffs.py) reach the seat figures."""
    from analytics.sources import utc_naive
    from webapp.store import Handoff, Store

    web = Store(history.webapp_url)

    def outcomes(s):
        s.query(Handoff).filter(Handoff.conversation_id == "w4").one().status = "timed_out"  # S6 was never claimed
        for cid, at, status, claimed in (("w3", "2026-03-02 14:01", "returned", None), ("w5", "2026-03-03 10:01", "abandoned", None),
                                         ("w1", "2026-03-03 09:01", "callback", None),
                                         ("w3", "2026-03-02 14:05", "abandoned", "2026-03-02 14:06")):
            s.add(Handoff(conversation_id=cid, channel="web", queue="综合", reason="市民要求人工", status=status,
                          agent="agent1" if claimed else None, created_at=utc_naive(T(at)),
                          claimed_at=utc_naive(T(claimed)) if claimed else None, resolved_at=utc_naive(T(at) + 600)))
    web.call(outcomes)
    web.engine.dispose()
    ingester = history.ingester()
    ingester.run()
    seat = ingester.store.call(lambda s: F.seat_figures(s, PERIOD))[0]
    assert (seat["queued"], seat["claimed"], seat["resolved"]) == (8, 4, 3)
    # the citizen gave up before a seat came: the page closed (w5) or back to the bot (w3); not the one served first
    assert (seat["abandoned"], seat["returned"], seat["timed_out"], seat["callback"]) == (2, 1, 2, 1)
    assert seat["queue_abandonment_rate"] == 2 / 8


def test_a_waiting_handoff_counts_as_abandoned_only_after_the_limit(history: Sources):
    early = history.ingester(now="2026-03-02 15:10")  # 9 minutes after S6 asked for a person
    early.run()
    assert early.store.call(lambda s: F.seat_figures(s, PERIOD))[0]["abandoned"] == 0
    later = history.ingester(now="2026-03-02 15:40")
    later.run()
    assert later.store.call(lambda s: F.seat_figures(s, PERIOD))[0]["abandoned"] == 1


def test_no_raw_personal_data_reaches_the_analytics_store(history: Sources):
    ingester = history.ingester()
    ingester.run()
    con = sqlite3.connect(history.analytics_url.removeprefix("sqlite:///"))
    dump = "\n".join(con.iterdump())
    con.close()
    assert "查下卡的进度" in dump  # the message itself was stored …
    assert RAW_ID not in dump and RAW_PHONE not in dump  # … masked
    # no ID or mobile number anywhere. The replay keys (table "ingested": sha1 hex digests of events, no text) are left
    # out of the scan: a digest can hold 18 decimal digits in a row between two letters (one CI run: …794330921925055863…)
    text = "\n".join(line for line in dump.splitlines() if not line.startswith('INSERT INTO "ingested"'))
    assert re.fullmatch(r"[0-9a-f]{40}", re.search(r"INSERT INTO \"ingested\" VALUES\('([^']*)'\)", dump).group(1))
    assert not re.search(r"(?<!\d)\d{17}[\dXx](?!\d)", text) and not re.search(r"(?<!\d)1[3-9]\d{9}(?!\d)", text)


def test_a_missing_source_is_skipped_and_named(sources: Sources):
    report = sources.ingester().run()
    assert report.events_read == 0
    assert [s.split(" ")[0] for s in report.skipped] == ["rasa_events", "webapp", "calls"]
