"""The monthly report: rendered from a simulated September and October, its numbers checked against the store."""
from __future__ import annotations

import datetime as dt
import re

import pytest

from analytics import figures as F
from analytics.report import report_data, shift_month, write_report
from analytics.simulate import TrafficModel, render
from analytics.sources import SourceWriter
from tests.analytics.conftest import Sources


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    src = Sources(tmp / "rasa_events.db", f"sqlite:///{tmp / 'webapp.db'}", tmp / "voice_calls.sqlite3", f"sqlite:///{tmp / 'analytics.db'}")
    writer = SourceWriter(src.events, src.webapp_url, src.calls)
    render(TrafficModel(daily_sessions=120, seed=4), dt.date(2026, 9, 1), 61, writer)
    writer.close()
    ingester = src.ingester(now="2026-11-05 00:00")
    ingester.run()
    return ingester.store


def test_months_shift_across_years():
    assert shift_month("2026-01", -1) == "2025-12" and shift_month("2026-10", -12) == "2025-10"


def test_the_report_numbers_are_the_stores(store, tmp_path):
    html = write_report(store, "2026-10", tmp_path)["html"].read_text(encoding="utf-8")
    october = store.call(lambda s: F.summary(s, F.Period.month("2026-10")))
    september = store.call(lambda s: F.summary(s, F.Period.month("2026-09")))
    assert october["sessions"] > 0 and september["sessions"] > 0
    assert re.search(rf'id="sessions">{october["sessions"]}<', html)
    mom = (october["sessions"] - september["sessions"]) / september["sessions"] * 100
    assert f"环比 {'+' if mom >= 0 else '−'}{abs(mom):.1f}%" in html and "同比 —" in html  # no October 2025 to compare with
    assert re.search(rf'id="direct">{october["direct_answer_rate"] * 100:.1f}%<', html)
    assert re.search(rf'id="satisfaction">{october["satisfaction_rate"] * 100:.1f}%<', html)
    assert "济南社保智能客服月度分析报告（2026-10）" in html and "热点问题前十" in html


def test_top_topics_carry_their_month_on_month_change(store):
    data = store.call(lambda s: report_data(s, "2026-10"))
    september = {r["topic"]: r["sessions"] for r in store.call(lambda s: F.topic_sessions(s, F.Period.month("2026-09")))}
    assert len(data["topics"]) == 10
    assert [t["sessions"] for t in data["topics"]] == sorted((t["sessions"] for t in data["topics"]), reverse=True)
    top = data["topics"][0]
    assert top["mom"] == pytest.approx((top["sessions"] - september[top["topic"]]) / september[top["topic"]])
    assert sum(r["sessions"] for r in data["channels"]) == data["now"]["sessions"]
    assert data["not_found"] and all(not text.startswith("/") for text, _ in data["not_found"])
