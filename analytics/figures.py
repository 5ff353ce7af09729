"""The supervision figures, each defined once here (and in words in docs/analytics.md).

Every function takes a period of local days [start, end) and optional grouping columns out of
`channel`, `month`, `day`, `hour` (and `weekday` for sessions), and returns one dict per group.
A rate whose denominator is 0 is None (shown as "—"), never 0.
"""
from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from analytics.store import ChatSession, HandoffRow, KnowledgeAnswer, RatingRow
from analytics.topics import area

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
    Figure("repeat_rate", "重复咨询率", "%",
           "web sessions with a topic whose citizen (the same chat conversation) had a session on the same topic in the "
           "7 days before ÷ web sessions with a topic"),
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


def _groups(model: Any, by: Sequence[str], allowed: Sequence[str] = GROUPS) -> list:
    unknown = [b for b in by if b not in allowed]
    if unknown:
        raise ValueError(f"cannot group by {', '.join(unknown)}; use {', '.join(allowed)}")
    return [getattr(model, b).label(b) for b in by]


def _in(model: Any, period: Period) -> Any:
    return and_(model.day >= period.start.isoformat(), model.day < period.end.isoformat())


def _count_if(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def session_figures(s: Session, period: Period, by: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Volume, direct-answer, hand-off and abandonment rates of the sessions started in the period."""
    cols = _groups(ChatSession, by, GROUPS + ("weekday",))
    stmt = (select(*cols, func.count().label("sessions"),
                   _count_if(ChatSession.outcome == "direct").label("direct"),
                   _count_if(ChatSession.handed_off.is_(True)).label("handed_off"),
                   _count_if(ChatSession.unhelpful.is_(True)).label("unhelpful"),
                   _count_if(ChatSession.abandoned.is_(True)).label("abandoned"))
            .where(_in(ChatSession, period), ChatSession.citizen_turns > 0).group_by(*cols).order_by(*cols))
    out = []
    for row in s.execute(stmt).mappings():
        r = dict(row)
        r["direct_answer_rate"] = rate(r["direct"], r["sessions"])
        r["handoff_rate"] = rate(r["handed_off"], r["sessions"])
        r["abandonment_rate"] = rate(r["abandoned"], r["sessions"])
        out.append(r)
    return out


def handoff_reasons(s: Session, period: Period, by: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Sessions with a hand-off request, by the reason recorded (most frequent first)."""
    cols = _groups(ChatSession, by)
    stmt = (select(*cols, ChatSession.handoff_reason.label("reason"), func.count().label("count"))
            .where(_in(ChatSession, period), ChatSession.citizen_turns > 0, ChatSession.handed_off.is_(True))
            .group_by(*cols, ChatSession.handoff_reason).order_by(*cols, func.count().desc(), ChatSession.handoff_reason))
    return [dict(r) for r in s.execute(stmt).mappings()]


def seat_figures(s: Session, period: Period, by: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Web hand-offs queued in the period: queue abandonment, waiting and handling time at the seat."""
    cols = _groups(HandoffRow, by)
    stmt = (select(*cols, HandoffRow.status, HandoffRow.wait_seconds, HandoffRow.handle_seconds)
            .where(_in(HandoffRow, period), HandoffRow.channel == "web", HandoffRow.status != "message"))
    groups: dict[tuple, list] = defaultdict(list)
    for row in s.execute(stmt).all():
        groups[tuple(row[: len(by)])].append(row[len(by):])
    out = []
    for key in sorted(groups):
        rows = groups[key]
        waits = [w for _, w, _ in rows if w is not None]
        handles = [h for _, _, h in rows if h is not None]
        # the citizen gave up before a seat came: left the page, or went back to the bot (the web app's outcomes)
        abandoned = sum(1 for st, w, _ in rows if st in ("abandoned", "returned") and w is None)
        out.append({**dict(zip(by, key, strict=True)), "queued": len(rows), "claimed": len(waits), "abandoned": abandoned,
                    "resolved": sum(1 for st, _, _ in rows if st == "resolved"),
                    "timed_out": sum(1 for st, _, _ in rows if st in ("timed_out", "callback")),
                    "callback": sum(1 for st, _, _ in rows if st == "callback"),
                    "returned": sum(1 for st, _, _ in rows if st == "returned"),
                    "queue_abandonment_rate": rate(abandoned, len(rows)),
                    "wait_mean": rate(sum(waits), len(waits)), "wait_median": percentile(waits, 0.5), "wait_p90": percentile(waits, 0.9),
                    "handle_mean": rate(sum(handles), len(handles)), "handle_median": percentile(handles, 0.5),
                    "handle_p90": percentile(handles, 0.9)})
    return out


def rating_figures(s: Session, period: Period, by: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Ratings given in the period: count by score, satisfaction rate, response rate."""
    cols = _groups(RatingRow, by)
    rated = {tuple(r[: len(by)]): r[len(by):] for r in s.execute(
        select(*cols, func.count(), _count_if(RatingRow.score.in_(SATISFIED)), _count_if(RatingRow.score == "满意"),
               _count_if(RatingRow.score == "基本满意"), _count_if(RatingRow.score == "不满意"))
        .where(_in(RatingRow, period)).group_by(*cols)).all()}
    hcols = _groups(HandoffRow, by)
    asked = {tuple(r[: len(by)]): r[len(by)] for r in s.execute(
        select(*hcols, func.count()).where(_in(HandoffRow, period), HandoffRow.channel == "web", HandoffRow.status == "resolved")
        .group_by(*hcols)).all()}
    out = []
    for key in sorted(set(rated) | set(asked)):
        n, satisfied, very, basic, unhappy = rated.get(key, (0, 0, 0, 0, 0))
        out.append({**dict(zip(by, key, strict=True)), "ratings": n, "满意": very, "基本满意": basic, "不满意": unhappy,
                    "surveys": asked.get(key, 0), "satisfaction_rate": rate(satisfied, n),
                    "rating_response_rate": rate(n, asked.get(key, 0))})
    return out


def answer_figures(s: Session, period: Period, key: str = "entry_id", by: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Knowledge answers per entry (key="entry_id"), per topic ("topic") or per area ("area"): count, 没帮助, hand-off after."""
    if key not in ("entry_id", "topic", "area"):
        raise ValueError("key is entry_id, topic or area")
    cols = _groups(KnowledgeAnswer, by)
    column = KnowledgeAnswer.topic if key == "area" else getattr(KnowledgeAnswer, key)
    stmt = (select(*cols, column.label("key"), func.count().label("answers"),
                   _count_if(KnowledgeAnswer.feedback == "unhelpful").label("unhelpful"),
                   _count_if(KnowledgeAnswer.feedback == "helpful").label("helpful"),
                   _count_if(KnowledgeAnswer.handoff_after.is_(True)).label("handoff_after"))
            .where(_in(KnowledgeAnswer, period)).group_by(*cols, column))
    merged: dict[tuple, dict[str, Any]] = {}
    for row in s.execute(stmt).mappings():
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


def topic_sessions(s: Session, period: Period, by: Sequence[str] = (), level: str = "topic") -> list[dict[str, Any]]:
    """Sessions per topic (the first business topic the citizen asked about), most frequent first."""
    cols = _groups(ChatSession, by)
    stmt = (select(*cols, ChatSession.topic, func.count()).where(_in(ChatSession, period), ChatSession.citizen_turns > 0,
                                                                  ChatSession.topic.is_not(None))
            .group_by(*cols, ChatSession.topic))
    counts: dict[tuple, int] = defaultdict(int)
    for row in s.execute(stmt).all():
        name = area(row[len(by)]) if level == "area" else row[len(by)]
        counts[tuple(row[: len(by)]) + (name,)] += row[len(by) + 1]
    rows = [{**dict(zip(by, k[:-1], strict=True)), "topic": k[-1], "sessions": n} for k, n in counts.items()]
    return sorted(rows, key=lambda r: (tuple(r[b] for b in by), -r["sessions"], r["topic"]))


def repeat_contacts(s: Session, period: Period, days: int = REPEAT_DAYS) -> dict[str, Any]:
    """Citizens who came back about the same topic within `days` days (web chat only: a phone call has no caller key
    in the store). A citizen is a chat conversation (the web app keeps it in a cookie); no identifier is returned."""
    lookback = period.start - dt.timedelta(days=days)
    rows = s.execute(select(ChatSession.conversation_id, ChatSession.topic, ChatSession.started_at, ChatSession.day)
                     .where(ChatSession.day >= lookback.isoformat(), ChatSession.day < period.end.isoformat(),
                            ChatSession.citizen_turns > 0, ChatSession.topic.is_not(None), ChatSession.channel == "web")
                     .order_by(ChatSession.conversation_id, ChatSession.started_ts)).all()
    last: dict[tuple[str, str], dt.datetime] = {}
    sessions = repeats = 0
    citizens: set[str] = set()
    per_topic: dict[str, list] = defaultdict(lambda: [0, set()])
    for conv, topic, started, day in rows:
        before = last.get((conv, topic))
        last[(conv, topic)] = started
        if day < period.start.isoformat():
            continue
        sessions += 1
        if before is not None and started - before <= dt.timedelta(days=days):
            repeats += 1
            citizens.add(conv)
            per_topic[topic][0] += 1
            per_topic[topic][1].add(conv)
    topics = sorted(({"topic": t, "repeat_sessions": n, "citizens": len(c)} for t, (n, c) in per_topic.items()),
                    key=lambda r: (-r["repeat_sessions"], r["topic"]))
    return {"days": days, "sessions": sessions, "repeat_sessions": repeats, "repeat_citizens": len(citizens),
            "repeat_rate": rate(repeats, sessions), "topics": topics}


def summary(s: Session, period: Period) -> dict[str, Any]:
    """The headline figures of a period in one dict (all channels together)."""
    sessions = (session_figures(s, period) or [{"sessions": 0, "direct": 0, "handed_off": 0, "unhelpful": 0, "abandoned": 0,
                                                "direct_answer_rate": None, "handoff_rate": None, "abandonment_rate": None}])[0]
    seat = (seat_figures(s, period) or [{"queued": 0, "queue_abandonment_rate": None, "wait_mean": None, "handle_mean": None,
                                         "timed_out": 0, "callback": 0}])[0]
    ratings = (rating_figures(s, period) or [{"ratings": 0, "satisfaction_rate": None, "rating_response_rate": None}])[0]
    return {**sessions, **{f"seat_{k}": v for k, v in seat.items()}, **ratings}
