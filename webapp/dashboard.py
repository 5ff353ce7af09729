"""The supervisors' dashboard (统计看板): the figures of a period, the records behind each, CSV exports (issue 13).

Every number is defined once in analytics.figures (docs/analytics.md "Figures"); a period's counts are read from
the ingest's roll-up (analytics.rollup: the same counts kept per day and month) once the store has one. This module
only picks the period and channel, fills the days and hours nothing happened in, and shapes the
answer. It reads the analytics store and never writes it: "today" is what the last ingest (`make analytics`,
run every few minutes) stored, and the answer says how recent that is (`as_of`).
"""
from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from analytics import figures as F
from analytics import rollup
from analytics.demo import is_simulated
from analytics.store import ChatSession, HandoffRow, RatingRow, Turn
from common.privacy import mask_text

MAX_DAYS = 400  # a year and a little: a longer period is refused (every query scans the period)
CHANNELS = ("web", "phone")
TOP = 10  # topics and entries shown
DRILL_LIMIT, DRILL_MAX = 50, 500
CSV_MAX_ROWS = 20_000
# a period's figures are kept this long: the store changes only when the ingest runs (every few minutes), and a
# supervisor opens the same period again (back from a drill-down, the CSV after the page); past periods change less
CACHE_SECONDS, CACHE_LIVE_SECONDS, CACHE_SIZE = 600, 60, 32
POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="dashboard")  # a dashboard's reads, side by side  # a drill-down exported as CSV: at most this many records
SESSION_ID_MAX = 120  # analytics.store ID


class BadQuery(ValueError):
    """A dashboard request whose parameters cannot be answered; the message is Chinese, for the supervisor."""


@dataclass(frozen=True)
class Query:
    """A period of local days [start, end) and the channel (None: both)."""

    period: F.Period
    channel: str | None


def parse_query(args: Mapping[str, str], today: dt.date) -> Query:
    """from/to (YYYY-MM-DD, both days included; default today) and channel (web, phone or empty)."""
    def day(name: str) -> dt.date:
        value = (args.get(name) or "").strip()
        if not value:
            return today
        try:
            if len(value) != 10:
                raise ValueError(value)
            return dt.date.fromisoformat(value)
        except ValueError:
            raise BadQuery(f"日期格式应为 年-月-日，例如 {today.isoformat()}") from None

    start, last = day("from"), day("to")
    if start > last:
        raise BadQuery("开始日期不能晚于结束日期")
    if (last - start).days + 1 > MAX_DAYS:
        raise BadQuery(f"查询时段最长 {MAX_DAYS} 天，请缩短时段")
    channel = (args.get("channel") or "").strip() or None
    if channel is not None and channel not in CHANNELS:
        raise BadQuery("渠道应为 web（网页）或 phone（电话），留空为全部")
    return Query(F.Period(start, last + dt.timedelta(days=1)), channel)


@dataclass(frozen=True)
class DrillQuery:
    """Which figure's records, narrowed by the filters, and which page: the one after the record `after` (a page key
    from the previous page's `next`), then `offset` records further."""

    figure: str
    filters: dict[str, Any]
    limit: int
    offset: int
    after: list[Any] | None = None


PAGE_KEY_MAX = 300  # characters of an `after` page key (a few values: time, day, id)


def page_key(values: list[Any] | None) -> str | None:
    """A drill-down page key (analytics.figures.drill_down's `next`) as an opaque URL-safe string."""
    if values is None:
        return None
    return base64.urlsafe_b64encode(json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode()).decode().rstrip("=")


def read_page_key(text: str) -> list[Any]:
    """The values of a page key made by `page_key`; BadQuery when it is not one."""
    try:
        if len(text) > PAGE_KEY_MAX:
            raise ValueError(text)
        values = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if not isinstance(values, list):
            raise ValueError(text)
        return values
    except ValueError:  # binascii.Error and JSONDecodeError are ValueErrors
        raise BadQuery("翻页参数无效，请从第一页重新查看") from None


def parse_drill(args: Mapping[str, str], query: Query, max_limit: int | None = None) -> DrillQuery:
    """figure (a name of analytics.figures.DRILLS), topic, entry, reason, day, hour, limit (at most max_limit), offset."""
    figure = (args.get("figure") or "").strip()
    drill = F.DRILLS.get(figure)
    if drill is None:
        raise BadQuery("请指定要查看明细的指标（figure），可选：" + "、".join(F.DRILLS))

    def integer(name: str, default: int, low: int, high: int) -> int:
        value = (args.get(name) or "").strip()
        if not value:
            return default
        if not value.isascii() or not value.isdigit() or not low <= int(value) <= high:
            raise BadQuery(f"参数 {name} 应为 {low} 到 {high} 之间的整数")
        return int(value)

    filters: dict[str, Any] = {"channel": query.channel}
    for name, longest in (("topic", 64), ("entry", 32), ("reason", 200)):
        value = args.get(name)
        if value is not None and value != "":
            if len(value) > longest:
                raise BadQuery(f"参数 {name} 过长")
            filters[name] = value
    if (args.get("day") or "").strip():
        try:
            day = dt.date.fromisoformat(args["day"].strip())
        except ValueError:
            raise BadQuery("日期格式应为 年-月-日") from None
        if not query.period.start <= day < query.period.end:
            raise BadQuery("所选日期不在查询时段内")
        filters["day"] = day.isoformat()
    if (args.get("hour") or "").strip():
        filters["hour"] = integer("hour", 0, 0, 23)
    unknown = [k for k, v in filters.items() if v is not None and k not in drill.filters]
    if unknown:
        raise BadQuery(f"指标“{F.FIGURES[figure].label}”不能按 {'、'.join(unknown)} 筛选")
    after = (args.get("after") or "").strip()
    return DrillQuery(figure, filters, integer("limit", DRILL_LIMIT, 1, max_limit or DRILL_MAX), integer("offset", 0, 0, 10_000_000),
                      read_page_key(after) if after else None)


def _iso(value: Any) -> Any:
    return value.isoformat(timespec="seconds") if isinstance(value, dt.datetime) else value


def _pick(rows: list[dict[str, Any]], channel: str | None) -> list[dict[str, Any]]:
    """The rows of one channel (figures grouped by channel first), or all when no channel was asked for."""
    if channel is None:
        return rows
    return [{k: v for k, v in r.items() if k != "channel"} for r in rows if r.get("channel") == channel]


def _by(channel: str | None, *groups: str) -> tuple[str, ...]:
    # day before channel: the order of the store's covering indexes, so SQLite groups without sorting
    return groups + (("channel",) if channel else ())


# the zero row of each figure function, for a period or a group in which nothing was counted
_NO_SESSIONS = {"sessions": 0, "direct": 0, "handed_off": 0, "unhelpful": 0, "abandoned": 0,
                "direct_answer_rate": None, "handoff_rate": None, "abandonment_rate": None}
_NO_SEAT = {"queued": 0, "claimed": 0, "abandoned": 0, "resolved": 0, "timed_out": 0, "callback": 0, "returned": 0,
            "queue_abandonment_rate": None, "wait_mean": None, "wait_median": None, "wait_p90": None,
            "handle_mean": None, "handle_median": None, "handle_p90": None}
_NO_RATINGS = {"ratings": 0, "满意": 0, "基本满意": 0, "不满意": 0, "surveys": 0, "satisfaction_rate": None,
               "rating_response_rate": None}


def figures(open_session: Callable[[], Session], q: Query, reader: ModuleType = rollup) -> dict[str, Any]:
    """The dashboard of a period and channel, every number as analytics.figures defines it.

    reader: analytics.rollup (the ingest's counts per day: a year reads a few thousand rows) or analytics.figures
    (the detail rows: a store whose roll-up is not built yet); both give the same rows. Waiting and handling times
    are read from the hand-off rows either way (their medians need every value). The independent reads run side by
    side, each in its own database session (SQLite readers do not wait for each other in WAL mode). Sessions are
    read per day and per hour; the total is the days summed up by F.sum_session_figures (the same counts and rates as
    session_figures gives).
    """
    period, ch = q.period, q.channel

    def read(fn: Callable[[Session], Any]) -> Any:
        with open_session() as s:
            return fn(s)

    def sessions(group: str) -> Callable[[Session], list[dict[str, Any]]]:
        return lambda s: _pick(reader.session_figures(s, period, _by(ch, group)), ch)

    def seat_and_ratings(s: Session) -> tuple:
        seat, seat_days = F.seat_figures_and_days(s, period, _by(ch))  # the hand-off rows: medians need every value

        def first(rows: list[dict[str, Any]], zero: dict[str, Any]) -> dict[str, Any]:
            rows = _pick(rows, ch)
            return {**zero, **(rows[0] if rows else {})}

        def per_day(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
            return {r["day"]: r for r in _pick(rows, ch)}

        return (first(seat, _NO_SEAT), first(reader.rating_figures(s, period, _by(ch)), _NO_RATINGS), per_day(seat_days),
                per_day(reader.rating_figures(s, period, _by(ch, "day"))), _pick(reader.handoff_reasons(s, period, _by(ch)), ch))

    def worst_entries(s: Session) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        entries = _pick(reader.answer_figures(s, period, "entry_id", _by(ch)), ch)
        worst = sorted((e for e in entries if e["unhelpful"] + e["handoff_after"] > 0),
                       key=lambda e: (-(e["unhelpful"] + e["handoff_after"]), -e["answers"], e["entry_id"]))[:TOP]
        topic_of = reader.entry_topics(s, [e["entry_id"] for e in worst])
        for e in worst:
            e["topic"] = topic_of.get(e["entry_id"], "")
        return entries, worst

    jobs = [POOL.submit(read, fn) for fn in (sessions("day"), sessions("hour"), worst_entries, seat_and_ratings,
                                             lambda s: _pick(reader.topic_sessions(s, period, _by(ch)), ch)[:TOP])]
    per_day, per_hour, (entries, worst), (seat, ratings, day_seat, day_ratings, reasons), topics = [j.result() for j in jobs]
    total = (F.sum_session_figures(per_day) or [dict(_NO_SESSIONS)])[0]
    day_sessions = {r["day"]: r for r in per_day}
    hour_sessions = {r["hour"]: r for r in per_hour}
    days = []
    for i in range((period.end - period.start).days):
        day = (period.start + dt.timedelta(days=i)).isoformat()
        days.append({"day": day, **_day_row(day_sessions.get(day), day_seat.get(day), day_ratings.get(day))})
    for t in topics:
        t["share"] = F.rate(t["sessions"], total["sessions"])
    return {
        "totals": _totals(total, seat, ratings, entries),
        # the store keeps reasons masked; masking again is a no-op, so the shown reason is also the drill-down filter
        "handoff_reasons": [{"reason": mask_text(r["reason"]), "count": r["count"]} for r in reasons],
        "days": days,
        "hours": [{"hour": h, **{**_NO_SESSIONS, **{k: v for k, v in hour_sessions.get(h, {}).items() if k != "hour"}}}
                  for h in range(24)],
        "topics": topics, "worst_entries": worst,
    }


def _totals(sessions: dict[str, Any], seat: dict[str, Any], ratings: dict[str, Any],
            entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The period's headline figures in one flat dict (the seat's counts prefixed queue_, the answers' answer_)."""
    answers = {k: sum(e[k] for e in entries) for k in ("answers", "unhelpful", "handoff_after")}
    return {**sessions, **{f"queue_{k}" if k in ("abandoned", "timed_out", "callback", "returned") else k: v
                           for k, v in seat.items()}, **ratings,
            "answers": answers["answers"], "answer_unhelpful": answers["unhelpful"],
            "answer_handoff_after": answers["handoff_after"],
            "unhelpful_rate": F.rate(answers["unhelpful"], answers["answers"]),
            "handoff_after_rate": F.rate(answers["handoff_after"], answers["answers"])}


def _day_row(sessions: dict | None, seat: dict | None, ratings: dict | None) -> dict[str, Any]:
    """One day's figures (zeros and None for what did not happen that day)."""
    s, q, r = {**_NO_SESSIONS, **(sessions or {})}, {**_NO_SEAT, **(seat or {})}, {**_NO_RATINGS, **(ratings or {})}
    return {**s, "queued": q["queued"], "queue_abandoned": q["abandoned"], "queue_abandonment_rate": q["queue_abandonment_rate"],
            "wait_mean": q["wait_mean"], "handle_mean": q["handle_mean"], "ratings": r["ratings"],
            "satisfaction_rate": r["satisfaction_rate"], "surveys": r["surveys"], "rating_response_rate": r["rating_response_rate"]}


def drill_rows(s: Session, q: Query, d: DrillQuery) -> dict[str, Any]:
    """One page of the records behind a figure (analytics.figures.drill_down), texts masked on the way out."""
    try:
        found = F.drill_down(s, d.figure, q.period, limit=d.limit, offset=d.offset, after=d.after, **d.filters)
    except ValueError as e:  # parse_drill checks the filters; a page key of another list ends here
        raise BadQuery("翻页参数无效，请从第一页重新查看" if d.after is not None else "该指标不能这样筛选") from e
    rows = [{k: (mask_text(v) if k in ("topic", "answer_topic", "reason", "handoff_reason", "question") and isinstance(v, str)
                 else _iso(v)) for k, v in r.items()} for r in found["rows"]]
    return {"figure": d.figure, "label": F.FIGURES[d.figure].label, "total": found["total"], "limit": d.limit,
            "offset": d.offset, "rows": rows, "next": page_key(found["next"])}


def session_detail(s: Session, session_id: str) -> dict[str, Any] | None:
    """A session of the store with its turns (masked in the store, masked again here), hand-offs and ratings."""
    if not session_id or len(session_id) > SESSION_ID_MAX:
        return None
    row = s.get(ChatSession, session_id)
    if row is None:
        return None
    turns = s.scalars(select(Turn).where(Turn.session_id == session_id).order_by(Turn.ts, Turn.id)).all()
    handoffs = s.scalars(select(HandoffRow).where(HandoffRow.session_id == session_id).order_by(HandoffRow.queued_at)).all()
    ratings = s.scalars(select(RatingRow).where(RatingRow.session_id == session_id).order_by(RatingRow.at)).all()
    return {
        "session": {"id": row.id, "channel": row.channel, "started_at": _iso(row.started_at), "ended_at": _iso(row.ended_at),
                    "topic": mask_text(row.topic or ""), "outcome": row.outcome, "abandoned": row.abandoned,
                    "handed_off": row.handed_off, "handoff_reason": mask_text(row.handoff_reason)},
        "turns": [{"role": t.role, "at": _iso(t.at), "text": mask_text(t.text), "intent": t.intent, "band": t.band,
                   "entry_id": t.entry_id, "topic": mask_text(t.topic or "")} for t in turns],
        "handoffs": [{"queue": h.queue, "reason": mask_text(h.reason), "status": h.status, "wait_seconds": h.wait_seconds,
                      "handle_seconds": h.handle_seconds} for h in handoffs],
        "ratings": [{"score": r.score, "comment": mask_text(r.comment)} for r in ratings],
    }


# --- CSV (Excel opens UTF-8 with a byte-order mark as Chinese) -----------------------------------------------------

def _cell(value: Any) -> Any:
    """A CSV cell: numbers as they are, text masked and never read by a spreadsheet as a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, (int, float)):
        return round(value, 4) if isinstance(value, float) else value
    text = mask_text(str(_iso(value)))
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(header: list[str], rows: list[list[Any]]) -> bytes:
    """UTF-8 CSV with a BOM and CRLF line ends."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(header)
    w.writerows([_cell(v) for v in row] for row in rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


DAY_COLUMNS = [("day", "日期"), ("sessions", "服务量"), ("direct", "直接解答"), ("direct_answer_rate", "直接解答率"),
               ("handed_off", "转人工"), ("handoff_rate", "转人工率"), ("abandoned", "放弃"), ("abandonment_rate", "放弃率"),
               ("queued", "人工排队"), ("queue_abandoned", "排队放弃"), ("queue_abandonment_rate", "排队放弃率"),
               ("wait_mean", "平均等待秒"), ("handle_mean", "平均处理秒"), ("ratings", "评价数"),
               ("satisfaction_rate", "满意率"), ("surveys", "邀请评价"), ("rating_response_rate", "评价率")]


def days_csv(data: dict[str, Any]) -> bytes:
    """The figures per day of a dashboard answer, and the period's total (rates as fractions)."""
    t = data["totals"]
    total = {**t, "day": "合计", "queue_abandoned": t["queue_abandoned"], "wait_mean": t["wait_mean"],
             "handle_mean": t["handle_mean"]}
    return to_csv([label for _, label in DAY_COLUMNS], [[d.get(k) for k, _ in DAY_COLUMNS] for d in [*data["days"], total]])


DRILL_COLUMNS = [("session_id", "会话"), ("channel", "渠道"), ("at", "时间"), ("started_at", "会话开始"), ("topic", "会话主题"),
                 ("outcome", "结果"), ("abandoned", "未答复追问"), ("handoff_reason", "转人工原因"), ("queue", "队列"),
                 ("status", "人工状态"), ("wait_seconds", "等待秒"), ("handle_seconds", "处理秒"), ("score", "评价"),
                 ("entry_id", "知识条目"), ("answer_topic", "条目类别"), ("feedback", "反馈"), ("handoff_after", "答后转人工"),
                 ("question", "市民问题")]


def drill_csv(data: dict[str, Any]) -> bytes:
    """A drill-down list: the columns its records have, with Chinese headers."""
    present = [(k, label) for k, label in DRILL_COLUMNS if any(k in r for r in data["rows"])] or DRILL_COLUMNS[:6]
    return to_csv([label for _, label in present], [[r.get(k) for k, _ in present] for r in data["rows"]])


class Dashboard:
    """Answers the dashboard's questions from the analytics store (None while analytics has never run)."""

    def __init__(self, engine: Callable[[], Engine | None], zone: ZoneInfo, cache: bool = True) -> None:
        self._engine, self.zone, self._use_cache = engine, zone, cache
        self._ready = False
        self._cache: dict[tuple, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def today(self) -> dt.date:
        """The centre's local date."""
        return dt.datetime.now(self.zone).date()

    def _session(self) -> Session | None:
        engine = self._engine()
        if engine is None:
            return None
        if not self._ready:  # the tables are made by analytics' first run; until then there is nothing to show
            if not inspect(engine).has_table(ChatSession.__tablename__):
                return None
            self._ready = True
        return Session(engine)

    def figures(self, q: Query) -> dict[str, Any]:
        """The figures of the period, with when the store last saw a session (`as_of`); kept a while (CACHE_SECONDS)."""
        key, now = (q.period.start, q.period.end, q.channel), time.monotonic()
        live = q.period.end > self.today()
        with self._lock:
            hit = self._cache.get(key) if self._use_cache else None
        if hit and now - hit[0] < (CACHE_LIVE_SECONDS if live else CACHE_SECONDS):
            return hit[1]
        answer = self._figures(q)
        if answer["store"] and self._use_cache:
            with self._lock:
                self._cache[key] = (now, answer)
                for old in sorted(self._cache, key=lambda k: self._cache[k][0])[:-CACHE_SIZE]:
                    del self._cache[old]
        return answer

    def _figures(self, q: Query) -> dict[str, Any]:
        head = {"from": q.period.start.isoformat(), "to": (q.period.end - dt.timedelta(days=1)).isoformat(),
                "channel": q.channel or "", "live": q.period.end > self.today(),
                "labels": {f.name: f.label for f in F.FIGURES.values()}}
        s = self._session()
        if s is None:
            return {**head, "store": False, "simulated": False, "as_of": None, **figures_of_nothing(q)}
        with s:
            as_of = s.scalar(select(func.max(ChatSession.started_at)))
            simulated = is_simulated(s)  # the demo month (make analytics-demo): its figures are not real
            reader = rollup if rollup.ready(s) else F  # a store from before the roll-up: until its next ingest
        return {**head, "store": True, "simulated": simulated, "as_of": _iso(as_of),
                **figures(lambda: Session(self._engine()), q, reader)}

    def drill(self, q: Query, d: DrillQuery) -> dict[str, Any]:
        """One page of the records behind a figure."""
        s = self._session()
        if s is None:
            return {"figure": d.figure, "label": F.FIGURES[d.figure].label, "total": 0, "limit": d.limit,
                    "offset": d.offset, "rows": [], "next": None}
        with s:
            return drill_rows(s, q, d)

    def session(self, session_id: str) -> dict[str, Any] | None:
        """A session's masked turns, or None."""
        s = self._session()
        if s is None:
            return None
        with s:
            return session_detail(s, session_id)


def figures_of_nothing(q: Query) -> dict[str, Any]:
    """The dashboard of a store that does not exist yet: zeros, and rates of None."""
    n = (q.period.end - q.period.start).days
    return {"totals": _totals(_NO_SESSIONS, _NO_SEAT, _NO_RATINGS, []),
            "handoff_reasons": [], "hours": [{"hour": h, **_NO_SESSIONS} for h in range(24)], "topics": [],
            "worst_entries": [],
            "days": [{"day": (q.period.start + dt.timedelta(days=i)).isoformat(), **_day_row(None, None, None)}
                     for i in range(n)]}
