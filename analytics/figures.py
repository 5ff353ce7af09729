"""The supervision figures, each defined once here (and in words in docs/analytics.md).

Every function takes a period of local days [start, end) and optional grouping columns out of
`channel`, `month`, `day`, `hour` (and `weekday` for sessions), and returns one dict per group.
A rate whose denominator is 0 is None (shown as "—"), never 0.
"""
from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, or_, select, tuple_
from sqlalchemy.orm import Session

from analytics.store import CallRow, ChatSession, HandoffRow, KnowledgeAnswer, RatingRow, Turn
from analytics.topics import COMPLAINT_INTENTS, REQUEST_TYPES, area, request_type

SATISFIED = ("满意", "基本满意")
GROUPS = ("channel", "month", "day", "hour")


@dataclass(frozen=True)
class Figure:
    """One figure: its code name, the Chinese label shown to supervisors, its unit and its definition."""

    name: str
    label: str
    unit: str
    definition: str


FIGURES: dict[str, Figure] = {f.name: f for f in (
    Figure("sessions", "服务量", "次", "sessions with at least one citizen message, counted on the day the session started"),
    Figure("direct_answer_rate", "直接解答率", "%",
           "sessions that ended without a hand-off request and without 没帮助 feedback ÷ sessions"),
    Figure("handoff_rate", "转人工率", "%",
           "sessions with a hand-off request (the bot's hand-off reply, a web app hand-off, or a transferred call) ÷ sessions"),
    Figure("handoff_reasons", "转人工原因", "次", "hand-off requests by the reason recorded with them (first per session)"),
    Figure("abandonment_rate", "放弃率", "%",
           "sessions whose last bot message asked the citizen something (a question back, suggestions, a form question) "
           "that was never answered, without a hand-off ÷ sessions"),
    Figure("queue_abandonment_rate", "排队放弃率", "%",
           "web hand-offs never claimed by a seat because the citizen left (the page closed, 回到机器人, or no claim "
           "within ANALYTICS_ABANDON_MINUTES or before the citizen came back) ÷ web hand-offs queued"),
    Figure("satisfaction_rate", "满意率", "%", "ratings 满意 or 基本满意 ÷ ratings given"),
    Figure("rating_response_rate", "评价率", "%", "ratings given ÷ web hand-offs resolved (each resolved hand-off asks for a rating)"),
    Figure("wait_seconds", "平均等待时长", "秒", "claimed_at − queued_at of web hand-offs claimed by a seat (mean, median, 90th percentile)"),
    Figure("handle_seconds", "平均处理时长", "秒", "resolved_at − claimed_at of web hand-offs resolved by a seat (mean, median, 90th percentile)"),
    Figure("answers", "解答次数", "次", "knowledge answers given (bands confident and chosen), per topic or per entry"),
    Figure("unhelpful_rate", "没帮助率", "%", "answers followed by 没帮助 before the next answer ÷ answers"),
    Figure("handoff_after_rate", "答后转人工率", "%", "answers followed by a hand-off request before the next answer ÷ answers"),
    Figure("request_types", "诉求类型", "次",
           "sessions by what the citizen came for: 咨询 (a business question), 办理 (card self-service), 求助/转人工 "
           "(a person asked for straight away), 投诉/举报 (the complain intent, or a hand-off for a complaint), 其他"),
    Figure("repeat_rate", "重复咨询率", "%",
           "sessions with a topic whose citizen (web: the same chat conversation; phone: the same caller key) had a session "
           "on the same topic in the 7 days before ÷ sessions with a topic (phone calls without a caller number left out)"),
)}
REPEAT_DAYS = 7


@dataclass(frozen=True)
class Period:
    """Local days [start, end)."""

    start: dt.date
    end: dt.date

    @classmethod
    def month(cls, month: str) -> Period:
        """The calendar month YYYY-MM."""
        first = dt.date.fromisoformat(month + "-01")
        nxt = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        return cls(first, nxt)

    @classmethod
    def days(cls, start: dt.date, days: int) -> Period:
        """`days` days from start."""
        return cls(start, start + dt.timedelta(days=days))

    def label(self) -> str:
        """YYYY-MM-DD – YYYY-MM-DD (last day included)."""
        return f"{self.start.isoformat()} – {(self.end - dt.timedelta(days=1)).isoformat()}"


def rate(numerator: float, denominator: float) -> float | None:
    """numerator ÷ denominator, or None when nothing was counted."""
    return numerator / denominator if denominator else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..1) of the values, None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def group_columns(model: Any, by: Sequence[str], allowed: Sequence[str] = GROUPS) -> list:
    """The model's columns named in `by`, labelled by their names (ValueError for a column not allowed)."""
    unknown = [b for b in by if b not in allowed]
    if unknown:
        raise ValueError(f"cannot group by {', '.join(unknown)}; use {', '.join(allowed)}")
    return [getattr(model, b).label(b) for b in by]


def in_period(model: Any, period: Period) -> Any:
    """The model's rows of the period's days."""
    return and_(model.day >= period.start.isoformat(), model.day < period.end.isoformat())


def count_if(condition: Any) -> Any:
    """SQL: how many of the group's rows meet the condition (0, not NULL, for none)."""
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


# The sessions each session figure counts, one condition each, shared by the figure and its drill-down
# (drill_down below), so the list a supervisor opens is exactly the set the figure counted.
COUNTED = ChatSession.citizen_turns > 0  # a session the figures count: the citizen said something
DIRECT = ChatSession.outcome == "direct"
HANDED_OFF = ChatSession.handed_off.is_(True)
UNHELPFUL = ChatSession.unhelpful.is_(True)
ABANDONED = ChatSession.abandoned.is_(True)


def session_figures(s: Session, period: Period, by: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Volume, direct-answer, hand-off and abandonment rates of the sessions started in the period."""
    cols = group_columns(ChatSession, by, GROUPS + ("weekday",))
    stmt = (select(*cols, func.count().label("sessions"),
                   count_if(DIRECT).label("direct"),
                   count_if(HANDED_OFF).label("handed_off"),
                   count_if(UNHELPFUL).label("unhelpful"),
                   count_if(ABANDONED).label("abandoned"))
            .where(in_period(ChatSession, period), COUNTED).group_by(*cols).order_by(*cols))
    return [session_rates(dict(row)) for row in s.execute(stmt).mappings()]


SESSION_COUNTS = ("sessions", "direct", "handed_off", "unhelpful", "abandoned")


def session_rates(r: dict[str, Any]) -> dict[str, Any]:
    """A session_figures row's rates from its counts (the one place they are divided)."""
    r["direct_answer_rate"] = rate(r["direct"], r["sessions"])
    r["handoff_rate"] = rate(r["handed_off"], r["sessions"])
    r["abandonment_rate"] = rate(r["abandoned"], r["sessions"])
    return r


def sum_session_figures(rows: Sequence[dict[str, Any]], by: Sequence[str] = ()) -> list[dict[str, Any]]:
    """session_figures rows of a finer grouping summed up to `by` (rows by day, channel and hour → days, hours, the
    total): one scan of the store answers several groupings, each as session_figures(by) gives it."""
    acc: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        key = tuple(r[b] for b in by)
        a = acc.setdefault(key, {**dict(zip(by, key, strict=True)), **dict.fromkeys(SESSION_COUNTS, 0)})
        for k in SESSION_COUNTS:
            a[k] += r[k]
    return [session_rates(acc[k]) for k in sorted(acc)]


def handoff_reasons(s: Session, period: Period, by: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Sessions with a hand-off request, by the reason recorded (most frequent first)."""
    cols = group_columns(ChatSession, by)
    stmt = (select(*cols, ChatSession.handoff_reason.label("reason"), func.count().label("count"))
            .where(in_period(ChatSession, period), COUNTED, HANDED_OFF)
            .group_by(*cols, ChatSession.handoff_reason).order_by(*cols, func.count().desc(), ChatSession.handoff_reason))
    return [dict(r) for r in s.execute(stmt).mappings()]


# The web hand-offs the seat figures count (queued in the period; off-hours messages are no queue), and those
# the citizen gave up on before a seat came: left the page, or went back to the bot (the web app's outcomes)
WEB_QUEUED = and_(HandoffRow.channel == "web", HandoffRow.status != "message")
QUEUE_ABANDONED = and_(HandoffRow.status.in_(("abandoned", "returned")), HandoffRow.wait_seconds.is_(None))
CLAIMED = HandoffRow.wait_seconds.is_not(None)  # the waits counted
HANDLED = HandoffRow.handle_seconds.is_not(None)  # the handling times counted
SURVEYED = HandoffRow.status == "resolved"  # each resolved web hand-off asks for a rating


# the order the seat figures sum the times in: the covering index's, so no sort, and the same in every grouping (a
# mean of floats depends on the order of its terms; this one is fixed, so a total and its days agree to the last bit;
# rows equal in all of these columns carry the same values, so their own order does not matter)
SEAT_ORDER = (HandoffRow.day, HandoffRow.channel, HandoffRow.status, HandoffRow.wait_seconds, HandoffRow.handle_seconds,
              HandoffRow.hour)


def _seat_rows(s: Session, period: Period, by: Sequence[str]) -> list:
    """(*by, status, wait, handle, gave up) of the web hand-offs queued in the period, in SEAT_ORDER."""
    stmt = (select(*group_columns(HandoffRow, by), HandoffRow.status, HandoffRow.wait_seconds, HandoffRow.handle_seconds,
                   case((QUEUE_ABANDONED, 1), else_=0))
            .where(in_period(HandoffRow, period), WEB_QUEUED).order_by(*SEAT_ORDER))
    return s.connection().execute(stmt).all()  # plain rows: a year holds ~26,000


def _seat_row(group: dict[str, Any], rows: list) -> dict[str, Any]:
    """One group's seat figures from its (status, wait, handle, gave up) rows."""
    waits = [w for _, w, _, _ in rows if w is not None]
    handles = [h for _, _, h, _ in rows if h is not None]
    abandoned = sum(gave_up for *_, gave_up in rows)
    return {**group, "queued": len(rows), "claimed": len(waits), "abandoned": abandoned,
            "resolved": sum(1 for st, *_ in rows if st == "resolved"),
            "timed_out": sum(1 for st, *_ in rows if st in ("timed_out", "callback")),
            "callback": sum(1 for st, *_ in rows if st == "callback"),
            "returned": sum(1 for st, *_ in rows if st == "returned"),
            "queue_abandonment_rate": rate(abandoned, len(rows)),
            "wait_mean": rate(sum(waits), len(waits)), "wait_median": percentile(waits, 0.5), "wait_p90": percentile(waits, 0.9),
            "handle_mean": rate(sum(handles), len(handles)), "handle_median": percentile(handles, 0.5),
            "handle_p90": percentile(handles, 0.9)}


def seat_figures(s: Session, period: Period, by: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Web hand-offs queued in the period: queue abandonment, waiting and handling time at the seat."""
    if _aggregates_in_database(s):
        return seat_figures_aggregated(s, period, by)
    return seat_figures_from_rows(s, period, by)


def seat_figures_from_rows(s: Session, period: Period, by: Sequence[str] = ()) -> list[dict[str, Any]]:
    """seat_figures computed here from the hand-off rows (`_seat_row`: the definition, and the way SQLite runs it)."""
    groups: dict[tuple, list] = defaultdict(list)
    for row in _seat_rows(s, period, by):
        groups[tuple(row[: len(by)])].append(row[len(by):])
    return [_seat_row(dict(zip(by, key, strict=True)), groups[key]) for key in sorted(groups)]


def _aggregates_in_database(s: Session) -> bool:
    """Whether the seat figures are aggregated by the database (PostgreSQL) rather than from its rows here (SQLite,
    which has no percentile: its rows are read in-process, without a socket, in a few tens of milliseconds a year)."""
    return s.get_bind().dialect.name == "postgresql"


def seat_figures_aggregated(s: Session, period: Period, by: Sequence[str] = ()) -> list[dict[str, Any]]:
    """seat_figures in one GROUP BY on PostgreSQL, so a year's ~26,000 hand-off rows do not cross the socket. The same
    numbers as `_seat_row`, to the last bit: percentile_disc(q) takes the row at ceil(q·n) in double precision, which
    is `percentile`'s nearest rank, and avg(… ORDER BY SEAT_ORDER) adds the same terms in the same order as its mean
    (PostgreSQL's float8 avg is the plain running sum ÷ n; an aggregate with ORDER BY is never run in parallel)."""
    from sqlalchemy.dialects.postgresql import aggregate_order_by

    cols = group_columns(HandoffRow, by)

    def times(column: Any, name: str) -> list:
        return [func.avg(aggregate_order_by(column, *SEAT_ORDER)).label(f"{name}_mean"),
                func.percentile_disc(0.5).within_group(column).label(f"{name}_median"),
                func.percentile_disc(0.9).within_group(column).label(f"{name}_p90")]

    status = HandoffRow.status
    stmt = (select(*cols, func.count().label("queued"), func.count(HandoffRow.wait_seconds).label("claimed"),
                   count_if(QUEUE_ABANDONED).label("abandoned"), count_if(status == "resolved").label("resolved"),
                   count_if(status.in_(("timed_out", "callback"))).label("timed_out"),
                   count_if(status == "callback").label("callback"), count_if(status == "returned").label("returned"),
                   *times(HandoffRow.wait_seconds, "wait"), *times(HandoffRow.handle_seconds, "handle"))
            .where(in_period(HandoffRow, period), WEB_QUEUED).group_by(*cols).order_by(*cols))
    out = []
    for row in s.execute(stmt).mappings():
        r = dict(row)
        r["queue_abandonment_rate"] = rate(r["abandoned"], r["queued"])
        out.append({k: r[k] for k in (*by, *_SEAT_KEYS)})  # the keys in `_seat_row`'s order
    return out


_SEAT_KEYS = ("queued", "claimed", "abandoned", "resolved", "timed_out", "callback", "returned", "queue_abandonment_rate",
              "wait_mean", "wait_median", "wait_p90", "handle_mean", "handle_median", "handle_p90")


def seat_figures_and_days(s: Session, period: Period, by: Sequence[str] = ()) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """seat_figures(by) and seat_figures(("day", *by)) from one read: the rows come in SEAT_ORDER (day first), so a
    group's rows are its days' rows one after the other, and its means add the same terms in the same order. On
    PostgreSQL: two GROUP BYs in the database (seat_figures_aggregated)."""
    if _aggregates_in_database(s):
        return seat_figures_aggregated(s, period, by), seat_figures_aggregated(s, period, ("day", *by))
    return seat_figures_and_days_from_rows(s, period, by)


def seat_figures_and_days_from_rows(s: Session, period: Period, by: Sequence[str] = ()) -> tuple[list[dict[str, Any]],
                                                                                                   list[dict[str, Any]]]:
    """seat_figures_and_days computed here from one read of the hand-off rows (the way SQLite runs it)."""
    total: dict[tuple, list] = defaultdict(list)
    days: dict[tuple, list] = defaultdict(list)
    for row in _seat_rows(s, period, ("day", *by)):
        key, values = tuple(row[: len(by) + 1]), row[len(by) + 1:]
        total[key[1:]].append(values)
        days[key].append(values)
    return ([_seat_row(dict(zip(by, key, strict=True)), total[key]) for key in sorted(total)],
            [_seat_row(dict(zip(("day", *by), key, strict=True)), days[key]) for key in sorted(days)])


RATED_SATISFIED = RatingRow.score.in_(SATISFIED)


def rating_figures(s: Session, period: Period, by: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Ratings given in the period: count by score, satisfaction rate, response rate."""
    cols = group_columns(RatingRow, by)
    rated = {tuple(r[: len(by)]): r[len(by):] for r in s.execute(
        select(*cols, func.count(), count_if(RATED_SATISFIED), count_if(RatingRow.score == "满意"),
               count_if(RatingRow.score == "基本满意"), count_if(RatingRow.score == "不满意"))
        .where(in_period(RatingRow, period)).group_by(*cols)).all()}
    hcols = group_columns(HandoffRow, by)
    asked = {tuple(r[: len(by)]): r[len(by)] for r in s.execute(
        select(*hcols, func.count()).where(in_period(HandoffRow, period), HandoffRow.channel == "web", SURVEYED)
        .group_by(*hcols)).all()}
    return rating_rows(rated, asked, by)


def rating_rows(rated: dict[tuple, Sequence[int]], asked: dict[tuple, int], by: Sequence[str]) -> list[dict[str, Any]]:
    """rating_figures' rows from the counts per group: rated (ratings, satisfied, 满意, 基本满意, 不满意), asked (surveys)."""
    out = []
    for key in sorted(set(rated) | set(asked)):
        n, satisfied, very, basic, unhappy = rated.get(key, (0, 0, 0, 0, 0))
        out.append({**dict(zip(by, key, strict=True)), "ratings": n, "满意": very, "基本满意": basic, "不满意": unhappy,
                    "surveys": asked.get(key, 0), "satisfaction_rate": rate(satisfied, n),
                    "rating_response_rate": rate(n, asked.get(key, 0))})
    return out


ANSWER_UNHELPFUL = KnowledgeAnswer.feedback == "unhelpful"
ANSWER_HANDOFF_AFTER = KnowledgeAnswer.handoff_after.is_(True)


def answer_figures(s: Session, period: Period, key: str = "entry_id", by: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Knowledge answers per entry (key="entry_id"), per topic ("topic") or per area ("area"): count, 没帮助, hand-off after."""
    if key not in ("entry_id", "topic", "area"):
        raise ValueError("key is entry_id, topic or area")
    cols = group_columns(KnowledgeAnswer, by)
    column = KnowledgeAnswer.topic if key == "area" else getattr(KnowledgeAnswer, key)
    stmt = (select(*cols, column.label("key"), func.count().label("answers"),
                   count_if(ANSWER_UNHELPFUL).label("unhelpful"),
                   count_if(KnowledgeAnswer.feedback == "helpful").label("helpful"),
                   count_if(ANSWER_HANDOFF_AFTER).label("handoff_after"))
            .where(in_period(KnowledgeAnswer, period)).group_by(*cols, column))
    return answer_rows(s.execute(stmt).mappings(), key, by)


def answer_rows(rows: Iterable[Mapping[str, Any]], key: str, by: Sequence[str]) -> list[dict[str, Any]]:
    """answer_figures' rows from counts per group and "key" (an entry or topic; an area is summed from its topics)."""
    merged: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        r = dict(row)
        name = area(r.pop("key")) if key == "area" else r.pop("key")
        group = tuple(r[b] for b in by) + (name,)
        acc = merged.setdefault(group, {**{b: r[b] for b in by}, key: name, "answers": 0, "unhelpful": 0, "helpful": 0,
                                        "handoff_after": 0})
        for f in ("answers", "unhelpful", "helpful", "handoff_after"):
            acc[f] += r[f]
    out = []
    for r in merged.values():
        r["unhelpful_rate"] = rate(r["unhelpful"], r["answers"])
        r["handoff_after_rate"] = rate(r["handoff_after"], r["answers"])
        out.append(r)
    return sorted(out, key=lambda r: (tuple(r[b] for b in by), -r["answers"], str(r[key])))


def entry_topics(s: Session, entries: Sequence[str]) -> dict[str, str]:
    """The topic (category) of each knowledge entry as its answers recorded it (the greatest, should it have changed)."""
    if not entries:
        return {}
    return dict(s.execute(select(KnowledgeAnswer.entry_id, func.max(KnowledgeAnswer.topic))
                          .where(KnowledgeAnswer.entry_id.in_(list(entries))).group_by(KnowledgeAnswer.entry_id)).all())


def topic_sessions(s: Session, period: Period, by: Sequence[str] = (), level: str = "topic") -> list[dict[str, Any]]:
    """Sessions per topic (the first business topic the citizen asked about), most frequent first."""
    cols = group_columns(ChatSession, by)
    stmt = (select(*cols, ChatSession.topic, func.count()).where(in_period(ChatSession, period), COUNTED,
                                                                  ChatSession.topic.is_not(None))
            .group_by(*cols, ChatSession.topic))
    return topic_rows(s.execute(stmt).all(), by, level)


def topic_rows(rows: Iterable[Sequence[Any]], by: Sequence[str], level: str) -> list[dict[str, Any]]:
    """topic_sessions' rows from (*groups, topic, sessions) counts, most frequent first (level "area": summed per area)."""
    counts: dict[tuple, int] = defaultdict(int)
    for row in rows:
        name = area(row[len(by)]) if level == "area" else row[len(by)]
        counts[tuple(row[: len(by)]) + (name,)] += row[len(by) + 1]
    out = [{**dict(zip(by, k[:-1], strict=True)), "topic": k[-1], "sessions": n} for k, n in counts.items()]
    return sorted(out, key=lambda r: (tuple(r[b] for b in by), -r["sessions"], r["topic"]))


def request_types(s: Session, period: Period, by: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Sessions by request type (咨询, 办理, 求助/转人工, 投诉/举报, 其他: analytics.topics.request_type), every type
    listed in that order for each group, so the types add up to the sessions of session_figures."""
    cols = group_columns(ChatSession, by)
    counted = (in_period(ChatSession, period), ChatSession.citizen_turns > 0)
    first_intent: dict[str, str | None] = {}
    complained: set[str] = set()
    # one pass over the citizen turns of the period's sessions that carry a topic or a complaint (ordered by time)
    for sid, intent, topic in s.execute(
            select(Turn.session_id, Turn.intent, Turn.topic).join(ChatSession, ChatSession.id == Turn.session_id)
            .where(*counted, Turn.role == "citizen", or_(Turn.topic.is_not(None), Turn.intent.in_(COMPLAINT_INTENTS)))
            .order_by(Turn.session_id, Turn.ts)).all():
        if topic is not None:
            first_intent.setdefault(sid, intent)
        if intent in COMPLAINT_INTENTS:
            complained.add(sid)
    counts: dict[tuple, dict[str, int]] = defaultdict(lambda: dict.fromkeys(REQUEST_TYPES, 0))
    for row in s.execute(select(*cols, ChatSession.id, ChatSession.topic, ChatSession.handoff_reason).where(*counted)).all():
        sid, topic, reason = row[len(by):]
        counts[tuple(row[: len(by)])][request_type(first_intent.get(sid), topic, sid in complained, reason)] += 1
    return [{**dict(zip(by, key, strict=True)), "type": t, "sessions": n}
            for key in sorted(counts) for t, n in counts[key].items()]


def repeat_contacts(s: Session, period: Period, days: int = REPEAT_DAYS) -> dict[str, Any]:
    """Citizens who came back about the same topic within `days` days, on the web and on the phone.

    A web citizen is a chat conversation (the web app keeps it in a cookie); a phone citizen is a caller key (the
    gateway's keyed hash of the full number, voice/store.py), so two calls from one number are one caller. Phone
    sessions without a key (no number: AudioSocket, withheld) cannot be matched and are left out (`unkeyed`).
    A web chat and a call are never the same citizen. No identifier is returned. The top-level counts are both
    channels together; `channels` has them per channel.
    """
    lookback = period.start - dt.timedelta(days=days)
    rows = s.execute(select(ChatSession.conversation_id, ChatSession.channel, CallRow.caller_key, ChatSession.topic,
                            ChatSession.started_at, ChatSession.day)
                     .outerjoin(CallRow, CallRow.call_id == ChatSession.conversation_id)
                     .where(ChatSession.day >= lookback.isoformat(), ChatSession.day < period.end.isoformat(),
                            ChatSession.citizen_turns > 0, ChatSession.topic.is_not(None),
                            ChatSession.channel.in_(("web", "phone")))
                     .order_by(ChatSession.started_ts, ChatSession.id)).all()
    last: dict[tuple[str, str], dt.datetime] = {}
    counts = {ch: {"sessions": 0, "repeat_sessions": 0, "citizens": set()} for ch in ("web", "phone")}
    unkeyed = 0
    per_topic: dict[str, list] = defaultdict(lambda: [0, set()])
    for conv, channel, key, topic, started, day in rows:
        if channel == "phone" and not key:
            unkeyed += day >= period.start.isoformat()
            continue
        citizen = f"phone:{key}" if channel == "phone" else f"web:{conv}"
        before = last.get((citizen, topic))
        last[(citizen, topic)] = started
        if day < period.start.isoformat():
            continue
        c = counts[channel]
        c["sessions"] += 1
        if before is not None and started - before <= dt.timedelta(days=days):
            c["repeat_sessions"] += 1
            c["citizens"].add(citizen)
            per_topic[topic][0] += 1
            per_topic[topic][1].add(citizen)
    topics = sorted(({"topic": t, "repeat_sessions": n, "citizens": len(c)} for t, (n, c) in per_topic.items()),
                    key=lambda r: (-r["repeat_sessions"], r["topic"]))
    channels = {ch: {"sessions": c["sessions"], "repeat_sessions": c["repeat_sessions"], "repeat_citizens": len(c["citizens"]),
                     "repeat_rate": rate(c["repeat_sessions"], c["sessions"])} for ch, c in counts.items()}
    channels["phone"]["unkeyed"] = unkeyed
    sessions = sum(c["sessions"] for c in channels.values())
    repeats = sum(c["repeat_sessions"] for c in channels.values())
    return {"days": days, "sessions": sessions, "repeat_sessions": repeats,
            "repeat_citizens": sum(c["repeat_citizens"] for c in channels.values()),
            "repeat_rate": rate(repeats, sessions), "topics": topics, "channels": channels}


def summary(s: Session, period: Period) -> dict[str, Any]:
    """The headline figures of a period in one dict (all channels together)."""
    sessions = (session_figures(s, period) or [{"sessions": 0, "direct": 0, "handed_off": 0, "unhelpful": 0, "abandoned": 0,
                                                "direct_answer_rate": None, "handoff_rate": None, "abandonment_rate": None}])[0]
    seat = (seat_figures(s, period) or [{"queued": 0, "queue_abandonment_rate": None, "wait_mean": None, "handle_mean": None,
                                         "timed_out": 0, "callback": 0}])[0]
    ratings = (rating_figures(s, period) or [{"ratings": 0, "satisfaction_rate": None, "rating_response_rate": None}])[0]
    return {**sessions, **{f"seat_{k}": v for k, v in seat.items()}, **ratings}


# --- Drill-down: the records behind each figure --------------------------------------------------------------------

@dataclass(frozen=True)
class Drill:
    """The records a figure counts: its table, the same conditions the figure uses (a rate: its numerator's), the filters."""

    model: Any
    where: tuple
    filters: tuple[str, ...]


_SESSION_FILTERS = ("channel", "day", "hour", "topic")
_SEAT_FILTERS = ("channel", "day", "hour")
_ANSWER_FILTERS = ("channel", "day", "hour", "topic", "entry")
DRILLS: dict[str, Drill] = {
    "sessions": Drill(ChatSession, (COUNTED,), _SESSION_FILTERS),  # with topic: topic_sessions
    "direct_answer_rate": Drill(ChatSession, (COUNTED, DIRECT), _SESSION_FILTERS),
    "handoff_rate": Drill(ChatSession, (COUNTED, HANDED_OFF), _SESSION_FILTERS),
    "handoff_reasons": Drill(ChatSession, (COUNTED, HANDED_OFF), _SESSION_FILTERS + ("reason",)),
    "abandonment_rate": Drill(ChatSession, (COUNTED, ABANDONED), _SESSION_FILTERS),
    "queue_abandonment_rate": Drill(HandoffRow, (WEB_QUEUED, QUEUE_ABANDONED), _SEAT_FILTERS),
    "wait_seconds": Drill(HandoffRow, (WEB_QUEUED, CLAIMED), _SEAT_FILTERS),
    "handle_seconds": Drill(HandoffRow, (WEB_QUEUED, HANDLED), _SEAT_FILTERS),
    "satisfaction_rate": Drill(RatingRow, (RATED_SATISFIED,), _SEAT_FILTERS),
    "rating_response_rate": Drill(RatingRow, (), _SEAT_FILTERS),  # its numerator: the ratings given
    "answers": Drill(KnowledgeAnswer, (), _ANSWER_FILTERS),
    "unhelpful_rate": Drill(KnowledgeAnswer, (ANSWER_UNHELPFUL,), _ANSWER_FILTERS),
    "handoff_after_rate": Drill(KnowledgeAnswer, (ANSWER_HANDOFF_AFTER,), _ANSWER_FILTERS),
}
_SESSION_COLUMNS = (ChatSession.id.label("session_id"), ChatSession.started_at, ChatSession.topic, ChatSession.outcome,
                    ChatSession.abandoned, ChatSession.handoff_reason)
_RECORD_COLUMNS: dict[Any, tuple] = {
    ChatSession: (ChatSession.started_at.label("at"),),
    HandoffRow: (HandoffRow.queued_at.label("at"), HandoffRow.queue, HandoffRow.reason, HandoffRow.status,
                 HandoffRow.wait_seconds, HandoffRow.handle_seconds),
    RatingRow: (RatingRow.at, RatingRow.score),
    KnowledgeAnswer: (KnowledgeAnswer.at, KnowledgeAnswer.entry_id, KnowledgeAnswer.topic.label("answer_topic"),
                      KnowledgeAnswer.feedback, KnowledgeAnswer.handoff_after, KnowledgeAnswer.question),
}


def _drill_order(figure: str, m: Any) -> tuple:
    """The drill-down's order, newest first (the longest first for wait_seconds and handle_seconds), ending in the row's
    key so that it is total: the keyset a page continues from. Day first (it follows the time) so a period is paged
    along the index on (day, time) instead of sorted whole."""
    time = {ChatSession: ChatSession.started_ts, HandoffRow: HandoffRow.queued_at}.get(m, getattr(m, "at", None))
    key = m.source_id if m is RatingRow else m.id
    first = {"wait_seconds": (HandoffRow.wait_seconds,), "handle_seconds": (HandoffRow.handle_seconds,)}.get(figure, ())
    return (*first, m.day, time, key)


def _keyset(columns: tuple, after: Sequence[Any]) -> list:
    """A page's `after` (the JSON values `drill_down` gave as `next`) as the columns' Python values; ValueError when
    it does not fit them."""
    if not isinstance(after, (list, tuple)) or len(after) != len(columns):
        raise ValueError("the page key does not fit this list")
    values = []
    for column, value in zip(columns, after, strict=True):
        kind = column.type.python_type
        if kind is dt.datetime and isinstance(value, str):
            values.append(dt.datetime.fromisoformat(value))
        elif kind is float and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            values.append(float(value))
        elif isinstance(value, kind) and not isinstance(value, bool):
            values.append(value)
        else:
            raise ValueError("the page key does not fit this list")
    return values


def drill_down(s: Session, figure: str, period: Period, *, limit: int = 50, offset: int = 0,
               after: Sequence[Any] | None = None, **filters: Any) -> dict[str, Any]:
    """The records behind a figure in the period — of a rate, those its numerator counts — with their sessions:
    {"total", "rows", "next"} (newest first; the longest first for wait_seconds and handle_seconds).

    Paging: `next` (None on the last page) is the last row's key as JSON values; passed back as `after`, the next
    page starts right after that row (a keyset: it costs what the first page costs however deep, where an `offset`
    reads and skips every row before the page). `offset` still skips rows, after `after` if both are given.
    Filters (None: not given): channel, day, hour, topic, entry (a knowledge entry), reason (a hand-off reason);
    ValueError for an unknown figure, a filter the figure is not counted by, or an `after` not of this figure.
    """
    drill = DRILLS.get(figure)
    if drill is None:
        raise ValueError(f"no drill-down for {figure!r}; use {', '.join(DRILLS)}")
    given = {k: v for k, v in filters.items() if v is not None}
    unknown = [k for k in given if k not in drill.filters]
    if unknown:
        raise ValueError(f"{figure} cannot be filtered by {', '.join(unknown)}; use {', '.join(drill.filters)}")
    m = drill.model
    columns = {"channel": m.channel, "day": m.day, "hour": m.hour, "topic": getattr(m, "topic", None),
               "entry": getattr(m, "entry_id", None), "reason": getattr(m, "handoff_reason", None)}
    where = [in_period(m, period), *drill.where, *(columns[k] == v for k, v in given.items())]
    total = s.scalar(select(func.count()).select_from(m).where(*where))
    order = _drill_order(figure, m)
    page = [tuple_(*order) < tuple_(*_keyset(order, after))] if after is not None else []  # every key descending
    stmt = select(m.channel, m.day, m.hour, *_SESSION_COLUMNS, *_RECORD_COLUMNS[m],
                  *(c.label(f"_key{i}") for i, c in enumerate(order))).select_from(m)
    if m is not ChatSession:  # a hand-off, rating or answer with the session it belongs to (if the store knows it)
        stmt = stmt.outerjoin(ChatSession, ChatSession.id == m.session_id)
    stmt = stmt.where(*where, *page).order_by(*(c.desc() for c in order)).limit(limit + 1).offset(offset)
    rows = [dict(r) for r in s.execute(stmt).mappings()]
    keys = [tuple(r.pop(f"_key{i}") for i in range(len(order))) for r in rows]
    more = len(rows) > limit
    last = [v.isoformat() if isinstance(v, dt.datetime) else v for v in keys[limit - 1]] if more else None
    return {"total": total, "rows": rows[:limit], "next": last}
