"""Persistence of the web app: conversations, transcripts, hand-offs, agents, work orders, ratings.

SQLAlchemy with one URL: SQLite by default (embedded), PostgreSQL in production. Calls are
synchronous and short; the web app runs them in a worker thread (see `Store.run`).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, func, select, text, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from common.database import add_missing_columns, create_sql_engine, is_transient
from common.database import utc_now as now  # noqa: F401  (imported from here by the web app's services)

T = TypeVar("T")
log = logging.getLogger(__name__)
# a transaction that failed on a lock or a lost connection is tried again after these pauses (seconds)
RETRY_PAUSES = (0.2, 0.8)



class Base(DeclarativeBase):
    """Declarative base of the web app's tables."""


class Conversation(Base):
    """One citizen conversation (web chat session or phone call)."""

    __tablename__ = "conversations"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), default="web")
    # bot: the bot answers; human: queued for or served by an agent (the bot stays silent);
    # message: off hours, the next line is filed as a work order; callback: the next line is added to the
    # callback work order the citizen just asked for (webapp/handoffs.py)
    mode: Mapped[str] = mapped_column(String(16), default="bot")
    awaiting_rating: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=now)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=now, onupdate=now)


class Message(Base):
    """One line of a transcript. Citizen text is stored with personal data masked."""

    __tablename__ = "messages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))  # citizen | bot | agent | system
    text: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[dict] = mapped_column(JSON, default=dict)  # buttons, custom, agent name…
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=now, index=True)


class Handoff(Base):
    """A request for a human expert seat, from the moment it is queued until it is resolved."""

    __tablename__ = "handoffs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16), default="web")
    queue: Mapped[str] = mapped_column(String(16), index=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)  # higher first
    reason: Mapped[str] = mapped_column(String(200), default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    slots: Mapped[dict] = mapped_column(JSON, default=dict)  # masked
    # open: queued | claimed; closed: resolved | timed_out | callback | abandoned | returned (webapp/handoffs.py)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    agent: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=now)
    claimed_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)  # when it closed, however
    # when it (re-)entered its queue: the waiting limit counts from here (None: created_at; a transfer sets it)
    queued_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    workorder_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the callback work order, if any

    # at most one open hand-off per conversation, whoever asks at the same moment (bot, gateway, a double click)
    __table_args__ = (Index("uq_handoffs_open_conversation", "conversation_id", unique=True,
                            sqlite_where=text("status IN ('queued', 'claimed')"),
                            postgresql_where=text("status IN ('queued', 'claimed')")),)


class Agent(Base):
    """An expert-seat account (role agent or supervisor) with the queues it serves."""

    __tablename__ = "agents"
    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16), default="agent")
    queues: Mapped[list] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class DeskSession(Base):
    """A desk login, kept on the server so it can be ended before its cookie expires.

    The cookie names the session by a random id (signed); only the id's sha256 is stored, so a copy
    of this table opens nothing. Logging out ends this session; a password change, disabling the
    account or `python -m webapp.accounts logout` end all of the account's sessions.
    """

    __tablename__ = "desk_sessions"
    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=now)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    address: Mapped[str] = mapped_column(String(64), default="")


class LoginFailure(Base):
    """A failed desk login, in the shared database so every web-app replica counts it (auth.LoginThrottle).

    Only a hash of the typed user name or the client address is kept: whatever was typed as a name
    (sometimes a password or a phone number) is not stored. Rows older than the window are deleted.
    """

    __tablename__ = "login_failures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(8))  # user | address
    key_hash: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)


class WorkOrder(Base):
    """A 工单 for what cannot be solved on the spot, tracked to closure within its deadline."""

    __tablename__ = "work_orders"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    category: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    detail: Mapped[str] = mapped_column(Text, default="")
    contact: Mapped[str] = mapped_column(String(64), default="")  # masked for display; raw kept nowhere else
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)  # open|in_progress|closed
    deadline: Mapped[dt.datetime] = mapped_column(DateTime)
    created_by: Mapped[str] = mapped_column(String(64), default="system")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=now)
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    resolution: Mapped[str] = mapped_column(Text, default="")


class Rating(Base):
    """The citizen's satisfaction rating after a human conversation."""

    __tablename__ = "ratings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(String(64), index=True)
    handoff_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    score: Mapped[str] = mapped_column(String(8))  # 满意|基本满意|不满意
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=now)


class AuditEvent(Base):
    """Who did what at the desk: logins, opening a conversation, claiming, replying, work orders."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=now, index=True)
    agent: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(64), default="")  # conversation, hand-off or work order
    detail: Mapped[str] = mapped_column(String(200), default="")  # masked


class Store:
    """Owns the engine and sessions; `run` executes a function with a session in a worker thread."""

    def __init__(self, url: str) -> None:
        self.engine = create_sql_engine(url)
        Base.metadata.create_all(self.engine)
        add_missing_columns(self.engine, Base.metadata)
        self._add_missing_indexes()
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def _add_missing_indexes(self) -> None:
        """Indexes added since a table was created (create_all creates them with new tables only)."""
        for index in Handoff.__table__.indexes:
            try:
                index.create(self.engine, checkfirst=True)
            except IntegrityError:  # rows from before the rule break it: the rule waits until they are closed
                log.warning("database: index %s not created: close the duplicate open hand-offs first", index.name)

    async def run_once_more_on_conflict(self, fn: Callable[[Session], T]) -> T:
        """`run`, and once more when a simultaneous transaction inserted the same row first (IntegrityError):
        the second attempt sees that row and uses it."""
        try:
            return await self.run(fn)
        except IntegrityError:
            return await self.run(fn)

    def call(self, fn: Callable[[Session], T]) -> T:
        """Run fn in a transaction (synchronously)."""
        with self.sessions.begin() as s:
            return fn(s)

    async def run(self, fn: Callable[[Session], T]) -> T:
        """Run fn in a transaction in a worker thread (keeps the event loop free).

        A transaction that fails on a lock or a lost connection is rolled back and tried again (RETRY_PAUSES);
        the last error is raised. fn must only touch the database: it may run more than once.
        """
        for pause in (*RETRY_PAUSES, None):
            try:
                return await asyncio.to_thread(self.call, fn)
            except SQLAlchemyError as exc:
                if pause is None or not is_transient(exc):
                    raise
                log.warning("database busy or unreachable (%s); trying again in %.1f s", type(exc).__name__, pause)
                await asyncio.sleep(pause)
        raise AssertionError("unreachable")

    # --- conversations and transcripts ------------------------------------------------------
    @staticmethod
    def ensure_conversation(s: Session, cid: str, channel: str = "web") -> Conversation:
        """The conversation row, created on first use."""
        conv = s.get(Conversation, cid)
        if conv is None:
            conv = Conversation(id=cid, channel=channel)
            s.add(conv)
            s.flush()
        return conv

    @staticmethod
    def add_message(s: Session, cid: str, role: str, text: str, payload: dict | None = None,
                    channel: str = "web") -> dict[str, Any]:
        """Append one transcript line and return it as a dict."""
        Store.ensure_conversation(s, cid, channel)
        m = Message(conversation_id=cid, role=role, text=text or "", payload=payload or {})
        s.add(m)
        s.flush()
        return message_dict(m)

    @staticmethod
    def transcript(s: Session, cid: str, limit: int = 500) -> list[dict[str, Any]]:
        """The last `limit` lines of a conversation, oldest first."""
        rows = s.scalars(select(Message).where(Message.conversation_id == cid)
                         .order_by(Message.id.desc()).limit(limit)).all()
        return [message_dict(m) for m in reversed(rows)]

    @staticmethod
    def count(s: Session, model: type[Base], *where) -> int:
        """Rows of a table matching the conditions."""
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


def set_where(s: Session, model: type[Base], *where: Any, **values: Any) -> int:
    """UPDATE model SET values WHERE …: the number of rows changed (0 = someone else changed them first)."""
    result = s.execute(update(model).where(*where).values(**values).execution_options(synchronize_session=False))
    return result.rowcount


def message_dict(m: Message) -> dict[str, Any]:
    """A transcript line as JSON-ready dict."""
    return {"id": m.id, "role": m.role, "text": m.text, "payload": m.payload or {},
            "ts": m.created_at.isoformat() + "Z"}


def dumps(obj: Any) -> str:
    """JSON with Chinese kept readable."""
    return json.dumps(obj, ensure_ascii=False, default=str)
