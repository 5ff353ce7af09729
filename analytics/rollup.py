"""The dashboard's figures per day, kept by the ingest so that a year reads a few thousand rows (issue 13).

Why: the supervisors' dashboard shows a period of up to 400 days; counting a year's 185,000 sessions and 150,000
answers on every request took 0.5–1.9 s (docs/analytics.md "Dashboard query latency"). The roll-up tables
(analytics.store, `rollup_*`) hold the same counts per local day and channel, and per what the dashboard groups by:
hour, topic, hand-off reason, knowledge entry; ratings and the hand-offs that asked for one. Every figure of a period
is a sum of whole days, so it is the sum of those rows. Topics and entries are many a day (a day holds ~300 entry
rows), so they are also summed per calendar month: a period reads its whole months there and its other days from the
day rows. Waiting and handling times stay on the hand-off rows (their medians need every value, and a year holds only
~26,000).

Exactness: the roll-up is never incremented. `refresh(s, days)` deletes the roll-up rows of whole days and inserts
their GROUP BY over the detail rows again (and the months of those days from the day rows), in the ingest's
transaction; `Ingester.derive` calls it with every day
the conversations it re-derived have a row on (sessions, hand-offs, ratings, answers — before and after), so a
replay, a source read twice or a late event that changes an outcome leaves exactly what a full rebuild would.
`ensure` rebuilds the whole roll-up when the store has none of this definition yet (ROLLUP_VERSION in `cursors`):
an older store gets it on its next ingest, and until then `ready` is False and the dashboard reads the detail rows.

Readers: `session_figures`, `handoff_reasons`, `rating_figures`, `answer_figures`, `topic_sessions` and
`entry_topics` take the same arguments and return the same rows as the functions of analytics.figures they stand
for (grouped by channel, day or hour only), shaped by the same code; tests/analytics/test_rollup.py checks both
ways give every number equal.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Sequence
from typing import Any

from sqlalchemy import and_, delete, func, insert, literal_column, or_, select, true, union_all
from sqlalchemy.orm import Session

from analytics import figures as F
from analytics.store import (
    ChatSession,
    Cursor,
    DayAnswers,
    DayRatings,
    DayReasons,
    DaySessions,
    DayTopics,
    HandoffRow,
    KnowledgeAnswer,
    MonthAnswers,
    MonthTopics,
    RatingRow,
)

ROLLUP_VERSION = "1"  # raise it when a roll-up table's definition changes: the next ingest rebuilds them all
MARKER = "rollup:version"  # the `cursors` row holding the version the roll-up was built with
GROUPS = ("channel", "day", "hour")
KEYS_PER_STATEMENT = 500  # days or months per IN (...) clause
RATING_COUNTS = ("ratings", "satisfied", "very", "basic", "unhappy")
ANSWER_COUNTS = ("answers", "unhelpful", "helpful", "handoff_after")


# --- keeping it: whole days recomputed from the detail rows ---------------------------------------------------------

def _sources(days: Callable[[Any], Any]) -> list[tuple[Any, list[str], Any]]:
    """(roll-up table, its columns, the SELECT over the detail rows of `days` that fills them)."""
    c, a = ChatSession, KnowledgeAnswer
    sessions = (select(c.day, c.channel, c.hour, func.count(), F.count_if(F.DIRECT), F.count_if(F.HANDED_OFF),
                       F.count_if(F.UNHELPFUL), F.count_if(F.ABANDONED))
                .where(days(c), F.COUNTED).group_by(c.day, c.channel, c.hour))
    topics = (select(c.day, c.channel, c.topic, func.count()).where(days(c), F.COUNTED, c.topic.is_not(None))
              .group_by(c.day, c.channel, c.topic))
    reasons = (select(c.day, c.channel, c.handoff_reason, func.count()).where(days(c), F.COUNTED, F.HANDED_OFF)
               .group_by(c.day, c.channel, c.handoff_reason))
    answers = (select(a.day, a.channel, a.entry_id, a.topic, func.count(), F.count_if(F.ANSWER_UNHELPFUL),
                      F.count_if(a.feedback == "helpful"), F.count_if(F.ANSWER_HANDOFF_AFTER))
               .where(days(a)).group_by(a.day, a.channel, a.entry_id, a.topic))
    zero = literal_column("0")
    rated = (select(RatingRow.day.label("day"), RatingRow.channel.label("channel"), func.count().label("ratings"),
                    F.count_if(F.RATED_SATISFIED).label("satisfied"), F.count_if(RatingRow.score == "满意").label("very"),
                    F.count_if(RatingRow.score == "基本满意").label("basic"),
                    F.count_if(RatingRow.score == "不满意").label("unhappy"), zero.label("surveys"))
             .where(days(RatingRow)).group_by(RatingRow.day, RatingRow.channel))
    asked = (select(HandoffRow.day, HandoffRow.channel, *(zero for _ in RATING_COUNTS), func.count())
             .where(days(HandoffRow), HandoffRow.channel == "web", F.SURVEYED).group_by(HandoffRow.day, HandoffRow.channel))
    both = union_all(rated, asked).subquery()
    ratings = (select(both.c.day, both.c.channel, *(func.sum(both.c[k]) for k in (*RATING_COUNTS, "surveys")))
               .group_by(both.c.day, both.c.channel))
    return [(DaySessions, ["day", "channel", "hour", "sessions", "direct", "handed_off", "unhelpful", "abandoned"], sessions),
            (DayTopics, ["day", "channel", "topic", "sessions"], topics),
            (DayReasons, ["day", "channel", "reason", "sessions"], reasons),
            (DayAnswers, ["day", "channel", "entry_id", "topic", *ANSWER_COUNTS], answers),
            (DayRatings, ["day", "channel", *RATING_COUNTS, "surveys"], ratings)]


def _month_sources(days: Callable[[Any], Any]) -> list[tuple[Any, list[str], Any]]:
    """(month table, its columns, the SELECT summing the day rows of `days` into months)."""
    out = []
    for month_table, day_table, keys, counts in ((MonthTopics, DayTopics, ("channel", "topic"), ("sessions",)),
                                                 (MonthAnswers, DayAnswers, ("channel", "entry_id", "topic"), ANSWER_COUNTS)):
        month = func.substr(day_table.day, 1, 7)
        key_columns = [getattr(day_table, k) for k in keys]
        out.append((month_table, ["month", *keys, *counts],
                    select(month, *key_columns, *(func.sum(getattr(day_table, c)) for c in counts))
                    .where(days(day_table)).group_by(month, *key_columns)))
    return out


def refresh(s: Session, days: Collection[str] | None) -> None:
    """Recompute the roll-up rows of these local days (YYYY-MM-DD) from the detail rows, and of their months from
    the day rows; None: of every day and month."""
    s.flush()  # the derived rows changed in this session are what the roll-up counts
    if days is None:
        _replace(s, _sources(lambda model: true()), lambda model: true())
        _replace(s, _month_sources(lambda model: true()), lambda model: true())
        return
    ordered = sorted(days)
    for part in _parts(ordered):
        _replace(s, _sources(lambda model, part=part: model.day.in_(part)), lambda model, part=part: model.day.in_(part))
    for part in _parts(sorted({d[:7] for d in ordered})):
        _replace(s, _month_sources(lambda model, part=part: or_(*(model.day.between(f"{m}-01", f"{m}-31") for m in part))),
                 lambda model, part=part: model.month.in_(part))


def _parts(keys: list[str]) -> list[list[str]]:
    return [keys[i: i + KEYS_PER_STATEMENT] for i in range(0, len(keys), KEYS_PER_STATEMENT)]


def _replace(s: Session, sources: list[tuple[Any, list[str], Any]], rows: Callable[[Any], Any]) -> None:
    """Delete the roll-up rows that `rows(table)` selects and insert them again from their sources."""
    for table, columns, source in sources:
        s.execute(delete(table).where(rows(table)))
        s.execute(insert(table).from_select(columns, source))


def ready(s: Session) -> bool:
    """Whether the store's roll-up is built, with this code's definition."""
    marker = s.get(Cursor, MARKER)
    return marker is not None and marker.position == ROLLUP_VERSION


def ensure(s: Session) -> bool:
    """Build the whole roll-up if the store has none of this definition yet (an older store); True when built."""
    if ready(s):
        return False
    refresh(s, None)
    s.merge(Cursor(source=MARKER, position=ROLLUP_VERSION))
    return True


# --- reading it: the figures of analytics.figures from the day rows -------------------------------------------------

def _summed(model: Any, names: Sequence[str]) -> list:
    return [func.coalesce(func.sum(getattr(model, n)), 0).label(n) for n in names]


def session_figures(s: Session, period: F.Period, by: Sequence[str] = ()) -> list[dict[str, Any]]:
    """F.session_figures from the roll-up (grouped by channel, day, hour)."""
    cols = F.group_columns(DaySessions, by, GROUPS)
    stmt = (select(*cols, *_summed(DaySessions, F.SESSION_COUNTS)).where(F.in_period(DaySessions, period))
            .group_by(*cols).order_by(*cols))
    return [F.session_rates(dict(r)) for r in s.execute(stmt).mappings()]


def handoff_reasons(s: Session, period: F.Period, by: Sequence[str] = ()) -> list[dict[str, Any]]:
    """F.handoff_reasons from the roll-up."""
    cols = F.group_columns(DayReasons, by, GROUPS[:2])
    count = func.sum(DayReasons.sessions)
    stmt = (select(*cols, DayReasons.reason.label("reason"), count.label("count")).where(F.in_period(DayReasons, period))
            .group_by(*cols, DayReasons.reason).order_by(*cols, count.desc(), DayReasons.reason))
    return [dict(r) for r in s.execute(stmt).mappings()]


def rating_figures(s: Session, period: F.Period, by: Sequence[str] = ()) -> list[dict[str, Any]]:
    """F.rating_figures from the roll-up (a group is listed when it has a rating or a survey, as there)."""
    cols = F.group_columns(DayRatings, by, GROUPS[:2])
    rows = s.execute(select(*cols, *_summed(DayRatings, (*RATING_COUNTS, "surveys"))).where(F.in_period(DayRatings, period))
                     .group_by(*cols)).all()
    n = len(by)
    return F.rating_rows({tuple(r[:n]): tuple(r[n: n + len(RATING_COUNTS)]) for r in rows},
                         {tuple(r[:n]): r[-1] for r in rows}, by)


def _period_rows(day_table: Any, month_table: Any, period: F.Period, by: Sequence[str], columns: Sequence[str]) -> Any:
    """The roll-up rows that make up the period, as one subquery of `columns` (and `day` when grouped by day): the
    period's whole calendar months from the month table, its other days from the day table."""
    first = period.start if period.start.day == 1 else (period.start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    last = period.end.replace(day=1)
    days = select(*(getattr(day_table, c) for c in ("day", *columns) if c != "day" or "day" in by))
    if "day" in by or first >= last:
        return days.where(F.in_period(day_table, period)).subquery()
    edges = or_(and_(day_table.day >= period.start.isoformat(), day_table.day < first.isoformat()),
                and_(day_table.day >= last.isoformat(), day_table.day < period.end.isoformat()))
    months = (select(*(getattr(month_table, c) for c in columns))
              .where(month_table.month >= first.isoformat()[:7], month_table.month < last.isoformat()[:7]))
    return union_all(days.where(edges), months).subquery()


def answer_figures(s: Session, period: F.Period, key: str = "entry_id", by: Sequence[str] = ()) -> list[dict[str, Any]]:
    """F.answer_figures from the roll-up: per entry (key="entry_id"), topic or area."""
    if key not in ("entry_id", "topic", "area"):
        raise ValueError("key is entry_id, topic or area")
    rows = _period_rows(DayAnswers, MonthAnswers, period, by, ("channel", "entry_id", "topic", *ANSWER_COUNTS))
    cols = F.group_columns(rows.c, by, GROUPS[:2])
    column = rows.c.topic if key == "area" else rows.c[key]
    stmt = select(*cols, column.label("key"), *_summed(rows.c, ANSWER_COUNTS)).group_by(*cols, column)
    return F.answer_rows(s.execute(stmt).mappings(), key, by)


def entry_topics(s: Session, entries: Sequence[str]) -> dict[str, str]:
    """F.entry_topics from the roll-up (its months hold every day's entries and their topics)."""
    if not entries:
        return {}
    return dict(s.execute(select(MonthAnswers.entry_id, func.max(MonthAnswers.topic))
                          .where(MonthAnswers.entry_id.in_(list(entries))).group_by(MonthAnswers.entry_id)).all())


def topic_sessions(s: Session, period: F.Period, by: Sequence[str] = (), level: str = "topic") -> list[dict[str, Any]]:
    """F.topic_sessions from the roll-up."""
    rows = _period_rows(DayTopics, MonthTopics, period, by, ("channel", "topic", "sessions"))
    cols = F.group_columns(rows.c, by, GROUPS[:2])
    stmt = select(*cols, rows.c.topic, func.sum(rows.c.sessions)).group_by(*cols, rows.c.topic)
    return F.topic_rows(s.execute(stmt).all(), by, level)
