"""The monthly report as an Excel workbook (openpyxl): one sheet per section, numbers as numbers.

Rates are stored as fractions with a percent format (0.853 shown as 85.3%), 同比/环比 as relative changes in the
same way, times in seconds; a figure that could not be computed (a rate over nothing) is an empty cell.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from analytics.gaps import REASONS
from analytics.report import CHANNELS, trend

PERCENT, INTEGER, DECIMAL = "0.0%", "0", "0.0"
HEADER_FILL = PatternFill("solid", fgColor="EDF2F7")


def _sheet(wb: Workbook, title: str, header: list[str], rows: list[list[Any]], formats: dict[int, str],
           widths: dict[int, int] | None = None) -> Worksheet:
    """A sheet with a bold header row, the rows, number formats per column (0-based) and column widths."""
    ws = wb.create_sheet(title)
    ws.append(header)
    for cell in ws[1]:
        cell.font, cell.fill = Font(bold=True), HEADER_FILL
    for row in rows:
        ws.append(row)
    for col, fmt in formats.items():
        for (cell,) in ws.iter_rows(min_row=2, min_col=col + 1, max_col=col + 1):
            cell.number_format = fmt
    for col in range(len(header)):
        ws.column_dimensions[get_column_letter(col + 1)].width = (widths or {}).get(col, 14)
    ws.freeze_panes = "A2"
    return ws


def write_xlsx(d: dict[str, Any], path: Path) -> Path:
    """Write the report data (analytics.report.report_data) as a workbook at path."""
    wb = Workbook()
    wb.remove(wb.active)
    now, before, year_ago = d["now"], d["before"], d["year_ago"]
    summary = [("服务量", "sessions", INTEGER), ("直接解答率", "direct_answer_rate", PERCENT), ("转人工率", "handoff_rate", PERCENT),
               ("放弃率", "abandonment_rate", PERCENT), ("满意率", "satisfaction_rate", PERCENT),
               ("评价率", "rating_response_rate", PERCENT), ("人工排队次数（网页）", "seat_queued", INTEGER),
               ("排队放弃率", "seat_queue_abandonment_rate", PERCENT), ("平均等待时长（秒）", "seat_wait_mean", DECIMAL),
               ("平均处理时长（秒）", "seat_handle_mean", DECIMAL), ("评价条数", "ratings", INTEGER)]
    ws = _sheet(wb, "汇总", ["指标", "本月", "上月", "去年同月", "环比", "同比"],
                [[label, now.get(key), before.get(key), year_ago.get(key), trend(now.get(key), before.get(key)),
                  trend(now.get(key), year_ago.get(key))] for label, key, _ in summary], {4: PERCENT, 5: PERCENT}, {0: 22})
    for r, (_, _, fmt) in enumerate(summary, start=2):
        for col in (2, 3, 4):
            ws.cell(r, col).number_format = fmt
    ws.append([])
    ws.append([f"统计期间：{d['period']}（本地时间）；环比、同比为相对变化；个人信息已脱敏。"])
    if d.get("simulated"):
        ws.append(["注意：本报告的数据是开发环境自动生成的模拟数据，仅供演示，不是真实服务数据。"])
        ws.cell(ws.max_row, 1).font = Font(bold=True, color="C53030")

    ratings = {r["channel"]: r for r in d["ratings_by_channel"]}
    _sheet(wb, "分渠道", ["渠道", "服务量", "占比", "直接解答率", "转人工率", "放弃率", "满意率"],
           [[CHANNELS.get(r["channel"], r["channel"]), r["sessions"], r["sessions"] / now["sessions"] if now["sessions"] else None,
             r["direct_answer_rate"], r["handoff_rate"], r["abandonment_rate"], ratings.get(r["channel"], {}).get("satisfaction_rate")]
            for r in d["channels"] if r["sessions"]], {1: INTEGER, 2: PERCENT, 3: PERCENT, 4: PERCENT, 5: PERCENT, 6: PERCENT})
    _sheet(wb, "分诉求类型", ["诉求类型", "服务量", "占比", *CHANNELS.values(), "上月", "环比", "去年同月", "同比"],
           [[t["type"], t["sessions"], t["share"], *(t[c] for c in CHANNELS), t["previous"], t["mom"], t["year_ago"], t["yoy"]]
            for t in d["types"]],
           {1: INTEGER, 2: PERCENT, **{3 + i: INTEGER for i in range(len(CHANNELS))}, 3 + len(CHANNELS): INTEGER,
            4 + len(CHANNELS): PERCENT, 5 + len(CHANNELS): INTEGER, 6 + len(CHANNELS): PERCENT})
    _sheet(wb, "每日服务量", ["日期", *CHANNELS.values(), "合计"],
           [[r["day"], *(r[c] for c in CHANNELS), sum(r[c] for c in CHANNELS)] for r in d["daily"]],
           {i: INTEGER for i in range(1, len(CHANNELS) + 2)})
    _sheet(wb, "近七个月趋势", ["月份", "服务量", "直接解答率", "转人工率", "满意率"],
           [[h["month"], h["sessions"], h["direct_answer_rate"], h["handoff_rate"], h["satisfaction_rate"]] for h in d["history"]],
           {1: INTEGER, 2: PERCENT, 3: PERCENT, 4: PERCENT})
    answers = d["answers_by_topic"]
    _sheet(wb, "分类别", ["问题类别", "服务量", "占比", "解答次数", "没帮助率", "答后转人工率"],
           [[r["topic"], r["sessions"], r["sessions"] / now["sessions"] if now["sessions"] else None,
             answers.get(r["topic"], {}).get("answers", 0), answers.get(r["topic"], {}).get("unhelpful_rate"),
             answers.get(r["topic"], {}).get("handoff_after_rate")] for r in d["topics_all"]],
           {1: INTEGER, 2: PERCENT, 3: INTEGER, 4: PERCENT, 5: PERCENT}, {0: 28})
    _sheet(wb, "热点问题前十", ["排名", "问题类别", "服务量", "占比", "环比"],
           [[i, t["topic"], t["sessions"], t["share"], t["mom"]] for i, t in enumerate(d["topics"], 1)],
           {0: INTEGER, 2: INTEGER, 3: PERCENT, 4: PERCENT}, {1: 28})
    _sheet(wb, "转人工原因", ["原因", "次数"], [[r["reason"] or "未注明", r["count"]] for r in d["reasons"]], {1: INTEGER}, {0: 28})
    _sheet(wb, "热点预警", ["问题类别", "开始时间", "发现时间", "发现时次数", "通常次数", "期间合计", "市民问法举例"],
           [[a["topic"], a["started_at"], a["detected_at"], a["count"], a["expected"], a["total_count"], "；".join(a["examples"])]
            for a in d["alerts"]], {1: "yyyy-mm-dd hh:mm", 2: "yyyy-mm-dd hh:mm", 3: INTEGER, 4: DECIMAL, 5: INTEGER},
           {0: 24, 1: 18, 2: 18, 6: 60})
    rep = d["repeat"]
    ws = _sheet(wb, "重复咨询", ["问题类别", "重复咨询次数", "市民数"],
                [[r["topic"], r["repeat_sessions"], r["citizens"]] for r in rep["topics"]], {1: INTEGER, 2: INTEGER}, {0: 28})
    ws.append([])
    web, phone = rep["channels"]["web"], rep["channels"]["phone"]
    for label, value, fmt in (("重复咨询次数（网页）", web["repeat_sessions"], INTEGER), ("涉及市民数", web["repeat_citizens"], INTEGER),
                              ("网页有问题类别的会话", web["sessions"], INTEGER), ("重复咨询率", web["repeat_rate"], PERCENT),
                              ("重复来电次数（电话）", phone["repeat_sessions"], INTEGER), ("涉及来电人数", phone["repeat_citizens"], INTEGER),
                              ("有来电号码的电话会话", phone["sessions"], INTEGER), ("重复来电率", phone["repeat_rate"], PERCENT),
                              ("无来电号码未计入的电话", phone["unkeyed"], INTEGER),
                              ("合计重复咨询次数", rep["repeat_sessions"], INTEGER), ("合计重复咨询率", rep["repeat_rate"], PERCENT),
                              ("间隔天数上限", rep["days"], INTEGER)):
        ws.append([label, value])
        ws.cell(ws.max_row, 2).number_format = fmt
    ws.append(["来电人按号码的加密标识区分，表中没有电话号码。"])
    rows = []
    for i, g in enumerate(d["gaps"], 1):
        rows.append([i, "、".join(g["keywords"]), g["volume"], g["distinct"], *(g["reasons"].get(k, 0) for k in REASONS),
                     "\n".join(f"{t}（{n}）" for t, n in g["examples"]),
                     "\n".join(f"{e} ×{n}" for e, n in g["answered"]),
                     "\n".join(f"{e['entry_id']} {e['question']}" for e in g["nearest"])])
    ws = _sheet(wb, "知识缺口", ["排名", "关键词", "次数", "问法数", *REASONS.values(), "市民问法举例（已脱敏）", "答过的条目", "最接近的现有条目"],
                rows, {0: INTEGER, 2: INTEGER, 3: INTEGER, 4: INTEGER, 5: INTEGER, 6: INTEGER}, {1: 20, 7: 60, 8: 18, 9: 50})
    for row in ws.iter_rows(min_row=2, min_col=8, max_col=10):
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path
