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


def test_request_types_of_the_hand_counted_history(history, tmp_path):
    # S1, S2 (asked, then a person), S7 web and S3, S4 phone: 咨询; S6 card progress: 办理; S10 a person straight
    # away: 求助/转人工; S9: 投诉/举报; S5 greeting only: 其他 (S8 said nothing: not a session)
    ingester = history.ingester()
    ingester.run()
    data = ingester.store.call(lambda s: report_data(s, "2026-03"))
    rows = {t["type"]: (t["sessions"], t["web"], t["phone"]) for t in data["types"]}
    assert list(rows) == ["咨询", "办理", "求助/转人工", "投诉/举报", "其他"]
    assert rows == {"咨询": (5, 3, 2), "办理": (1, 1, 0), "求助/转人工": (1, 1, 0), "投诉/举报": (1, 1, 0), "其他": (1, 1, 0)}
    assert sum(n for n, _, _ in rows.values()) == data["now"]["sessions"] == 9
    consult = data["types"][0]
    assert consult["share"] == pytest.approx(5 / 9) and consult["previous"] == 0 and consult["mom"] is None and consult["yoy"] is None
    assert not data["simulated"]
    html = write_report(ingester.store, "2026-03", tmp_path)["html"].read_text(encoding="utf-8")
    table = html[html.index('<table id="types">'):]
    table = table[: table.index("</table>")]
    assert re.search(r"<td>咨询</td><td>5</td><td>55\.6%</td><td>3</td><td>2</td>\s*<td>0</td><td>—</td><td>0</td><td>—</td>", table)
    assert "<td>投诉/举报</td><td>1</td><td>11.1%</td>" in table and 'id="simulated"' not in html


def test_a_complaint_counts_as_one_wherever_it_is_said():
    from analytics.topics import request_type

    assert request_type("ask_question", "养老保险/领取条件") == "咨询"
    assert request_type("ask_question", "未找到答案") == "咨询"  # a business question, not answered
    assert request_type("report_card_loss", "社保卡/挂失") == "办理"
    assert request_type("ask_question", "社保卡/挂失") == "咨询"  # the same topic, only asked about
    assert request_type("request_human", "转人工") == "求助/转人工"
    assert request_type("request_human", "转人工", handoff_reason="市民投诉/情绪不满") == "投诉/举报"
    assert request_type("ask_question", "养老保险/领取条件", complained=True) == "投诉/举报"  # complained later in the session
    assert request_type("out_of_scope", "业务范围外") == "其他" and request_type(None, None) == "其他"


def test_request_types_add_up_with_month_on_month_change(store):
    data = store.call(lambda s: report_data(s, "2026-10"))
    september = {r["type"]: r["sessions"] for r in store.call(lambda s: F.request_types(s, F.Period.month("2026-09")))}
    types = {t["type"]: t for t in data["types"]}
    assert sum(t["sessions"] for t in data["types"]) == data["now"]["sessions"]
    assert all(t["web"] + t["phone"] == t["sessions"] for t in data["types"])
    assert types["办理"]["sessions"] > 0 and types["投诉/举报"]["sessions"] > 0 and types["咨询"]["share"] > 0.8
    assert types["咨询"]["mom"] == pytest.approx((types["咨询"]["sessions"] - september["咨询"]) / september["咨询"])
    by_day = store.call(lambda s: F.request_types(s, F.Period.month("2026-10"), ("day",)))
    assert sum(r["sessions"] for r in by_day if r["type"] == "办理") == types["办理"]["sessions"]
