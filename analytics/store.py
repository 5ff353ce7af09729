"""The analytics store: sessions, turns, knowledge answers, hand-offs, ratings, calls, work orders, alerts.

SQLAlchemy 2 with one URL (SQLite by default, PostgreSQL in production). Every time is the centre's
local time without tzinfo (ANALYTICS_TIMEZONE), and rows that figures are grouped by carry their own
`channel`, `day` (YYYY-MM-DD), `month` (YYYY-MM) and `hour` (0-23) columns, so the same GROUP BY works
on both databases. Every text is masked (common.privacy) before it is written here.

The store is filled only by `analytics.ingest`: append-only source events are remembered in `ingested`
(a key per event), mutable source rows (hand-offs, work orders, calls) are upserted by their source id,
and everything derived (session outcome, a turn's topic, feedback on an answer) is recomputed per
conversation. Replaying any source therefore leaves the store as it was. The `rollup_*` tables hold the
dashboard's counts per day (analytics.rollup), recomputed for every day an ingest touched.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from common.database import add_missing_columns, create_sql_engine

T = TypeVar("T")
ID = String(120)  # conversation ids are at most 64 characters; session ids add "#<start in ms>"


class Base(DeclarativeBase):
    """Declarative base of the analytics tables."""


class Bucketed:
    """The grouping columns every counted row carries."""

    channel: Mapped[str] = mapped_column(String(16), default="web")  # web | phone
    day: Mapped[str] = mapped_column(String(10), default="", index=True)
    month: Mapped[str] = mapped_column(String(7), default="", index=True)
    hour: Mapped[int] = mapped_column(Integer, default=0)


class ChatSession(Bucketed, Base):
    """One conversation session as Rasa counts it (a new one after an hour of silence, or one phone call)."""

    __tablename__ = "sessions"
    # the dashboard's year-long figures read only this index (covering: no table look-ups), and its drill-down lists
    # page through a period newest first along the second (docs/analytics.md "Dashboard query latency")
    __table_args__ = (Index("ix_sessions_figures", "day", "channel", "hour", "citizen_turns", "outcome", "handed_off",
                            "unhelpful", "abandoned", "topic", "handoff_reason"),
                      Index("ix_sessions_day_started", "day", "started_ts"))
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(64), index=True)
    started_ts: Mapped[float] = mapped_column(Float)  # epoch seconds of session_started (orders sessions exactly)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    ended_at: Mapped[dt.datetime] = mapped_column(DateTime)
    weekday: Mapped[int] = mapped_column(Integer, default=0)  # 1 = Monday
    citizen_turns: Mapped[int] = mapped_column(Integer, default=0)
    topic: Mapped[str | None] = mapped_column(String(64), nullable=True)  # first business topic asked
    handed_off: Mapped[bool] = mapped_column(Boolean, default=False)
    handoff_reason: Mapped[str] = mapped_column(String(200), default="")
    unhelpful: Mapped[bool] = mapped_column(Boolean, default=False)
    abandoned: Mapped[bool] = mapped_column(Boolean, default=False)
    # empty (no citizen message) | handoff | unhelpful | direct — see docs/analytics.md
    outcome: Mapped[str] = mapped_column(String(16), default="empty", index=True)


class Turn(Base):
    """One message: a citizen's (with its intent and the topic it was answered under), the bot's, or an agent's."""

    __tablename__ = "turns"
    __table_args__ = (Index("ix_turns_topic_hour", "topic", "hour_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ID, index=True)
    conversation_id: Mapped[str] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(16), default="web")
    role: Mapped[str] = mapped_column(String(8))  # citizen | bot | agent
    ts: Mapped[float] = mapped_column(Float)  # epoch seconds (orders turns exactly)
    at: Mapped[dt.datetime] = mapped_column(DateTime)
    hour_at: Mapped[dt.datetime] = mapped_column(DateTime)  # `at` truncated to the hour
    text: Mapped[str] = mapped_column(Text, default="")  # masked
    intent: Mapped[str | None] = mapped_column(String(64), nullable=True)
    intent_confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    entry_id: Mapped[str | None] = mapped_column(String(32), nullable=True)  # bot: the knowledge entry answered
    band: Mapped[str | None] = mapped_column(String(16), nullable=True)  # bot: confident|chosen|clarify|unsure|none|out_of_scope
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    suggestions: Mapped[list | None] = mapped_column(JSON, nullable=True)  # bot: entries offered
    asks: Mapped[bool] = mapped_column(Boolean, default=False)  # bot: waits for the citizen's choice or answer
    handoff_status: Mapped[str | None] = mapped_column(String(16), nullable=True)  # bot: the hand-off it announced
    handoff_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    topic: Mapped[str | None] = mapped_column(String(64), nullable=True)  # derived (analytics.topics)
    source: Mapped[str] = mapped_column(String(16), default="rasa")


class KnowledgeAnswer(Bucketed, Base):
    """A knowledge entry given as the answer, with what the citizen did next (derived from the turns)."""

    __tablename__ = "knowledge_answers"
    __table_args__ = (Index("ix_answers_figures", "day", "channel", "hour", "entry_id", "topic", "feedback", "handoff_after"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    turn_id: Mapped[int] = mapped_column(Integer, unique=True)
    session_id: Mapped[str] = mapped_column(ID, index=True)
    conversation_id: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    entry_id: Mapped[str] = mapped_column(String(32), index=True)
    category: Mapped[str] = mapped_column(String(64), default="")
    topic: Mapped[str] = mapped_column(String(64), default="", index=True)
    band: Mapped[str] = mapped_column(String(16))  # confident | chosen
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    question: Mapped[str] = mapped_column(Text, default="")  # masked citizen text that led to it
    feedback: Mapped[str | None] = mapped_column(String(16), nullable=True)  # helpful | unhelpful
    handoff_after: Mapped[bool] = mapped_column(Boolean, default=False)


class HandoffRow(Bucketed, Base):
    """A hand-off to the expert seat (from the web app's database), with its queue times."""

    __tablename__ = "handoffs"
    __table_args__ = (UniqueConstraint("source", "source_id"),
                      # covering for the seat and rating figures of a long period (the dashboard's year)
                      Index("ix_handoffs_figures", "day", "channel", "status", "wait_seconds", "handle_seconds", "hour"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(16), default="webapp")
    source_id: Mapped[int] = mapped_column(Integer)
    session_id: Mapped[str | None] = mapped_column(ID, nullable=True, index=True)
    conversation_id: Mapped[str] = mapped_column(String(64), index=True)
    queue: Mapped[str] = mapped_column(String(16), default="")
    reason: Mapped[str] = mapped_column(String(200), default="")
    # queued | claimed | resolved | message (off-hours) | the web app's timed_out, callback, abandoned, returned
    # (webapp/handoffs.py) | abandoned (derived from queued: never claimed within the limit, see settings)
    status: Mapped[str] = mapped_column(String(16))
    source_status: Mapped[str] = mapped_column(String(16))
    agent: Mapped[str | None] = mapped_column(String(64), nullable=True)
    queued_at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    claimed_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    abandoned_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    wait_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    handle_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)


class RatingRow(Bucketed, Base):
    """A citizen's satisfaction rating after a human conversation."""

    __tablename__ = "ratings"
    __table_args__ = (Index("ix_ratings_figures", "day", "channel", "score", "hour"),)
    source_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(64), index=True)
    session_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    handoff_source_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    score: Mapped[str] = mapped_column(String(8))  # 满意 | 基本满意 | 不满意
    comment: Mapped[str] = mapped_column(Text, default="")  # masked
    at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)


class CallRow(Bucketed, Base):
    """A finished phone call (from the voice gateway's call store); its id is Rasa's sender id."""

    __tablename__ = "calls"
    call_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    transport: Mapped[str] = mapped_column(String(16), default="")
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    ended_at: Mapped[dt.datetime] = mapped_column(DateTime)
    ended_ts: Mapped[float] = mapped_column(Float)
    duration_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    outcome: Mapped[str] = mapped_column(String(24))  # answered_by_bot | transferred | completed | caller_hangup
    reason: Mapped[str] = mapped_column(String(200), default="")
    handoff_status: Mapped[str] = mapped_column(String(64), default="")
    turns: Mapped[int] = mapped_column(Integer, default=0)
    # HMAC of the caller's full number made by the gateway (voice/store.py); never the number itself. Null:
    # no number (AudioSocket, withheld) or a call from before the key existed
    caller_key: Mapped[str | None] = mapped_column(String(64), nullable=True)


class WorkOrderRow(Bucketed, Base):
    """A 工单 (from the web app's database)."""

    __tablename__ = "work_orders"
    source_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    category: Mapped[str] = mapped_column(String(32), default="")
    status: Mapped[str] = mapped_column(String(16))  # open | in_progress | closed
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    deadline: Mapped[dt.datetime] = mapped_column(DateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class RolledUp:
    """The key every roll-up row starts with (analytics.rollup): a local day and a channel."""

    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)


class DaySessions(RolledUp, Base):
    """Roll-up: the counted sessions (a citizen message) of a day, channel and hour, by outcome."""

    __tablename__ = "rollup_sessions"
    hour: Mapped[int] = mapped_column(Integer, primary_key=True)
    sessions: Mapped[int] = mapped_column(Integer)
    direct: Mapped[int] = mapped_column(Integer)
    handed_off: Mapped[int] = mapped_column(Integer)
    unhelpful: Mapped[int] = mapped_column(Integer)
    abandoned: Mapped[int] = mapped_column(Integer)


class DayTopics(RolledUp, Base):
    """Roll-up: the counted sessions of a day and channel per topic (sessions without a topic are not listed)."""

    __tablename__ = "rollup_topics"
    topic: Mapped[str] = mapped_column(String(64), primary_key=True)
    sessions: Mapped[int] = mapped_column(Integer)


class DayReasons(RolledUp, Base):
    """Roll-up: the counted handed-off sessions of a day and channel per hand-off reason."""

    __tablename__ = "rollup_reasons"
    reason: Mapped[str] = mapped_column(String(200), primary_key=True)
    sessions: Mapped[int] = mapped_column(Integer)


class DayAnswers(RolledUp, Base):
    """Roll-up: the knowledge answers of a day and channel per entry and topic, with what followed them."""

    __tablename__ = "rollup_answers"
    entry_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    topic: Mapped[str] = mapped_column(String(64), primary_key=True)
    answers: Mapped[int] = mapped_column(Integer)
    unhelpful: Mapped[int] = mapped_column(Integer)
    helpful: Mapped[int] = mapped_column(Integer)
    handoff_after: Mapped[int] = mapped_column(Integer)


class DayRatings(RolledUp, Base):
    """Roll-up: the ratings of a day and channel by score, and the resolved web hand-offs that asked for one."""

    __tablename__ = "rollup_ratings"
    ratings: Mapped[int] = mapped_column(Integer)
    satisfied: Mapped[int] = mapped_column(Integer)  # 满意 or 基本满意
    very: Mapped[int] = mapped_column(Integer)  # 满意
    basic: Mapped[int] = mapped_column(Integer)  # 基本满意
    unhappy: Mapped[int] = mapped_column(Integer)  # 不满意
    surveys: Mapped[int] = mapped_column(Integer)


class MonthTopics(Base):
    """Roll-up: DayTopics summed over a calendar month (a long period reads its whole months here)."""

    __tablename__ = "rollup_topics_month"
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    topic: Mapped[str] = mapped_column(String(64), primary_key=True)
    sessions: Mapped[int] = mapped_column(Integer)


class MonthAnswers(Base):
    """Roll-up: DayAnswers summed over a calendar month (an entry is answered on most days: this is 8× fewer rows)."""

    __tablename__ = "rollup_answers_month"
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    entry_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    topic: Mapped[str] = mapped_column(String(64), primary_key=True)
    answers: Mapped[int] = mapped_column(Integer)
    unhelpful: Mapped[int] = mapped_column(Integer)
    helpful: Mapped[int] = mapped_column(Integer)
    handoff_after: Mapped[int] = mapped_column(Integer)


class Ingested(Base):
    """The key of every source event already ingested (so a replay counts nothing twice)."""

    __tablename__ = "ingested"
    key: Mapped[str] = mapped_column(String(40), primary_key=True)  # sha1 of the event's identity


class Cursor(Base):
    """How far each source has been read (an optimisation: replays from 0 are safe, only slower)."""

    __tablename__ = "cursors"
    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    position: Mapped[str] = mapped_column(String(64))


class Alert(Base):
    """A hot-issue alert: one row per surge of one topic (analytics.alerts)."""

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("topic", "started_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(String(64), index=True)
    level: Mapped[str] = mapped_column(String(8))  # hourly | daily: the check that fired first
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)  # first hour of the surge
    detected_at: Mapped[dt.datetime] = mapped_column(DateTime)  # end of the hour it was detected in
    last_signal_at: Mapped[dt.datetime] = mapped_column(DateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    count: Mapped[int] = mapped_column(Integer)  # sessions on the topic in the detecting window
    expected: Mapped[float] = mapped_column(Float)
    p_value: Mapped[float] = mapped_column(Float)
    total_count: Mapped[int] = mapped_column(Integer, default=0)  # sessions on the topic while the alert was open
    total_expected: Mapped[float] = mapped_column(Float, default=0.0)
    examples: Mapped[list] = mapped_column(JSON, default=list)  # masked citizen questions
    entries: Mapped[list] = mapped_column(JSON, default=list)  # [[entry id, times answered], ...]
    notified: Mapped[str] = mapped_column(String(64), default="")  # webhook result


class AnalyticsStore:
    """Owns the engine and sessions of the analytics database."""

    def __init__(self, url: str) -> None:
        self.engine: Engine = create_sql_engine(url)  # SQLite: WAL, the dashboard reads while the ingester writes
        Base.metadata.create_all(self.engine)
        add_missing_columns(self.engine, Base.metadata)  # a store made by older code (calls.caller_key …)
        for table in Base.metadata.sorted_tables:  # an index added since the store was made (the dashboard's)
            for index in table.indexes:
                index.create(self.engine, checkfirst=True)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def call(self, fn: Callable[[Session], T]) -> T:
        """Run fn in one transaction."""
        with self.sessions.begin() as s:
            return fn(s)

    def dispose(self) -> None:
        """Close the connections."""
        self.engine.dispose()


def buckets(at: dt.datetime) -> dict[str, object]:
    """The grouping columns of a local time."""
    return {"day": at.strftime("%Y-%m-%d"), "month": at.strftime("%Y-%m"), "hour": at.hour}
