"""The traffic simulator feeds the ingestion the way the real services do: Rasa's events, the web app's and the voice
gateway's hotline events in the same events table, and their databases for the pulls. A simulated month has the
phone repeat callers its caller plan made (keyed as the gateway keys numbers), the events alone and the pulls alone
give the same figures, a replay changes none, and no caller number reaches any store."""
from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from analytics import figures as F
from analytics.simulate import CallerPlan, RenderStats, TrafficModel, render
from analytics.sources import SIMULATED_CALLER_KEY_SECRET, SourceWriter
from analytics.store import CallRow, HandoffRow
from tests.analytics.conftest import Sources
from tests.analytics.test_event_stream import snapshot, without_hotline_events
from voice.store import caller_key

MONTH = F.Period.month("2026-10")
NOW = "2026-11-05 00:00"  # every wait of the month judged


@pytest.fixture(scope="module")
def month(tmp_path_factory) -> tuple[Sources, CallerPlan, RenderStats]:
    """October 2026 at 60 sessions a Wednesday, written by the simulator (not yet ingested)."""
    out: Path = tmp_path_factory.mktemp("month")
    src = Sources(out / "rasa_events.db", f"sqlite:///{out / 'webapp.db'}", out / "voice_calls.sqlite3",
                  f"sqlite:///{out / 'analytics.db'}")
    writer = SourceWriter(src.events, src.webapp_url, src.calls)
    plan = CallerPlan(seed=6)
    stats = render(TrafficModel(daily_sessions=60, seed=6), MONTH.start, 31, writer, callers=plan)
    writer.close()
    return src, plan, stats


def hotline_kinds(src: Sources) -> Counter:
    with sqlite3.connect(src.events) as con:
        return Counter(json.loads(d).get("kind") for (d,) in con.execute("SELECT data FROM events") if '"hotline"' in d)


def test_the_simulator_publishes_the_services_events(month):
    src, plan, stats = month
    kinds = hotline_kinds(src)
    assert sum(kinds.values()) == stats.hotline_events
    assert kinds["call_started"] == kinds["call_ended"] == stats.calls == len(plan.calls) > 0
    for kind in ("handoff_queued", "handoff_claimed", "handoff_resolved", "handoff_abandoned", "rating",
                 "workorder_opened", "workorder_closed"):
        assert kinds[kind] > 0, kind
    assert kinds["handoff_claimed"] + kinds["handoff_abandoned"] < kinds["handoff_queued"]  # phone hand-offs stay queued


def test_a_simulated_month_has_the_repeat_callers_it_planned(month, tmp_path: Path):
    src, plan, stats = month
    ingester = src.ingester(now=NOW, database_url=f"sqlite:///{tmp_path / 'repeat.db'}")
    ingester.run()
    phone = ingester.store.call(lambda s: F.repeat_contacts(s, MONTH))["channels"]["phone"]
    # from the plan: a caller's calls about one topic, all within days of each other, are one first call and repeats
    calls = Counter((c.number, c.topic) for c in plan.calls if c.number)
    repeats = sum(n - 1 for n in calls.values())
    assert repeats == stats.repeat_calls == sum(c.repeat for c in plan.calls) > 20
    assert phone["repeat_sessions"] == repeats
    assert phone["repeat_citizens"] == sum(1 for n in calls.values() if n > 1)
    assert phone["sessions"] == sum(calls.values()) and phone["unkeyed"] == sum(1 for c in plan.calls if not c.number) > 0
    # each call keyed as the gateway keys its number, however the number was dialled (+86…)
    keys = ingester.store.call(lambda s: {c.call_id: c.caller_key for c in s.query(CallRow)})
    assert any(c.dialled_as.startswith("+86") for c in plan.calls)
    for c in plan.calls:
        assert keys[c.call_id] == (caller_key(c.number, SIMULATED_CALLER_KEY_SECRET) if c.number else None)


def test_no_simulated_caller_number_reaches_a_store(month, tmp_path: Path):
    src, plan, _ = month
    ingester = src.ingester(now=NOW, database_url=f"sqlite:///{tmp_path / 'dump.db'}")
    ingester.run()
    dumps = ["\n".join(sqlite3.connect(path).iterdump())
             for path in (tmp_path / "dump.db", src.events, src.calls, Path(src.webapp_url.removeprefix("sqlite:///")))]
    numbers = {c.number for c in plan.calls if c.number}
    assert numbers and not [n for n in numbers if any(n in d for d in dumps)]


def test_events_alone_and_pulls_alone_count_the_same_and_a_replay_changes_nothing(month, tmp_path: Path):
    src, plan, stats = month
    # the event stream alone: Rasa's events and the services' hotline events from one table, no pull
    evented = src.ingester(now=NOW, database_url=f"sqlite:///{tmp_path / 'events.db'}")
    report = evented.run(sources=("rasa",))
    assert report.calls == stats.calls and report.handoffs > 0 and report.ratings > 0 and report.work_orders > 0
    # the pulls alone (the web app's database, the call store) with Rasa's events only
    rasa_only = without_hotline_events(src, tmp_path)
    pulled = src.ingester(now=NOW, database_url=f"sqlite:///{tmp_path / 'pulls.db'}", rasa_events_url=f"sqlite:///{rasa_only}")
    pulled.run()
    # both, then everything again: the same ingester replaying, and a second one on the same store
    both = src.ingester(now=NOW, database_url=f"sqlite:///{tmp_path / 'both.db'}")
    both.run()
    expected = snapshot(pulled, MONTH)
    assert expected["repeat"]["channels"]["phone"]["repeat_sessions"] == stats.repeat_calls
    assert snapshot(evented, MONTH) == expected
    assert snapshot(both, MONTH) == expected
    both.run(replay=True)
    src.ingester(now=NOW, database_url=f"sqlite:///{tmp_path / 'both.db'}").run(replay=True)
    assert snapshot(both, MONTH) == expected
    statuses = Counter(both.store.call(lambda s: [h.source_status for h in s.query(HandoffRow).filter_by(channel="web")]))
    assert statuses["abandoned"] > 0 and statuses["resolved"] > 0 and not statuses["queued"]
