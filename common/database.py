"""Opening our SQL databases: one URL each, SQLite by default (embedded), PostgreSQL in production.

Every service opens its engine here, so SQLite behaves the same everywhere: WAL (readers never block
the writer) and a busy timeout (a writer waits for another's lock instead of failing at once).
Neither makes a read-then-write safe: state changes two people can race on are conditional UPDATEs
(see webapp/handoffs.py), which both databases apply atomically.
"""
from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from sqlalchemy import MetaData, create_engine, event, inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

log = logging.getLogger(__name__)
SQLITE_BUSY_TIMEOUT_MS = 10_000  # a writer waits this long for another writer's lock before "database is locked"


def utc_now() -> dt.datetime:
    """UTC now without tzinfo, as our DateTime columns hold it (portable across SQLite and PostgreSQL)."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def create_sql_engine(url: str, *, synchronous: str | None = "NORMAL", foreign_keys: bool = False,
                      create_folder: bool = True) -> Engine:
    """An engine for a database URL; a SQLite file runs in WAL mode with a busy timeout.

    `synchronous` (SQLite only): NORMAL survives a crash of the process (WAL), None keeps SQLite's FULL,
    which also survives a power cut (the card system's transactions).
    """
    if create_folder and url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        def pragmas(conn, _record) -> None:  # noqa: ANN001 - DBAPI connection of any driver
            cur = conn.cursor()
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")  # first: switching to WAL may wait too
            cur.execute("PRAGMA journal_mode=WAL")
            if synchronous:
                cur.execute(f"PRAGMA synchronous={synchronous}")
            if foreign_keys:
                cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
        event.listen(engine, "connect", pragmas)
    return engine


def add_missing_columns(engine: Engine, metadata: MetaData) -> list[str]:
    """Add the nullable columns a model gained since its table was created (ALTER TABLE … ADD COLUMN).

    `create_all` creates missing tables only; this keeps an existing database (a production PostgreSQL,
    a developer's SQLite file) readable by the new code. Returns "table.column" for each column added.
    """
    inspector = inspect(engine)
    added: list[str] = []
    with engine.begin() as conn:
        for table in metadata.sorted_tables:
            if not inspector.has_table(table.name):
                continue
            have = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name in have:
                    continue
                if not column.nullable:
                    raise RuntimeError(f"the table {table.name} lacks the column {column.name}, which cannot be added "
                                       "to existing rows; migrate the database by hand")
                kind = column.type.compile(dialect=engine.dialect)
                conn.execute(text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}'))
                added.append(f"{table.name}.{column.name}")
    for name in added:
        log.warning("database: added the column %s", name)
    return added


def is_transient(exc: BaseException) -> bool:
    """Whether a database error may pass if the transaction is tried again (lock, lost connection, restart)."""
    return isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError) and bool(exc.connection_invalidated))
