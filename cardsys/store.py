"""The card system's database: one URL (SQLite by default, PostgreSQL in production), tables created on start."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, delete, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from cardsys.models import AuditEntry, Base, Card, Citizen, SourceFailure, VerifiedSession
from cardsys.settings import redact_url


class CardStore:
    """Owns the engine; `session()` is one transaction, committed on success and rolled back on error."""

    def __init__(self, url: str, create: bool = True) -> None:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        self.engine: Engine = create_engine(url, pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
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


def _sqlite_pragmas(conn, _record) -> None:  # noqa: ANN001 - DBAPI connection of any driver
    cur = conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()
