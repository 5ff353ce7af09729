"""The report's PDF and XLSX: the PDF's text carries the store's key numbers, the workbook's cells equal the
figures, and no raw ID or phone number reaches any output (HTML, PDF, XLSX, the gaps command)."""
from __future__ import annotations

import datetime as dt
import re
import subprocess

import pytest
from openpyxl import load_workbook

from analytics import figures as F
from analytics import gaps as G
from analytics.report import report_data, write_report
from analytics.simulate import TrafficModel, render
from analytics.sources import SourceWriter
from tests.analytics.conftest import RAW_ID, RAW_PHONE, Sources, T

RAW_PHONE_2, RAW_ID_2 = "13800138000", "11010519491231002X"


def _raw_numbers(text: str) -> list[str]:
    return [n for n in (RAW_ID, RAW_PHONE, RAW_PHONE_2, RAW_ID_2) if n in text]


@pytest.fixture(scope="module")
def october(tmp_path_factory):
    """A simulated September and October, plus October questions with raw ID and phone numbers in every gap kind."""
    tmp = tmp_path_factory.mktemp("formats")
    src = Sources(tmp / "rasa_events.db", f"sqlite:///{tmp / 'webapp.db'}", tmp / "voice_calls.sqlite3", f"sqlite:///{tmp / 'analytics.db'}")
    w = SourceWriter(src.events, src.webapp_url, src.calls)
    render(TrafficModel(daily_sessions=60, seed=7), dt.date(2026, 9, 1), 61, w)
    for i in range(3):  # not found, with an ID number
        w.session(f"raw{i}", T(f"2026-10-1{i} 10:00"))
        w.user(f"raw{i}", T(f"2026-10-1{i} 10:00:05"), f"我身份证{RAW_ID}的那个补贴到哪了", "ask_question")
        w.kb_reply(f"raw{i}", T(f"2026-10-1{i} 10:00:06"), "none", score=0.1)
    w.session("raw7", T("2026-10-20 11:00"))  # 没帮助, with a phone number and another ID
    w.user("raw7", T("2026-10-20 11:00:05"), f"社保卡丢了怎么补 电话{RAW_PHONE_2} 身份证{RAW_ID_2}", "ask_question")
    w.kb_reply("raw7", T("2026-10-20 11:00:06"), "confident", "card-0536", "社保卡/补换卡")
    w.user("raw7", T("2026-10-20 11:01"), "/feedback_unhelpful", "feedback_unhelpful")
    w.feedback_reply("raw7", T("2026-10-20 11:01:01"))
    w.session("raw8", T("2026-10-21 11:00"))  # answered, then a person, with a phone number
    w.user("raw8", T("2026-10-21 11:00:05"), f"灵活就业怎么参保 我电话{RAW_PHONE}", "ask_question")
    w.kb_reply("raw8", T("2026-10-21 11:00:06"), "confident", "enrol-0018", "参保缴费/灵活就业")
    w.user("raw8", T("2026-10-21 11:01"), "转人工", "request_human")
    w.handoff("raw8", T("2026-10-21 11:01:01"), "web", "综合", "市民要求人工", claimed_after=20, handled_for=60, rating="满意")
    w.close()
    ingester = src.ingester(now="2026-11-05 00:00")
    ingester.run()
    out = tmp / "reports"
    paths = write_report(ingester.store, "2026-10", out, ("html", "xlsx", "pdf"), kb=G.load_knowledge())
    return ingester.store, paths, src


def _pdf_text(path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout


def test_the_pdf_is_rendered_with_the_stores_numbers(october):
    store, paths, _ = october
    pdf = paths["pdf"]
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 20_000
    text = _pdf_text(pdf)
    now = store.call(lambda s: F.summary(s, F.Period.month("2026-10")))
    before = store.call(lambda s: F.summary(s, F.Period.month("2026-09")))
    assert "济南社保智能客服月度分析报告（2026-10）" in text  # Chinese text is real text, not boxes
    assert re.search(rf"\b{now['sessions']}\b", text)
    mom = (now["sessions"] - before["sessions"]) / before["sessions"] * 100
    assert f"环比 {'+' if mom >= 0 else '−'}{abs(mom):.1f}%" in text
    for rate in ("direct_answer_rate", "handoff_rate", "satisfaction_rate"):
        assert f"{now[rate] * 100:.1f}%" in text
    for heading in ("每日服务量（按渠道）", "直接解答率、转人工率、满意率（近七个月）", "重复咨询", "知识缺口", "诉求类型"):
        assert heading in text
    types = {t["type"]: t["sessions"] for t in store.call(lambda s: report_data(s, "2026-10"))["types"]}
    assert re.search(rf"投诉/举报\s+{types['投诉/举报']}\s", text) and re.search(rf"办理\s+{types['办理']}\s", text)
    png = pdf.parent / "page"
    subprocess.run(["pdftoppm", "-r", "40", "-png", "-f", "1", "-l", "1", str(pdf), str(png)], check=True)
    first = next(pdf.parent.glob("page*.png"))
    assert first.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and first.stat().st_size > 5_000


def test_the_gaps_reach_every_format(october):
    store, paths, _ = october
    html = paths["html"].read_text(encoding="utf-8")
    assert "那个补贴到哪了" in html and "身份证" in html
    sheet = load_workbook(paths["xlsx"])["知识缺口"]
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    assert rows and all(isinstance(r[2], int) for r in rows) and [r[2] for r in rows] == sorted((r[2] for r in rows), reverse=True)
    assert any("那个补贴到哪了" in (r[7] or "") for r in rows)


def test_no_raw_identifier_in_any_output(october, monkeypatch, capsys):
    store, paths, src = october
    assert not _raw_numbers(paths["html"].read_text(encoding="utf-8"))
    assert not _raw_numbers(_pdf_text(paths["pdf"]))
    wb = load_workbook(paths["xlsx"])
    cells = " ".join(str(c) for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for c in row if c is not None)
    assert not _raw_numbers(cells) and "尾号" in cells  # the masked form is there
    monkeypatch.setenv("ANALYTICS_DATABASE_URL", src.analytics_url)
    assert G.main(["--month", "2026-10", "--no-knowledge", "--limit", "2000"]) == 0
    out = capsys.readouterr().out
    assert "那个补贴到哪了" in out and not _raw_numbers(out)


def test_workbook_cells_equal_the_figures(history: Sources, tmp_path):
    ingester = history.ingester()
    ingester.run()
    store = ingester.store
    path = write_report(store, "2026-03", tmp_path, ("xlsx",))["xlsx"]
    wb = load_workbook(path)
    period = F.Period.month("2026-03")
    now = store.call(lambda s: F.summary(s, period))
    summary = {r[0]: r[1:] for r in wb["汇总"].iter_rows(min_row=2, values_only=True) if r and r[0]}
    assert summary["服务量"][:3] == (9, 0, 0) and summary["服务量"][3] is None  # nothing last month: no 环比
    assert summary["直接解答率"][0] == pytest.approx(now["direct_answer_rate"]) == pytest.approx(4 / 9)
    assert summary["转人工率"][0] == pytest.approx(5 / 9) and summary["满意率"][0] == 0.5
    assert summary["平均等待时长（秒）"][0] == 70.0 and summary["评价率"][0] == pytest.approx(2 / 3)
    assert wb["汇总"]["C3"].number_format == "0.0%" and wb["汇总"]["B2"].data_type == "n"
    channels = {r[0]: r[1:] for r in wb["分渠道"].iter_rows(min_row=2, values_only=True)}
    assert channels["网页"][:1] == (7,) and channels["电话"][:1] == (2,)
    assert channels["网页"][2] == pytest.approx(3 / 7) and channels["电话"][3] == pytest.approx(1 / 2)
    topics = {r[0]: r[1] for r in wb["分类别"].iter_rows(min_row=2, values_only=True)}
    assert topics == {r["topic"]: r["sessions"] for r in store.call(lambda s: F.topic_sessions(s, period))}
    answers = {r[0]: (r[3], r[4], r[5]) for r in wb["分类别"].iter_rows(min_row=2, values_only=True)}
    assert answers["社保卡/补换卡"] == (1, 1.0, 1.0) and answers["社保卡/挂失"] == (2, 0.0, 0.0) and answers["投诉"] == (0, None, None)
    hot = [r[:3] for r in wb["热点问题前十"].iter_rows(min_row=2, values_only=True)]
    assert hot[0] == (1, "社保卡/挂失", 2)
    daily = {r[0]: r[1:] for r in wb["每日服务量"].iter_rows(min_row=2, values_only=True)}
    assert daily["2026-03-02"] == (4, 2, 6) and daily["2026-03-03"] == (3, 0, 3) and daily["2026-03-31"] == (0, 0, 0)
    repeat = {r[0]: r[1] for r in wb["重复咨询"].iter_rows(min_row=2, values_only=True) if r and r[0]}
    assert repeat["社保卡/挂失"] == 1 and repeat["重复咨询次数（网页）"] == 1 and repeat["重复咨询率"] == pytest.approx(1 / 6)
    gaps = [r[2:7] for r in wb["知识缺口"].iter_rows(min_row=2, values_only=True)]
    assert sorted(gaps) == [(1, 1, 0, 0, 1), (1, 1, 0, 1, 0)]
    reasons = {r[0]: r[1] for r in wb["转人工原因"].iter_rows(min_row=2, values_only=True)}
    assert reasons == {"市民要求人工": 4, "市民投诉/情绪不满": 1}
    types = {r[0]: r[1:] for r in wb["分诉求类型"].iter_rows(min_row=2, values_only=True)}
    assert list(types) == ["咨询", "办理", "求助/转人工", "投诉/举报", "其他"]
    assert types["咨询"][:4] == (5, pytest.approx(5 / 9), 3, 2) and types["投诉/举报"][:4] == (1, pytest.approx(1 / 9), 1, 0)
    assert types["咨询"][4:] == (0, None, 0, None)  # nothing last month or last year: no 环比, 同比
    assert wb["分诉求类型"]["C2"].number_format == "0.0%" and wb["分诉求类型"]["B2"].data_type == "n"
