"""The monthly analysis report (月度分析报告) as one self-contained HTML page in Chinese.

    python -m analytics.report --month 2026-10        # writes var/reports/2026-10.html, .xlsx and .pdf

Contents: the month's volume with 环比 (previous month) and 同比 (same month last year), by request type
(咨询/办理/求助/投诉/其他, with 同比/环比) and by channel, with a
chart of daily volume by channel; 直接解答率 / 转人工率 / 满意率 for the month and the six months before
(trend, charted); hand-off reasons; the seat's waiting and handling times; top-10 topics with 环比; the
alerts fired; repeat contacts; knowledge gaps (clustered by analytics.gaps, and the entries most often rated
没帮助 or followed by a hand-off). Every number comes from analytics.figures (or analytics.gaps). The same
data is written as a workbook (analytics.report_xlsx) and the page is printed to PDF by headless Chromium
(analytics.report_pdf).
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from jinja2 import Environment, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session

from analytics import figures as F
from analytics.charts import rate_lines, stacked_bars
from analytics.demo import is_simulated
from analytics.gaps import REASONS, Searcher, gap_questions, knowledge_gaps, load_knowledge
from analytics.settings import ROOT, settings_for_month
from analytics.store import Alert, AnalyticsStore, Turn
from analytics.topics import NOT_FOUND, REQUEST_TYPES

CHANNELS = {"web": "网页", "phone": "电话"}


def shift_month(month: str, months: int) -> str:
    """YYYY-MM moved by `months` (negative: earlier)."""
    y, m = map(int, month.split("-"))
    n = y * 12 + (m - 1) + months
    return f"{n // 12:04d}-{n % 12 + 1:02d}"


def trend(current: float | None, previous: float | None) -> float | None:
    """(current − previous) ÷ previous, None when there is nothing to compare with."""
    return (current - previous) / previous if current is not None and previous else None


def report_data(s: Session, month: str, min_answers: int = 20, kb: Searcher | None = None) -> dict[str, Any]:
    """Everything the report shows, as plain values (the tests compare them with the store).

    kb: the knowledge base the gap clusters' nearest entries are looked up in (none without it)."""
    period, prev, last_year = F.Period.month(month), F.Period.month(shift_month(month, -1)), F.Period.month(shift_month(month, -12))
    now, before, year_ago = F.summary(s, period), F.summary(s, prev), F.summary(s, last_year)
    history = []
    for back in range(6, -1, -1):
        m = shift_month(month, -back)
        row = F.summary(s, F.Period.month(m))
        history.append({"month": m, "sessions": row["sessions"], "direct_answer_rate": row["direct_answer_rate"],
                        "handoff_rate": row["handoff_rate"], "satisfaction_rate": row["satisfaction_rate"]})
    prev_topics = {r["topic"]: r["sessions"] for r in F.topic_sessions(s, prev)}
    topics = [{**r, "share": r["sessions"] / now["sessions"] if now["sessions"] else None,
               "mom": trend(r["sessions"], prev_topics.get(r["topic"]))} for r in F.topic_sessions(s, period)[:10]]
    start = dt.datetime.combine(period.start, dt.time())
    end = dt.datetime.combine(period.end, dt.time())
    alerts = s.scalars(select(Alert).where(Alert.detected_at >= start, Alert.detected_at < end).order_by(Alert.detected_at)).all()
    entries = [r for r in F.answer_figures(s, period) if r["answers"] >= min_answers]
    gaps_unhelpful = sorted(entries, key=lambda r: (-(r["unhelpful_rate"] or 0), -r["answers"]))[:10]
    gaps_handoff = sorted(entries, key=lambda r: (-(r["handoff_after_rate"] or 0), -r["answers"]))[:10]
    not_found = s.execute(select(Turn.text).where(Turn.role == "citizen", Turn.topic == NOT_FOUND, Turn.at >= start, Turn.at < end)).scalars()
    counts: dict[str, int] = {}
    for text in not_found:
        if text and not text.startswith("/"):
            counts[text] = counts.get(text, 0) + 1
    daily = {(r["day"], r["channel"]): r["sessions"] for r in F.session_figures(s, period, ("day", "channel"))}
    days = [(period.start + dt.timedelta(days=i)).isoformat() for i in range((period.end - period.start).days)]
    clusters, unclustered = knowledge_gaps(gap_questions(s, period), kb)
    return {
        "simulated": is_simulated(s), "types": request_type_rows(s, period, prev, last_year, now["sessions"]),
        "month": month, "period": period.label(), "now": now, "before": before, "year_ago": year_ago,
        "mom": trend(now["sessions"], before["sessions"]), "yoy": trend(now["sessions"], year_ago["sessions"]),
        "channels": F.session_figures(s, period, ("channel",)), "ratings_by_channel": F.rating_figures(s, period, ("channel",)),
        "reasons": F.handoff_reasons(s, period)[:8], "history": history, "topics": topics,
        "alerts": [{"topic": a.topic, "started_at": a.started_at, "detected_at": a.detected_at, "count": a.count,
                    "expected": a.expected, "total_count": a.total_count, "examples": a.examples[:3],
                    "entries": a.entries[:3]} for a in alerts],
        "gaps_unhelpful": gaps_unhelpful, "gaps_handoff": gaps_handoff,
        "not_found": sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:15], "min_answers": min_answers,
        "daily": [{"day": d, **{c: daily.get((d, c), 0) for c in CHANNELS}} for d in days],
        "repeat": F.repeat_contacts(s, period), "topics_all": F.topic_sessions(s, period),
        "answers_by_topic": {r["topic"]: r for r in F.answer_figures(s, period, "topic")},
        "gaps": [c.as_dict() for c in clusters], "gaps_unclustered": unclustered,
    }


def request_type_rows(s: Session, period: F.Period, prev: F.Period, last_year: F.Period, sessions: int) -> list[dict[str, Any]]:
    """Sessions per request type (咨询, 办理, 求助/转人工, 投诉/举报, 其他) with share, 环比, 同比 and the count per channel."""
    before, year_ago = ({r["type"]: r["sessions"] for r in F.request_types(s, p)} for p in (prev, last_year))
    by_channel = {(r["channel"], r["type"]): r["sessions"] for r in F.request_types(s, period, ("channel",))}
    now: dict[str, int] = {}
    for (_, t), n in by_channel.items():
        now[t] = now.get(t, 0) + n
    return [{"type": t, "sessions": now.get(t, 0), "share": now.get(t, 0) / sessions if sessions else None,
             "previous": before.get(t, 0), "year_ago": year_ago.get(t, 0), "mom": trend(now.get(t, 0), before.get(t)),
             "yoy": trend(now.get(t, 0), year_ago.get(t)), **{c: by_channel.get((c, t), 0) for c in CHANNELS}}
            for t in REQUEST_TYPES]


def pct(value: float | None, digits: int = 1) -> str:
    """85.3% or — ."""
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def signed(value: float | None) -> str:
    """+12.3% / −4.0% / — (for 同比 and 环比)."""
    return "—" if value is None else f"{'+' if value >= 0 else '−'}{abs(value) * 100:.1f}%"


def seconds(value: float | None) -> str:
    """3分12秒 or — ."""
    return "—" if value is None else f"{int(value // 60)}分{int(value % 60):02d}秒"


TEMPLATE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{{ d.month }} 社保热线智能客服月度分析报告</title>
<style>
body{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:2em auto;max-width:960px;color:#222}
h1{font-size:1.6em}h2{border-bottom:2px solid #2b6cb0;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;width:100%;margin:.6em 0}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}
th{background:#edf2f7}td:first-child,th:first-child{text-align:left}.kpi{display:flex;gap:1em}
.kpi div{flex:1;border:1px solid #ccc;padding:.6em;border-radius:6px}.kpi b{font-size:1.6em;display:block}
.small{color:#666;font-size:.9em}.chart{margin:.6em 0}.chart svg{max-width:100%;height:auto}
table.gaps td{font-size:.85em}table.gaps td:nth-child(2){text-align:left;white-space:nowrap}tr{page-break-inside:avoid}h2{page-break-after:avoid}
@page{size:A4;margin:14mm 12mm}@media print{body{margin:0;max-width:none}}
</style></head><body>
<h1>济南社保智能客服月度分析报告（{{ d.month }}）</h1>
<p class="small">统计期间：{{ d.period }}（按本地时间）。数据来自智能客服会话、人工坐席和电话语音系统，个人信息已脱敏。</p>
{% if d.simulated %}<p id="simulated" style="border:2px solid #c53030;color:#c53030;padding:.5em;font-weight:bold">注意：本报告的数据是开发环境自动生成的模拟数据，仅供演示，不是真实服务数据。</p>{% endif %}
<h2>一、总体情况</h2>
<div class="kpi">
<div>服务量<b id="sessions">{{ d.now.sessions }}</b>环比 {{ signed(d.mom) }}，同比 {{ signed(d.yoy) }}</div>
<div>直接解答率<b id="direct">{{ pct(d.now.direct_answer_rate) }}</b>上月 {{ pct(d.before.direct_answer_rate) }}</div>
<div>转人工率<b id="handoff">{{ pct(d.now.handoff_rate) }}</b>上月 {{ pct(d.before.handoff_rate) }}</div>
<div>满意率<b id="satisfaction">{{ pct(d.now.satisfaction_rate) }}</b>评价率 {{ pct(d.now.rating_response_rate) }}</div>
</div>
<table id="types"><tr><th>诉求类型</th><th>服务量</th><th>占比</th>{% for c in channels.values() %}<th>{{ c }}</th>{% endfor %}<th>上月</th><th>环比</th><th>去年同月</th><th>同比</th></tr>
{% for t in d.types %}<tr><td>{{ t.type }}</td><td>{{ t.sessions }}</td><td>{{ pct(t.share) }}</td>{% for c in channels %}<td>{{ t[c] }}</td>{% endfor %}
<td>{{ t.previous }}</td><td>{{ signed(t.mom) }}</td><td>{{ t.year_ago }}</td><td>{{ signed(t.yoy) }}</td></tr>{% endfor %}</table>
<p class="small">诉求类型按会话中市民的第一个业务问题划分：咨询（业务问题，含未找到答案）、办理（社保卡挂失、制卡进度查询等自助办理）、求助/转人工（直接要求人工）、投诉/举报（表达投诉，或因投诉转人工）、其他（业务范围外、仅寒暄）。</p>
<h2>二、分渠道</h2>
<table><tr><th>渠道</th><th>服务量</th><th>占比</th><th>直接解答率</th><th>转人工率</th><th>放弃率</th></tr>
{% for r in d.channels if r.sessions %}<tr><td>{{ channels.get(r.channel, r.channel) }}</td><td>{{ r.sessions }}</td>
<td>{{ pct(r.sessions / d.now.sessions) }}</td><td>{{ pct(r.direct_answer_rate) }}</td><td>{{ pct(r.handoff_rate) }}</td>
<td>{{ pct(r.abandonment_rate) }}</td></tr>{% endfor %}</table>
<div class="chart">{{ charts.daily | safe }}</div>
<h2>三、近七个月趋势</h2>
<div class="chart">{{ charts.rates | safe }}</div>
<table><tr><th>月份</th><th>服务量</th><th>直接解答率</th><th>转人工率</th><th>满意率</th><th></th></tr>
{% for h in d.history %}<tr><td>{{ h.month }}</td><td>{{ h.sessions }}</td><td>{{ pct(h.direct_answer_rate) }}</td>
<td>{{ pct(h.handoff_rate) }}</td><td>{{ pct(h.satisfaction_rate) }}</td>
<td><svg width="200" height="12"><rect width="{{ (200 * h.sessions / peak) | round | int if peak else 0 }}" height="12" fill="#2b6cb0"/></svg></td></tr>{% endfor %}
</table>
<h2>四、人工服务</h2>
<p>人工坐席（网页）排队 {{ d.now.seat_queued }} 次，平均等待 {{ seconds(d.now.seat_wait_mean) }}，平均处理 {{ seconds(d.now.seat_handle_mean) }}，
排队放弃率 {{ pct(d.now.seat_queue_abandonment_rate) }}，等待超时 {{ d.now.seat_timed_out }} 次（其中预约回电 {{ d.now.seat_callback }} 次）；收到评价 {{ d.now.ratings }} 条（满意 {{ d.now['满意'] }}、基本满意 {{ d.now['基本满意'] }}、不满意 {{ d.now['不满意'] }}）。</p>
<table><tr><th>转人工原因</th><th>次数</th></tr>{% for r in d.reasons %}<tr><td>{{ r.reason or '未注明' }}</td><td>{{ r.count }}</td></tr>{% endfor %}</table>
<h2>五、热点问题前十（环比）</h2>
<table><tr><th>问题类别</th><th>服务量</th><th>占比</th><th>环比</th></tr>
{% for t in d.topics %}<tr><td>{{ t.topic }}</td><td>{{ t.sessions }}</td><td>{{ pct(t.share) }}</td><td>{{ signed(t.mom) }}</td></tr>{% endfor %}</table>
<h2>六、热点预警</h2>
{% if d.alerts %}<table><tr><th>问题类别</th><th>开始时间</th><th>发现时间</th><th>发现时次数 / 通常</th><th>期间合计</th><th>市民问法举例</th></tr>
{% for a in d.alerts %}<tr><td>{{ a.topic }}</td><td>{{ a.started_at.strftime('%m-%d %H:%M') }}</td><td>{{ a.detected_at.strftime('%m-%d %H:%M') }}</td>
<td>{{ a.count }} / {{ '%.1f' % a.expected }}</td><td>{{ a.total_count }}</td><td style="text-align:left">{{ a.examples | join('；') }}</td></tr>{% endfor %}</table>
{% else %}<p>本月未发生热点预警。</p>{% endif %}
<h2>七、重复咨询</h2>
<p>{{ d.repeat.days }} 天内就同一问题再次咨询：<b id="repeat">{{ d.repeat.repeat_sessions }}</b> 次，涉及 {{ d.repeat.repeat_citizens }} 位市民，
重复咨询率 {{ pct(d.repeat.repeat_rate) }}（占有问题类别的会话 {{ d.repeat.sessions }} 次）。
其中网页 {{ d.repeat.channels.web.repeat_sessions }} 次（{{ d.repeat.channels.web.repeat_citizens }} 位市民，{{ pct(d.repeat.channels.web.repeat_rate) }}）；
电话重复来电 <b id="repeat-callers">{{ d.repeat.channels.phone.repeat_sessions }}</b> 次（{{ d.repeat.channels.phone.repeat_citizens }} 位来电人，
{{ pct(d.repeat.channels.phone.repeat_rate) }}）{% if d.repeat.channels.phone.unkeyed %}，另有 {{ d.repeat.channels.phone.unkeyed }} 通电话无来电号码，未计入{% endif %}。来电人按号码的加密标识区分，报告和统计库中没有电话号码。</p>
{% if d.repeat.topics %}<table><tr><th>问题类别</th><th>重复咨询次数</th><th>市民数</th></tr>
{% for r in d.repeat.topics[:10] %}<tr><td>{{ r.topic }}</td><td>{{ r.repeat_sessions }}</td><td>{{ r.citizens }}</td></tr>{% endfor %}</table>{% endif %}
<h2>八、知识缺口（待补充的知识条目）</h2>
<p>未找到答案、被评“没帮助”或答后即转人工的问题共 {{ d.gaps | sum(attribute='volume') + d.gaps_unclustered }} 次，按问法相似度归为 {{ d.gaps | length }} 组，按次数排序（前 15 组）。</p>
<table class="gaps"><tr><th>#</th><th>关键词</th><th>次数</th><th>原因</th><th>市民问法举例（已脱敏）</th><th>最接近的现有条目</th></tr>
{% for g in d.gaps[:15] %}<tr><td>{{ loop.index }}</td><td>{{ g.keywords | join('、') }}</td><td>{{ g.volume }}</td>
<td style="text-align:left">{% for k, n in g.reasons.items() %}{{ reasons[k] }} {{ n }}{% if not loop.last %}<br>{% endif %}{% endfor %}</td>
<td style="text-align:left">{% for text, n in g.examples[:3] %}{{ text }}（{{ n }}）{% if not loop.last %}<br>{% endif %}{% endfor %}</td>
<td style="text-align:left">{% for e in g.nearest %}{{ e.entry_id }} {{ e.question }}{% if not loop.last %}<br>{% endif %}{% else %}—{% endfor %}</td></tr>{% endfor %}</table>
<h2>九、知识库待改进</h2>
<p class="small">只列本月解答 {{ d.min_answers }} 次以上的知识条目。</p>
<table><tr><th>“没帮助”最多的条目</th><th>解答次数</th><th>没帮助率</th><th>答后转人工率</th></tr>
{% for r in d.gaps_unhelpful %}<tr><td>{{ r.entry_id }}</td><td>{{ r.answers }}</td><td>{{ pct(r.unhelpful_rate) }}</td><td>{{ pct(r.handoff_after_rate) }}</td></tr>{% endfor %}</table>
<table><tr><th>答后转人工最多的条目</th><th>解答次数</th><th>答后转人工率</th></tr>
{% for r in d.gaps_handoff %}<tr><td>{{ r.entry_id }}</td><td>{{ r.answers }}</td><td>{{ pct(r.handoff_after_rate) }}</td></tr>{% endfor %}</table>
<table><tr><th>知识库未找到答案的问法</th><th>次数</th></tr>
{% for text, n in d.not_found %}<tr><td>{{ text }}</td><td>{{ n }}</td></tr>{% endfor %}</table>
</body></html>
"""


def render_html(data: dict[str, Any]) -> str:
    """The report page."""
    env = Environment(autoescape=select_autoescape(default=True))
    peak = max((h["sessions"] for h in data["history"]), default=0)
    charts = {
        "daily": stacked_bars([d["day"][5:] for d in data["daily"]], {CHANNELS[c]: [d[c] for d in data["daily"]] for c in CHANNELS},
                              "每日服务量（按渠道）"),
        "rates": rate_lines([h["month"] for h in data["history"]],
                            {"直接解答率": [h["direct_answer_rate"] for h in data["history"]],
                             "转人工率": [h["handoff_rate"] for h in data["history"]],
                             "满意率": [h["satisfaction_rate"] for h in data["history"]]}, "直接解答率、转人工率、满意率（近七个月）"),
    }
    return env.from_string(TEMPLATE).render(d=data, pct=pct, signed=signed, seconds=seconds, channels=CHANNELS, peak=peak,
                                            charts=charts, reasons=REASONS)


def write_report(store: AnalyticsStore, month: str, out_dir: Path, formats: tuple[str, ...] = ("html",),
                 kb: Searcher | None = None) -> dict[str, Path]:
    """Write <out_dir>/<month>.html (and .xlsx, .pdf when asked); returns the paths by format."""
    data = store.call(lambda s: report_data(s, month, kb=kb))
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"html": out_dir / f"{month}.html"}
    html = render_html(data)
    paths["html"].write_text(html, encoding="utf-8")
    if "xlsx" in formats:
        from analytics.report_xlsx import write_xlsx

        paths["xlsx"] = write_xlsx(data, out_dir / f"{month}.xlsx")
    if "pdf" in formats:
        from analytics.report_pdf import write_pdf

        paths["pdf"] = write_pdf(html, out_dir / f"{month}.pdf")
    return paths


def main(argv: list[str] | None = None) -> int:
    """Command line: python -m analytics.report --month YYYY-MM [--out var/reports]."""
    p = argparse.ArgumentParser(prog="python -m analytics.report", description="Write the monthly analysis report (HTML, XLSX, PDF).")
    p.add_argument("--month", required=True, help="YYYY-MM")
    p.add_argument("--out", default=str(ROOT / "var" / "reports"))
    p.add_argument("--formats", default="html,xlsx,pdf", help="comma-separated: html (always), xlsx, pdf")
    args = p.parse_args(argv)
    try:
        settings = settings_for_month(args.month)
    except ValueError as exc:
        print(f"Give --month as YYYY-MM ({exc}).", file=sys.stderr)
        return 2
    from analytics.report_pdf import ChromiumMissingError

    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    try:
        paths = write_report(AnalyticsStore(settings.database_url), args.month, Path(args.out), formats, kb=load_knowledge())
    except ChromiumMissingError as exc:
        print(exc, file=sys.stderr)
        return 1
    for path in paths.values():
        print(f"[report] {path} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
