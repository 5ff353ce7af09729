"""Each figure against the hand-counted history of tests/analytics/conftest.py.

Sessions with a citizen message: S1–S7, S9, S10 = 9 (S8 said nothing); phone S3, S4; web the other 7.
Hand-off requests: S2, S4, S6, S9, S10 = 5. 没帮助: S2 (also handed off). Direct: S1, S3, S5, S7 = 4.
Abandoned sessions: S3 (suggestions never answered). Web hand-offs: S2, S6, S9, S10; S6 never claimed.
Waits 60, 120, 30 s; handling 300, 600, 100 s. Ratings: S2 满意, S9 不满意; resolved (asked): S2, S9, S10.
Answers: card-0501 (S1 有帮助, S7), card-0536 (S2: 没帮助 then a person), enrol-0018 (S4: then a person).
"""
from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from analytics import figures as F
from tests.analytics.conftest import Sources

PERIOD = F.Period.days(dt.date(2026, 3, 2), 2)


@pytest.fixture()
def store(history: Sources):
    ingester = history.ingester()
    ingester.run()
    return ingester.store


def read(store, fn, *args, **kwargs):
    return store.call(lambda s: fn(s, *args, **kwargs))


def test_volume_direct_answer_handoff_and_abandonment(store):
    row, = read(store, F.session_figures, PERIOD)
    assert (row["sessions"], row["direct"], row["handed_off"], row["unhelpful"], row["abandoned"]) == (9, 4, 5, 1, 1)
    assert row["direct_answer_rate"] == pytest.approx(4 / 9)
    assert row["handoff_rate"] == pytest.approx(5 / 9)
    assert row["abandonment_rate"] == pytest.approx(1 / 9)


def test_figures_by_channel_day_and_hour(store):
    by_channel = {r["channel"]: r for r in read(store, F.session_figures, PERIOD, ("channel",))}
    assert {c: (r["sessions"], r["direct"], r["handed_off"]) for c, r in by_channel.items()} == {"phone": (2, 1, 1), "web": (7, 3, 4)}
    by_day = {r["day"]: r["sessions"] for r in read(store, F.session_figures, PERIOD, ("day",))}
    assert by_day == {"2026-03-02": 6, "2026-03-03": 3}
    by_hour = {r["hour"]: r["sessions"] for r in read(store, F.session_figures, PERIOD, ("hour",))}
    assert by_hour == {9: 3, 10: 2, 11: 1, 14: 1, 15: 1, 16: 1}
    by_month = read(store, F.session_figures, F.Period.month("2026-03"), ("month",))
    assert [(r["month"], r["sessions"]) for r in by_month] == [("2026-03", 9)]
    empty, = read(store, F.session_figures, F.Period.month("2026-02"))
    assert empty["sessions"] == 0 and empty["direct_answer_rate"] is None


def test_handoff_reasons(store):
    assert [(r["reason"], r["count"]) for r in read(store, F.handoff_reasons, PERIOD)] == [("市民要求人工", 4), ("市民投诉/情绪不满", 1)]


def test_seat_waiting_handling_and_queue_abandonment(store):
    row, = read(store, F.seat_figures, PERIOD)
    assert (row["queued"], row["claimed"], row["resolved"], row["abandoned"]) == (4, 3, 3, 1)
    assert row["queue_abandonment_rate"] == 0.25
    assert (row["wait_mean"], row["wait_median"], row["wait_p90"]) == (70.0, 60.0, 120.0)
    assert row["handle_mean"] == pytest.approx(1000 / 3) and row["handle_median"] == 300.0


def test_satisfaction_and_rating_response_rate(store):
    row, = read(store, F.rating_figures, PERIOD)
    assert (row["ratings"], row["满意"], row["基本满意"], row["不满意"], row["surveys"]) == (2, 1, 0, 1, 3)
    assert row["satisfaction_rate"] == 0.5
    assert row["rating_response_rate"] == pytest.approx(2 / 3)


def test_per_entry_answers_unhelpful_and_handoff_after(store):
    rows = {r["entry_id"]: r for r in read(store, F.answer_figures, PERIOD)}
    assert {e: (r["answers"], r["unhelpful"], r["handoff_after"]) for e, r in rows.items()} == {
        "card-0501": (2, 0, 0), "card-0536": (1, 1, 1), "enrol-0018": (1, 0, 1)}
    assert rows["card-0536"]["unhelpful_rate"] == 1.0 and rows["card-0501"]["handoff_after_rate"] == 0.0


def test_per_topic_and_area(store):
    topics = {r["topic"]: r["answers"] for r in read(store, F.answer_figures, PERIOD, "topic")}
    assert topics == {"社保卡/挂失": 2, "社保卡/补换卡": 1, "参保缴费/灵活就业": 1}
    areas = {r["area"]: (r["answers"], r["unhelpful"]) for r in read(store, F.answer_figures, PERIOD, "area")}
    assert areas == {"社保卡": (3, 1), "参保缴费": (1, 0)}
    sessions = {r["topic"]: r["sessions"] for r in read(store, F.topic_sessions, PERIOD)}
    assert sessions == {"社保卡/挂失": 2, "社保卡/补换卡": 1, "电子社保卡/申领": 1, "参保缴费/灵活就业": 1,
                        "社保卡/制卡进度": 1, "投诉": 1, "转人工": 1}
    by_channel = {(r["channel"], r["topic"]): r["sessions"] for r in read(store, F.topic_sessions, PERIOD, ("channel",), "area")}
    assert by_channel[("web", "社保卡")] == 4 and by_channel[("phone", "电子社保卡")] == 1


def test_a_rate_over_nothing_is_none_not_zero():
    assert F.rate(0, 0) is None and F.rate(0, 3) == 0.0
    assert F.percentile([], 0.9) is None and F.percentile([5, 1, 3], 0.5) == 3


def test_grouping_by_an_unknown_column_is_refused(store):
    with pytest.raises(ValueError, match="cannot group by agent"):
        read(store, F.session_figures, PERIOD, ("agent",))


def test_every_figure_is_defined_in_the_docs():
    docs = (Path(__file__).resolve().parents[2] / "docs" / "analytics.md").read_text(encoding="utf-8")
    for fig in F.FIGURES.values():
        assert re.search(rf"`{fig.name}`.*{re.escape(fig.label)}", docs), f"docs/analytics.md does not define {fig.name} ({fig.label})"


def test_repeat_contacts(store):
    # S7: the citizen of S1 (web conversation w1) back the next morning about 社保卡/挂失; phone calls have no caller key
    row = read(store, F.repeat_contacts, PERIOD)
    assert (row["sessions"], row["repeat_sessions"], row["repeat_citizens"]) == (6, 1, 1)
    assert row["repeat_rate"] == pytest.approx(1 / 6) and row["topics"] == [{"topic": "社保卡/挂失", "repeat_sessions": 1, "citizens": 1}]
    assert read(store, F.repeat_contacts, F.Period.days(dt.date(2026, 3, 3), 1))["repeat_sessions"] == 1  # looks back before the period
    assert read(store, F.repeat_contacts, PERIOD, days=0)["repeat_sessions"] == 0
