"""The card system's database: one URL (SQLite by default, PostgreSQL in production), tables created on start."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from cardsys.models import AuditEntry, Base, Card, Citizen, SourceFailure, VerifiedSession
from cardsys.settings import redact_url
from common.database import create_sql_engine


class CardStore:
    """Owns the engine; `session()` is one transaction, committed on success and rolled back on error."""

    def __init__(self, url: str, create: bool = True) -> None:
        self.url = url
        # SQLite: WAL, a busy timeout, foreign keys, and SQLite's FULL synchronous mode (a card transaction
        # survives a power cut too)
        self.engine: Engine = create_sql_engine(url, synchronous=None, foreign_keys=True)
        if create:
            try:
                Base.metadata.create_all(self.engine)
            except OperationalError as e:
                raise RuntimeError(f"Cannot open the card database at {redact_url(url)}; check CARDSYS_DATABASE_URL and that the server is running.") from e
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session inside one transaction."""
        with self._sessions.begin() as s:
            yield s

    def clear(self) -> None:
        """Delete every row of the card system's tables (seed --reset and tests)."""
        with self.session() as s:
            for model in (AuditEntry, SourceFailure, VerifiedSession, Card, Citizen):
                s.execute(delete(model))

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()
