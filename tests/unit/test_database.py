"""common/database.py: every store's SQLite runs in WAL mode with a busy timeout; old databases gain new columns."""
from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from sqlalchemy import text

from analytics.store import AnalyticsStore
from cardsys.store import CardStore
from common.database import SQLITE_BUSY_TIMEOUT_MS, create_sql_engine
from webapp.store import Handoff, Store


def pragmas(engine) -> tuple[str, int]:
    with engine.connect() as conn:
        return conn.execute(text("PRAGMA journal_mode")).scalar(), conn.execute(text("PRAGMA busy_timeout")).scalar()


@pytest.mark.parametrize("open_store", [lambda url: Store(url).engine, lambda url: CardStore(url).engine,
                                        lambda url: AnalyticsStore(url).engine], ids=["webapp", "cardsys", "analytics"])
def test_every_store_opens_sqlite_in_wal_mode_with_a_busy_timeout(tmp_path, open_store):
    engine = open_store(f"sqlite:///{tmp_path}/nested/db.sqlite")
    assert pragmas(engine) == ("wal", SQLITE_BUSY_TIMEOUT_MS)
    engine.dispose()


def test_a_writer_waits_for_another_writers_lock_instead_of_failing(tmp_path):
    path = tmp_path / "locked.db"
    engine = create_sql_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    holder = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock…
    holder.execute("INSERT INTO t VALUES (1)")
    threading.Timer(0.5, holder.commit).start()  # …for half a second
    started = time.monotonic()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO t VALUES (2)"))
    assert time.monotonic() - started >= 0.4
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 2
    holder.close()
    engine.dispose()


def test_an_existing_database_gains_the_new_handoff_columns(tmp_path):
    path = tmp_path / "old.db"
    con = sqlite3.connect(path)  # the hand-offs table as the previous release created it
    con.executescript("""
        CREATE TABLE conversations (id VARCHAR(64) PRIMARY KEY, channel VARCHAR(16), mode VARCHAR(16),
            awaiting_rating BOOLEAN, created_at DATETIME, updated_at DATETIME);
        CREATE TABLE handoffs (id INTEGER PRIMARY KEY AUTOINCREMENT, conversation_id VARCHAR(64), channel VARCHAR(16),
            queue VARCHAR(16), priority INTEGER, reason VARCHAR(200), summary TEXT, slots JSON, status VARCHAR(16),
            agent VARCHAR(64), created_at DATETIME, claimed_at DATETIME, resolved_at DATETIME);
        INSERT INTO conversations VALUES ('old-conv-0001', 'web', 'human', 0, '2026-01-05 09:00:00', '2026-01-05 09:00:00');
        INSERT INTO handoffs VALUES (1, 'old-conv-0001', 'web', '社保卡', 0, '', '', '{}', 'queued', NULL,
            '2026-01-05 09:00:00', NULL, NULL);
    """)
    con.close()
    store = Store(f"sqlite:///{path}")
    h = store.call(lambda s: s.get(Handoff, 1))
    assert (h.status, h.queued_at, h.workorder_id) == ("queued", None, None)
    store.engine.dispose()
