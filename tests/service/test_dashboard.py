"""The supervisors' dashboard (统计看板): who may see it, parameters, figures equal to analytics.figures on the
hand-counted history of tests/analytics, drill-down lists that are exactly the records a figure counts, CSV."""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
from pathlib import Path
from urllib.parse import quote

import pytest

from analytics import figures as F
from analytics.store import AnalyticsStore
from tests.analytics.conftest import RAW_ID, RAW_PHONE, write_history
from tests.service.test_desk import browser, login
from webapp.app import create_app
from webapp.dashboard import page_key
from webapp.rasa_client import RasaClient
from webapp.settings import Settings

PERIOD = F.Period.days(dt.date(2026, 3, 2), 2)
DAYS = "from=2026-03-02&to=2026-03-03"
ENDPOINTS = ["/desk/api/dashboard", f"/desk/api/dashboard?{DAYS}", f"/desk/api/dashboard.csv?{DAYS}",
             f"/desk/api/dashboard/sessions?{DAYS}&figure=sessions", "/desk/api/dashboard/session/w1%231772413500000"]
RAW = re.compile(rf"{RAW_ID}|{RAW_PHONE}|\b1[3-9]\d{{9}}\b")


@pytest.fixture()
def app(tmp_path, monkeypatch, sources):
    """The web app reading this test's analytics store (not yet written)."""
    async def fake_send(self, sender, text, metadata=None, channel="web"):
        return [{"recipient_id": sender, "text": "机器人回答：" + text}]

    monkeypatch.setattr(RasaClient, "send", fake_send)
    settings = Settings(database_url=f"sqlite:///{tmp_path}/d.db", analytics=sources.settings(), reports_dir=tmp_path / "reports")
    return create_app(settings, name=f"db{abs(hash(tmp_path)) % 10**8}")


@pytest.fixture()
def store(sources) -> AnalyticsStore:
    """The hand-counted history (a raw ID and phone number typed in S6), ingested as analytics does it."""
    write_history(sources)
    ingester = sources.ingester()
    ingester.run()
    return ingester.store


async def get(app, sup, path):
    _, r = await app.asgi_client.get(path, headers=sup)
    return r


# --- who may see it -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ENDPOINTS)
async def test_anonymous_and_citizens_get_401(app, path):
    _, r = await app.asgi_client.get(path)
    assert r.status == 401
    _, citizen = await browser(app)
    _, r = await app.asgi_client.get(path, headers=citizen)
    assert r.status == 401


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_agents_get_403(app, store, path):
    agent = await login(app, "agent1", "agent1-demo")
    r = await get(app, agent, path)
    assert r.status == 403 and r.json["error"] == "仅值班长可查看"


# --- parameters -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("query", "message"), [
    ("from=2026-3-2&to=2026-03-03", "日期格式"), ("from=2026-02-30", "日期格式"), ("from=yesterday", "日期格式"),
    ("from=2026-03-03&to=2026-03-02", "开始日期不能晚于结束日期"), ("from=2025-01-01&to=2026-03-03", "最长 400 天"),
    ("channel=fax", "渠道"), (f"{DAYS}&figure=nope", "figure"), (f"{DAYS}&figure=sessions&hour=24", "hour"),
    (f"{DAYS}&figure=sessions&limit=0", "limit"), (f"{DAYS}&figure=sessions&offset=-1", "offset"),
    (f"{DAYS}&figure=sessions&day=2026-03-09", "不在查询时段内"), (f"{DAYS}&figure=sessions&entry=card-0501", "不能按"),
    (f"{DAYS}&figure=wait_seconds&topic=社保卡/挂失", "不能按"), (f"{DAYS}&figure=sessions&topic=" + "长" * 65, "过长"),
    (f"{DAYS}&figure=sessions&after=!!", "翻页参数无效"), (f"{DAYS}&figure=sessions&after=" + "A" * 301, "翻页参数无效"),
    (f"{DAYS}&figure=sessions&after=e30", "翻页参数无效"),  # {} is no page key
    (f"{DAYS}&figure=wait_seconds&after=" + page_key(["2026-03-02", 1.5, "w1"]), "翻页参数无效"),  # another list's key
])
async def test_bad_parameters_are_refused_in_chinese(app, store, query, message):
    sup = await login(app, "supervisor", "supervisor-demo")
    path = "/desk/api/dashboard/sessions?" if "figure" in query else "/desk/api/dashboard?"
    r = await get(app, sup, path + query)
    assert r.status == 400 and message in r.json["error"], r.json
    assert re.search(r"[\u4e00-\u9fff]", r.json["error"])
    if "figure" not in query:
        assert (await get(app, sup, "/desk/api/dashboard.csv?" + query)).status == 400


async def test_400_days_are_allowed_and_the_default_is_today(app, store):
    sup = await login(app, "supervisor", "supervisor-demo")
    r = await get(app, sup, "/desk/api/dashboard?from=2025-02-01&to=2026-03-07")
    assert r.status == 200 and len(r.json["days"]) == 400 and r.json["totals"]["sessions"] == 9
    r = await get(app, sup, "/desk/api/dashboard")
    today = app.ctx.supervision.dashboard.today().isoformat()
    assert (r.json["from"], r.json["to"], r.json["live"]) == (today, today, True)


async def test_no_store_yet_shows_zeros_and_creates_nothing(app, sources):
    sup = await login(app, "supervisor", "supervisor-demo")
    r = await get(app, sup, f"/desk/api/dashboard?{DAYS}")
    assert r.status == 200 and r.json["store"] is False and r.json["totals"]["sessions"] == 0
    assert r.json["totals"]["direct_answer_rate"] is None and len(r.json["days"]) == 2
    r = await get(app, sup, f"/desk/api/dashboard/sessions?{DAYS}&figure=handoff_rate")
    assert r.status == 200 and r.json["total"] == 0
    assert (await get(app, sup, "/desk/api/dashboard/session/x")).status == 404
    assert not Path(sources.analytics_url.removeprefix("sqlite:///")).exists()


# --- the figures are analytics.figures' -------------------------------------------------------------------------------

async def test_figures_equal_analytics_figures(app, store):
    sup = await login(app, "supervisor", "supervisor-demo")
    data = (await get(app, sup, f"/desk/api/dashboard?{DAYS}")).json
    assert data["store"] is True and data["live"] is False and data["as_of"] == "2026-03-03T16:00:00"
    t = data["totals"]
    summary = store.call(lambda s: F.summary(s, PERIOD))
    for key in ("sessions", "direct", "handed_off", "abandoned", "direct_answer_rate", "handoff_rate", "abandonment_rate",
                "ratings", "satisfaction_rate", "rating_response_rate", "surveys"):
        assert t[key] == summary[key], key
    for key in ("queued", "claimed", "queue_abandonment_rate", "wait_mean", "wait_median", "wait_p90", "handle_mean"):
        assert t[key] == summary[f"seat_{key}"], key
    assert t["queue_abandoned"] == summary["seat_abandoned"]
    # and the hand counts of tests/analytics/test_figures.py
    assert (t["sessions"], t["direct"], t["handed_off"], t["abandoned"], t["queued"], t["queue_abandoned"]) == (9, 4, 5, 1, 4, 1)
    assert (t["wait_mean"], t["ratings"], t["satisfaction_rate"]) == (70.0, 2, 0.5)
    assert (t["answers"], t["answer_unhelpful"], t["answer_handoff_after"]) == (4, 1, 2)
    assert data["handoff_reasons"] == [{"reason": "市民要求人工", "count": 4}, {"reason": "市民投诉/情绪不满", "count": 1}]
    assert [(d["day"], d["sessions"], d["handed_off"], d["queued"], d["ratings"]) for d in data["days"]] == [
        ("2026-03-02", 6, 3, 2, 1), ("2026-03-03", 3, 2, 2, 1)]
    assert {h["hour"]: h["sessions"] for h in data["hours"] if h["sessions"]} == {9: 3, 10: 2, 11: 1, 14: 1, 15: 1, 16: 1}
    assert len(data["hours"]) == 24
    topics = store.call(lambda s: F.topic_sessions(s, PERIOD))
    assert [(x["topic"], x["sessions"]) for x in data["topics"]] == [(x["topic"], x["sessions"]) for x in topics]
    assert [(e["entry_id"], e["unhelpful"], e["handoff_after"], e["topic"]) for e in data["worst_entries"]] == [
        ("card-0536", 1, 1, "社保卡/补换卡"), ("enrol-0018", 0, 1, "参保缴费/灵活就业")]
    assert data["labels"]["direct_answer_rate"] == "直接解答率"


async def test_one_channel_is_that_channels_figures(app, store):
    sup = await login(app, "supervisor", "supervisor-demo")
    by_channel = {r["channel"]: r for r in store.call(lambda s: F.session_figures(s, PERIOD, ("channel",)))}
    for channel in ("web", "phone"):
        t = (await get(app, sup, f"/desk/api/dashboard?{DAYS}&channel={channel}")).json["totals"]
        assert (t["sessions"], t["direct"], t["handed_off"]) == tuple(by_channel[channel][k] for k in ("sessions", "direct", "handed_off"))
    phone = (await get(app, sup, f"/desk/api/dashboard?{DAYS}&channel=phone")).json
    assert phone["totals"]["queued"] == 0 and phone["totals"]["wait_mean"] is None  # phone transfers go to the PBX
    assert [(r["reason"], r["count"]) for r in phone["handoff_reasons"]] == [("市民要求人工", 1)]


# --- drill-down: the records a figure counts ------------------------------------------------------------------------

# (figure, filters, the figure's numerator as analytics.figures counts it)
NUMERATORS = [
    ("sessions", "", lambda s: F.session_figures(s, PERIOD)[0]["sessions"]),
    ("direct_answer_rate", "", lambda s: F.session_figures(s, PERIOD)[0]["direct"]),
    ("handoff_rate", "", lambda s: F.session_figures(s, PERIOD)[0]["handed_off"]),
    ("abandonment_rate", "", lambda s: F.session_figures(s, PERIOD)[0]["abandoned"]),
    ("handoff_rate", "&channel=phone", lambda s: next(r["handed_off"] for r in F.session_figures(s, PERIOD, ("channel",))
                                                      if r["channel"] == "phone")),
    ("sessions", "&day=2026-03-03", lambda s: next(r["sessions"] for r in F.session_figures(s, PERIOD, ("day",))
                                                   if r["day"] == "2026-03-03")),
    ("sessions", "&hour=9", lambda s: next(r["sessions"] for r in F.session_figures(s, PERIOD, ("hour",)) if r["hour"] == 9)),
    ("sessions", "&topic=社保卡/挂失", lambda s: next(r["sessions"] for r in F.topic_sessions(s, PERIOD) if r["topic"] == "社保卡/挂失")),
    ("handoff_reasons", "&reason=市民要求人工", lambda s: F.handoff_reasons(s, PERIOD)[0]["count"]),
    ("queue_abandonment_rate", "", lambda s: F.seat_figures(s, PERIOD)[0]["abandoned"]),
    ("wait_seconds", "", lambda s: F.seat_figures(s, PERIOD)[0]["claimed"]),
    ("handle_seconds", "", lambda s: F.seat_figures(s, PERIOD)[0]["resolved"]),
    ("satisfaction_rate", "", lambda s: F.rating_figures(s, PERIOD)[0]["满意"] + F.rating_figures(s, PERIOD)[0]["基本满意"]),
    ("rating_response_rate", "", lambda s: F.rating_figures(s, PERIOD)[0]["ratings"]),
    ("answers", "", lambda s: sum(r["answers"] for r in F.answer_figures(s, PERIOD))),
    ("unhelpful_rate", "", lambda s: sum(r["unhelpful"] for r in F.answer_figures(s, PERIOD))),
    ("handoff_after_rate", "", lambda s: sum(r["handoff_after"] for r in F.answer_figures(s, PERIOD))),
    ("handoff_after_rate", "&entry=enrol-0018", lambda s: next(r["handoff_after"] for r in F.answer_figures(s, PERIOD)
                                                               if r["entry_id"] == "enrol-0018")),
]


@pytest.mark.parametrize(("figure", "filters", "numerator"), NUMERATORS)
async def test_drill_down_rows_are_the_figures_numerator(app, store, figure, filters, numerator):
    sup = await login(app, "supervisor", "supervisor-demo")
    r = await get(app, sup, f"/desk/api/dashboard/sessions?{DAYS}&figure={figure}{filters}")
    assert r.status == 200, r.json
    expected = store.call(numerator)
    assert expected > 0 and r.json["total"] == expected and len(r.json["rows"]) == expected
    assert r.json["label"] == F.FIGURES[figure].label


async def test_drill_down_lists_the_right_sessions_and_pages(app, store):
    sup = await login(app, "supervisor", "supervisor-demo")
    rows = (await get(app, sup, f"/desk/api/dashboard/sessions?{DAYS}&figure=handoff_rate")).json["rows"]
    assert sorted(r["session_id"].split("#")[0] for r in rows) == ["CA2", "w2", "w4", "w6", "w7"]
    assert all(r["outcome"] == "handoff" for r in rows)
    assert [r["started_at"] for r in rows] == sorted((r["started_at"] for r in rows), reverse=True)  # newest first
    waits = (await get(app, sup, f"/desk/api/dashboard/sessions?{DAYS}&figure=wait_seconds")).json["rows"]
    assert [w["wait_seconds"] for w in waits] == [120.0, 60.0, 30.0]  # the longest first
    abandoned = (await get(app, sup, f"/desk/api/dashboard/sessions?{DAYS}&figure=abandonment_rate")).json["rows"]
    assert [(a["session_id"].split("#")[0], a["channel"], a["abandoned"]) for a in abandoned] == [("CA1", "phone", True)]
    first = (await get(app, sup, f"/desk/api/dashboard/sessions?{DAYS}&figure=sessions&limit=4")).json
    second = (await get(app, sup, f"/desk/api/dashboard/sessions?{DAYS}&figure=sessions&limit=4&offset=4")).json
    third = (await get(app, sup, f"/desk/api/dashboard/sessions?{DAYS}&figure=sessions&limit=4&offset=8")).json
    ids = [r["session_id"] for page in (first, second, third) for r in page["rows"]]
    assert first["total"] == 9 and len(ids) == 9 and len(set(ids)) == 9
    # the desk pages by key: each page names the next one's `after`, the last none; the same pages as by offset
    pages, after = [], ""
    while True:
        page = (await get(app, sup, f"/desk/api/dashboard/sessions?{DAYS}&figure=sessions&limit=4"
                                    + (f"&after={after}" if after else ""))).json
        pages.append([r["session_id"] for r in page["rows"]])
        after = page["next"]
        if after is None:
            break
    assert pages == [[r["session_id"] for r in p["rows"]] for p in (first, second, third)]
    assert [p["next"] is None for p in (first, second, third)] == [False, False, True]


async def test_a_session_shows_its_masked_turns(app, store):
    sup = await login(app, "supervisor", "supervisor-demo")
    rows = (await get(app, sup, f"/desk/api/dashboard/sessions?{DAYS}&figure=queue_abandonment_rate")).json["rows"]
    [row] = rows
    assert row["session_id"].startswith("w4#") and row["status"] in ("abandoned", "returned") and row["wait_seconds"] is None
    r = await get(app, sup, "/desk/api/dashboard/session/" + quote(row["session_id"], safe=""))
    assert r.status == 200
    data = r.json
    assert data["session"]["id"] == row["session_id"] and data["session"]["outcome"] == "handoff"
    texts = [t["text"] for t in data["turns"] if t["role"] == "citizen"]
    assert texts[0].startswith("我的身份证号") and "查下卡的进度" in texts[0] and texts[1] == "转人工"
    assert not RAW.search(r.text), r.text
    assert data["handoffs"][0]["queue"] == "社保卡"
    assert (await get(app, sup, "/desk/api/dashboard/session/nope")).status == 404
    assert (await get(app, sup, "/desk/api/dashboard/session/" + "x" * 121)).status == 404


# --- CSV ---------------------------------------------------------------------------------------------------------------

def parse_csv(r) -> list[list[str]]:
    assert r.status == 200, r.text
    assert r.headers["content-type"].startswith("text/csv") and r.headers["content-disposition"].startswith("attachment; filename=")
    assert r.body.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel reads the Chinese
    return list(csv.reader(io.StringIO(r.body.decode("utf-8-sig"))))


async def test_days_csv(app, store):
    sup = await login(app, "supervisor", "supervisor-demo")
    r = await get(app, sup, f"/desk/api/dashboard.csv?{DAYS}")
    rows = parse_csv(r)
    assert r.headers["content-disposition"] == 'attachment; filename="dashboard_2026-03-02_2026-03-03.csv"'
    head, *days, total = rows
    assert head[:4] == ["日期", "服务量", "直接解答", "直接解答率"]
    assert [(d[0], int(d[1])) for d in days] == [("2026-03-02", 6), ("2026-03-03", 3)]
    assert total[0] == "合计" and int(total[1]) == 9 and float(total[3]) == pytest.approx(4 / 9, abs=1e-4)
    assert float(total[head.index("满意率")]) == 0.5 and total[head.index("平均等待秒")] == "70.0"
    assert not RAW.search(r.body.decode("utf-8-sig"))


async def test_drill_down_csv_is_masked_and_complete(app, store):
    sup = await login(app, "supervisor", "supervisor-demo")
    r = await get(app, sup, f"/desk/api/dashboard/sessions?{DAYS}&figure=sessions&limit=2&format=csv")
    head, *rows = parse_csv(r)
    assert len(rows) == 9  # the whole list, not a page
    second = (await get(app, sup, f"/desk/api/dashboard/sessions?{DAYS}&figure=sessions&limit=2")).json["next"]
    r = await get(app, sup, f"/desk/api/dashboard/sessions?{DAYS}&figure=sessions&limit=2&after={second}&format=csv")
    assert parse_csv(r)[1:] == rows  # from the page being looked at too
    assert head[:5] == ["会话", "渠道", "时间", "会话开始", "会话主题"]
    r = await get(app, sup, f"/desk/api/dashboard/sessions?{DAYS}&figure=handoff_after_rate&format=csv")
    head, *rows = parse_csv(r)
    assert len(rows) == 2 and "市民问题" in head
    questions = {row[head.index("知识条目")]: row[head.index("市民问题")] for row in rows}
    assert questions["enrol-0018"] == "灵活就业怎么参保"
    body = r.body.decode("utf-8-sig")
    assert not RAW.search(body)


async def test_csv_cells_are_never_formulas_and_text_is_masked():
    from webapp.dashboard import to_csv

    body = to_csv(["a", "b", "c"], [["=HYPERLINK(\"x\")", f"电话{RAW_PHONE}", 3.14159]]).decode("utf-8-sig")
    [_, row] = list(csv.reader(io.StringIO(body)))
    assert row[0].startswith("'=") and RAW_PHONE not in row[1] and "139" in row[1] and row[2] == "3.1416"


async def test_a_simulated_store_is_said_to_be_simulated(app, store):
    from analytics.demo import DEMO_MARKER
    from analytics.store import Cursor

    sup = await login(app, "supervisor", "supervisor-demo")
    assert (await get(app, sup, f"/desk/api/dashboard?{DAYS}")).json["simulated"] is False
    store.call(lambda s: s.add(Cursor(source=DEMO_MARKER, position="2026-03")))
    assert (await get(app, sup, f"/desk/api/dashboard?{DAYS}&channel=web")).json["simulated"] is True
