"""The dashboard's per-day roll-up (analytics.rollup): every number equal to the detail rows' (analytics.figures), on
the hand-counted history and on a simulated one, for a few days, a month, a year, web only and phone only; and exact
under replay: ingesting twice, late events that change an outcome, a hand-off judged abandoned later, an older store
that gets its roll-up on the next ingest."""
from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from analytics import figures as F
from analytics import rollup
from analytics.simulate import TrafficModel, render
from analytics.sources import SourceWriter
from analytics.store import (
    AnalyticsStore,
    Cursor,
    DayAnswers,
    DayRatings,
    DayReasons,
    DaySessions,
    DayTopics,
    MonthAnswers,
    MonthTopics,
)
from tests.analytics.conftest import ZONE, Sources, T
from tests.postgres import scratch_database
from webapp.dashboard import Dashboard, Query, days_csv
from webapp.dashboard import figures as dashboard_figures

TABLES = (DaySessions, DayTopics, DayReasons, DayAnswers, DayRatings, MonthTopics, MonthAnswers)
TWO_DAYS = F.Period.days(dt.date(2026, 3, 2), 2)
YEAR = F.Period(dt.date(2026, 1, 1), dt.date(2027, 1, 1))
POSTGRES_URL = os.environ.get("ANALYTICS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BYS = [(), ("channel",), ("day",), ("hour",), ("day", "channel"), ("hour", "channel")]


def rolled(store: AnalyticsStore) -> dict[str, list[tuple]]:
    """Every roll-up row, sorted."""
    def read(s: Session) -> dict[str, list[tuple]]:
        return {t.__tablename__: sorted(tuple(r) for r in s.execute(select(*t.__table__.columns)).all()) for t in TABLES}
    return store.call(read)


def rebuilt(store: AnalyticsStore) -> dict[str, list[tuple]]:
    """The roll-up as a full rebuild from the detail rows gives it (the store is left rebuilt)."""
    store.call(lambda s: rollup.refresh(s, None))
    return rolled(store)


def both_ways(store: AnalyticsStore, period: F.Period, channel: str | None) -> tuple[dict, dict]:
    """The dashboard's figures read from the detail rows and from the roll-up."""
    q = Query(period, channel)
    return (dashboard_figures(lambda: Session(store.engine), q, F), dashboard_figures(lambda: Session(store.engine), q, rollup))


def assert_readers_equal(store: AnalyticsStore, period: F.Period) -> None:
    """Each roll-up reader returns what its analytics.figures function returns, for every grouping the dashboard uses."""
    def check(s: Session) -> None:
        for by in BYS:
            assert rollup.session_figures(s, period, by) == F.session_figures(s, period, by), by
        for by in BYS[:2]:
            assert rollup.handoff_reasons(s, period, by) == F.handoff_reasons(s, period, by), by
            assert rollup.rating_figures(s, period, by) == F.rating_figures(s, period, by), by
            assert rollup.topic_sessions(s, period, by) == F.topic_sessions(s, period, by), by
            assert rollup.topic_sessions(s, period, by, "area") == F.topic_sessions(s, period, by, "area"), by
            for key in ("entry_id", "topic", "area"):
                assert rollup.answer_figures(s, period, key, by) == F.answer_figures(s, period, key, by), (key, by)
        assert rollup.rating_figures(s, period, ("day", "channel")) == F.rating_figures(s, period, ("day", "channel"))
        for by in BYS[:2]:  # the seat figures stay on the hand-off rows: one read gives the total and the days
            assert F.seat_figures_and_days(s, period, by) == (F.seat_figures(s, period, by),
                                                              F.seat_figures(s, period, ("day", *by))), by
        for by in BYS:  # on PostgreSQL aggregated in the database: the numbers computed here from the rows, to the bit
            assert F.seat_figures(s, period, by) == F.seat_figures_from_rows(s, period, by), by
        for by in BYS[:2]:
            assert F.seat_figures_and_days(s, period, by) == F.seat_figures_and_days_from_rows(s, period, by), by
        entries = [r["entry_id"] for r in F.answer_figures(s, period)]
        assert rollup.entry_topics(s, entries) == F.entry_topics(s, entries)
    store.call(check)


def assert_pages_by_key_are_the_list(store: AnalyticsStore, period: F.Period, limit: int = 7) -> None:
    """Every drill-down list, paged by key (`after` = the previous page's `next`), is the whole list in its order, page
    for page what `offset` gives; a key of another kind of list is refused."""
    def check(s: Session) -> None:
        for figure in F.DRILLS:
            whole = F.drill_down(s, figure, period, limit=100_000)
            assert whole["next"] is None
            rows, after, pages = [], None, 0
            while True:
                page = F.drill_down(s, figure, period, limit=limit, after=after)
                assert page["total"] == whole["total"]
                assert page["rows"] == F.drill_down(s, figure, period, limit=limit, offset=pages * limit)["rows"], figure
                rows += page["rows"]
                pages += 1
                after = json.loads(json.dumps(page["next"]))  # as it travels: JSON
                if after is None:
                    break
            assert rows == whole["rows"] and len(rows) == whole["total"], figure
            assert pages == max(1, -(-whole["total"] // limit)), figure  # no empty last page
        with pytest.raises(ValueError):
            F.drill_down(s, "wait_seconds", period, after=["2026-03-02", "2026-03-02T09:22:01", 1])  # a session's shape
        with pytest.raises(ValueError):
            F.drill_down(s, "sessions", period, after=["2026-03-02", "late", "w1"])
    store.call(check)


def assert_dashboard_equal(store: AnalyticsStore, periods: list[F.Period]) -> None:
    for period in periods:
        for channel in (None, "web", "phone"):
            detail, rolled_up = both_ways(store, period, channel)
            assert rolled_up == detail, (period, channel)
            assert days_csv(rolled_up) == days_csv(detail)
        assert_readers_equal(store, period)


@pytest.fixture()
def store(history: Sources) -> AnalyticsStore:
    ingester = history.ingester()
    ingester.run()
    return ingester.store


def test_the_hand_counted_history_is_equal_both_ways(store):
    assert_dashboard_equal(store, [TWO_DAYS, F.Period.month("2026-03"), YEAR, F.Period.month("2026-02")])
    assert_pages_by_key_are_the_list(store, TWO_DAYS, limit=1)  # every record a page; times on whole seconds
    detail, rolled_up = both_ways(store, TWO_DAYS, None)
    t = rolled_up["totals"]  # the hand counts of test_figures.py, through the roll-up
    assert (t["sessions"], t["direct"], t["handed_off"], t["abandoned"], t["ratings"], t["surveys"]) == (9, 4, 5, 1, 2, 3)
    assert (t["answers"], t["answer_unhelpful"], t["answer_handoff_after"]) == (4, 1, 2)
    assert rolled(store)["rollup_sessions"]  # it was read from rows the ingest kept
    assert rolled(store) == rebuilt(store)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> AnalyticsStore:
    """Six weeks of simulated traffic (September into November 2026), ingested as analytics does it."""
    out: Path = tmp_path_factory.mktemp("simulated")
    src = Sources(out / "rasa_events.db", f"sqlite:///{out / 'webapp.db'}", out / "voice_calls.sqlite3",
                  f"sqlite:///{out / 'analytics.db'}")
    writer = SourceWriter(src.events, src.webapp_url, src.calls)
    render(TrafficModel(daily_sessions=40, seed=5), dt.date(2026, 9, 24), 42, writer)
    writer.close()
    ingester = src.ingester(now="2026-11-06 00:00")
    ingester.run()
    return ingester.store


def test_a_simulated_history_is_equal_both_ways(simulated):
    sessions = simulated.call(lambda s: F.session_figures(s, YEAR))[0]["sessions"]
    assert sessions > 1000
    # a month; the year; days across a month's end; a whole month with days on either side (month and day rows)
    assert_dashboard_equal(simulated, [F.Period.month("2026-10"), YEAR, F.Period.days(dt.date(2026, 10, 30), 5),
                                       F.Period(dt.date(2026, 9, 27), dt.date(2026, 11, 3))])
    assert rolled(simulated) == rebuilt(simulated)
    assert_pages_by_key_are_the_list(simulated, F.Period.days(dt.date(2026, 10, 5), 3), limit=40)


def test_ingesting_twice_changes_no_roll_up_row(history: Sources):
    ingester = history.ingester()
    ingester.run()
    once = rolled(ingester.store)
    ingester.run(replay=True)
    history.ingester().run(replay=True)  # a second ingester on the same store, everything again
    assert rolled(ingester.store) == once == rebuilt(ingester.store)


def test_late_events_that_change_outcomes_recompute_their_days(history: Sources):
    from webapp.store import Handoff, Store

    ingester = history.ingester(now="2026-03-02 15:10")  # S6's wait is not yet abandoned
    ingester.run()
    before = both_ways(ingester.store, TWO_DAYS, None)[1]["totals"]
    w = SourceWriter(history.events, history.webapp_url, history.calls)
    # S7 (3 March, direct so far) is rated 没帮助 after all; S5 (2 March, a greeting) asks a question it never answers
    w.user("w1", T("2026-03-03 09:02"), "/feedback_unhelpful", "feedback_unhelpful")
    w.user("w3", T("2026-03-02 14:02"), "社保卡丢了咋办", "ask_question")
    w.kb_reply("w3", T("2026-03-02 14:02:01"), "unsure", suggestions=["card-0501", "card-0536"], score=0.6)
    w.close()
    web = Store(history.webapp_url)

    def claim(s):  # S9's hand-off is seen again: the web app now says it was claimed 45 s later
        h = s.query(Handoff).filter(Handoff.conversation_id == "w6").one()
        h.claimed_at = h.created_at + dt.timedelta(seconds=45)
    web.call(claim)
    web.engine.dispose()
    later = history.ingester(now="2026-03-10 00:00")  # and S6's wait is now given up
    later.run()
    detail, after = both_ways(later.store, TWO_DAYS, None)
    assert after == detail
    t = after["totals"]
    assert (t["direct"], t["unhelpful"], t["abandoned"]) == (before["direct"] - 1, before["unhelpful"] + 1, before["abandoned"] + 1)
    assert t["sessions"] == before["sessions"]
    assert (before["queue_abandoned"], t["queue_abandoned"]) == (0, 1)
    assert rolled(later.store) == rebuilt(later.store)
    assert_dashboard_equal(later.store, [TWO_DAYS])


def test_a_store_without_the_roll_up_reads_the_details_until_its_next_ingest(history: Sources):
    ingester = history.ingester()
    ingester.run()
    full = rolled(ingester.store)

    def as_before_the_roll_up(s: Session) -> None:  # an older store: no roll-up tables, no marker
        for t in TABLES:
            t.__table__.drop(s.connection())
        s.delete(s.get(Cursor, rollup.MARKER))
    ingester.store.call(as_before_the_roll_up)
    engine = ingester.store.engine
    board = Dashboard(lambda: engine, ZONE, cache=False)
    assert not ingester.store.call(rollup.ready)
    detail = board.figures(Query(TWO_DAYS, None))
    assert detail["totals"]["sessions"] == 9  # read from the detail rows
    history.ingester().run()  # AnalyticsStore adds the tables, the ingest builds them
    assert ingester.store.call(rollup.ready) and rolled(ingester.store) == full
    assert board.figures(Query(TWO_DAYS, None)) == detail


def test_the_history_ingested_in_pieces_has_the_roll_up_of_all_at_once(history: Sources, tmp_path):
    whole = history.ingester()
    whole.run()
    pieces = history.ingester(database_url=f"sqlite:///{tmp_path / 'pieces.db'}")
    pieces.run(sources=("voice",))
    pieces.run(sources=("webapp",))
    pieces.run(sources=("rasa",))
    assert rolled(pieces.store) == rolled(whole.store)


def test_a_fresh_store_is_marked_built(sources: Sources):
    store = AnalyticsStore(sources.analytics_url)
    assert not store.call(rollup.ready)
    sources.ingester()
    assert store.call(rollup.ready) and all(not rows for rows in rolled(store).values())


@pytest.fixture()
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database (ANALYTICS_TEST_POSTGRES_URL's server), dropped afterwards."""
    yield from scratch_database(POSTGRES_URL, "analytics_rollup", "ANALYTICS_TEST_POSTGRES_URL")


def test_the_roll_up_on_postgresql(history: Sources, postgres_url: str):
    ingester = history.ingester(database_url=postgres_url)
    try:
        ingester.run()
        assert ingester.store.engine.dialect.name == "postgresql"
        assert_dashboard_equal(ingester.store, [TWO_DAYS, YEAR])
        assert rolled(ingester.store) == rebuilt(ingester.store) and rolled(ingester.store)["rollup_ratings"]
        assert_pages_by_key_are_the_list(ingester.store, TWO_DAYS, limit=1)
    finally:
        ingester.store.dispose()


def test_a_simulated_history_on_postgresql(simulated: AnalyticsStore, postgres_url: str, tmp_path_factory):
    """The six simulated weeks ingested into PostgreSQL: the same figures as on SQLite (the seat figures aggregated in
    the database there), equal both ways, and every list paged by key."""
    out = Path(str(simulated.engine.url.database)).parent
    src = Sources(out / "rasa_events.db", f"sqlite:///{out / 'webapp.db'}", out / "voice_calls.sqlite3", postgres_url)
    ingester = src.ingester(now="2026-11-06 00:00")
    try:
        ingester.run()
        october = F.Period.month("2026-10")
        assert_dashboard_equal(ingester.store, [october, F.Period(dt.date(2026, 9, 27), dt.date(2026, 11, 3))])
        for period in (october, YEAR):
            for channel in (None, "web", "phone"):
                assert both_ways(ingester.store, period, channel) == both_ways(simulated, period, channel), (period, channel)
        assert_pages_by_key_are_the_list(ingester.store, F.Period.days(dt.date(2026, 10, 5), 3), limit=40)
    finally:
        ingester.store.dispose()


def test_the_seat_figures_aggregated_in_postgresql_are_the_rows_own(postgres_url: str):
    """percentile_disc and an ordered avg give `_seat_row`'s numbers to the bit, for every group size from 1 to 80,
    with ties and times with fractions (a mean's last bit depends on the order its terms are added in)."""
    import random

    from analytics.store import HandoffRow, buckets

    store = AnalyticsStore(postgres_url)
    rng = random.Random(13)
    rows = []

    def add(day: dt.datetime, channel: str, status: str, wait: float | None, handle: float | None) -> None:
        queued = day + dt.timedelta(hours=rng.randrange(8, 18), seconds=rng.random() * 3000)
        rows.append(HandoffRow(source_id=len(rows) + 1, conversation_id=f"c{len(rows)}", channel=channel, status=status,
                               source_status=status, queued_at=queued, wait_seconds=wait, handle_seconds=handle,
                               **buckets(queued)))

    for n in range(1, 81):  # day n: n claimed web hand-offs (ties and fractions), a few given up, a phone one
        day = dt.datetime(2026, 1, 1) + dt.timedelta(days=n)
        for _ in range(n):
            wait = rng.choice([float(rng.randrange(5, 20)), round(rng.expovariate(1 / 150), 3), rng.random() * 1e4])
            handle = None if rng.random() < 0.3 else rng.lognormvariate(5.5, 0.6)
            add(day, "web", "resolved" if handle else "claimed", wait, handle)
        for _ in range(rng.randrange(3)):
            add(day, "web", rng.choice(["abandoned", "returned", "timed_out", "callback", "queued"]), None, None)
        add(day, "phone", "queued", None, None)
    try:
        store.call(lambda s: s.add_all(rows))
        period = F.Period(dt.date(2026, 1, 1), dt.date(2026, 4, 1))

        def check(s: Session) -> None:
            for by in BYS:
                aggregated = F.seat_figures(s, period, by)
                assert aggregated == F.seat_figures_from_rows(s, period, by), by
            assert [r["claimed"] for r in F.seat_figures(s, period, ("day",))] == list(range(1, 81))
            assert F.seat_figures_and_days(s, period) == (F.seat_figures(s, period), F.seat_figures(s, period, ("day",)))
            assert F.seat_figures_and_days(s, period) == F.seat_figures_and_days_from_rows(s, period)
        store.call(check)
    finally:
        store.dispose()
