"""A scratch PostgreSQL database for the tests that must hold on PostgreSQL as well as on SQLite."""
from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url


def scratch_database(admin_url: str, prefix: str, variable: str) -> Iterator[str]:
    """Yield the SQLAlchemy URL of a fresh, empty database on `admin_url`'s server and drop it afterwards.

    Skipped without a reachable server, except in CI (CI=true), where that is a failure; `variable` names the
    environment variable that points the tests at another server.
    """
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as e:
        message = f"PostgreSQL is not reachable at {admin_url} ({str(e).strip()}); start it or set {variable}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(admin_url).set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
