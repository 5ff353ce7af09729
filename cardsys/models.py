"""Tables of the card information system: citizens, cards, verified sessions and the audit log.

Timestamps are naive UTC (portable across SQLite and PostgreSQL); `cardsys.results` shows
them to citizens in Beijing time.
"""
from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import CheckConstraint, Date, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> dt.datetime:
    """UTC now without tzinfo."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class CardState(str, enum.Enum):
    """Life cycle of a social-security card, in the words the card system uses."""

    APPLIED = "申请受理"
    MAKING = "制卡中"
    SHIPPED = "已寄送网点"
    READY = "待领取"
    COLLECTED = "已领取"
    ACTIVE = "正常"
    TEMP_LOSS = "临时挂失"
    FORMAL_LOSS = "正式挂失"
    CANCELLED = "注销"
    LOCKED = "锁定"


CARD_STATES: tuple[str, ...] = tuple(s.value for s in CardState)


class Base(DeclarativeBase):
    """Declarative base of the card system's tables."""


class Citizen(Base):
    """A card holder as registered with the card system."""

    __tablename__ = "cardsys_citizens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id_number: Mapped[str] = mapped_column(String(18), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)

    cards: Mapped[list[Card]] = relationship(back_populates="citizen", order_by="Card.applied_at")


class Card(Base):
    """One social-security card (a citizen may hold an old cancelled card and a new one)."""

    __tablename__ = "cardsys_cards"
    __table_args__ = (CheckConstraint("status IN (" + ", ".join(f"'{s}'" for s in CARD_STATES) + ")", name="ck_cardsys_card_status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    citizen_id: Mapped[int] = mapped_column(ForeignKey("cardsys_citizens.id"), index=True)
    card_number: Mapped[str] = mapped_column(String(32), unique=True)
    status: Mapped[str] = mapped_column(String(8))
    bank: Mapped[str] = mapped_column(String(32))
    outlet: Mapped[str] = mapped_column(String(64))
    applied_at: Mapped[dt.datetime] = mapped_column(DateTime)
    made_at: Mapped[dt.datetime | None] = mapped_column(DateTime, default=None)
    shipped_at: Mapped[dt.datetime | None] = mapped_column(DateTime, default=None)
    collected_at: Mapped[dt.datetime | None] = mapped_column(DateTime, default=None)
    expires_at: Mapped[dt.date | None] = mapped_column(Date, default=None)  # a date: cards expire on a day
    loss_reported_at: Mapped[dt.datetime | None] = mapped_column(DateTime, default=None)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    citizen: Mapped[Citizen] = relationship(back_populates="cards")


class VerifiedSession(Base):
    """Proof that a citizen passed verification in one conversation; the token itself is never stored."""

    __tablename__ = "cardsys_verified_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the handle's token
    citizen_id: Mapped[int] = mapped_column(ForeignKey("cardsys_citizens.id"), index=True)
    conversation_id: Mapped[str] = mapped_column(String(128), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime, default=None)


class AuditEntry(Base):
    """Who did what to whose card data, when, through which channel; `detail` is always masked."""

    __tablename__ = "cardsys_audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(32))  # "bot", "seed", an agent's login…
    channel: Mapped[str] = mapped_column(String(16))  # web, phone, …
    conversation_id: Mapped[str] = mapped_column(String(128), index=True)
    action: Mapped[str] = mapped_column(String(32), index=True)  # verify, card_status, temporary_loss…
    citizen_id: Mapped[int | None] = mapped_column(ForeignKey("cardsys_citizens.id"), index=True, default=None)
    detail: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[str] = mapped_column(String(32))  # ok, mismatch, refused, …


class SourceFailure(Base):
    """A failed verification from one source (the web client's address, the caller's number), for the per-source limit.

    Only the source's sha256 is kept, and only for a day: enough to slow one source down, not to track anyone.
    """

    __tablename__ = "cardsys_source_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source_hash: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, index=True)
