"""The web app with the agent desk, on its own SQLite file, Rasa replaced by an echo (desk service tests);
the web app's database on SQLite and on the local PostgreSQL (tests that must hold on both)."""
from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.postgres import scratch_database
from webapp.app import create_app
from webapp.rasa_client import RasaClient
from webapp.settings import Settings


@pytest.fixture()
def sources(tmp_path):
    """The analytics sources and store of a supervision test, under this test's folder (nothing ingested yet)."""
    from tests.analytics.conftest import Sources

    folder = tmp_path / "analytics"
    folder.mkdir()
    return Sources(folder / "rasa_events.db", f"sqlite:///{folder / 'webapp.db'}", folder / "voice_calls.sqlite3",
                   f"sqlite:///{folder / 'analytics.db'}")


@pytest.fixture()
def app(tmp_path, monkeypatch):
    async def fake_send(self, sender, text, metadata=None, channel="web"):
        return [{"recipient_id": sender, "text": "机器人回答：" + text}]

    monkeypatch.setattr(RasaClient, "send", fake_send)
    return create_app(Settings(database_url=f"sqlite:///{tmp_path}/d.db"), name=f"d{abs(hash(tmp_path)) % 10**8}")


PG_ADMIN_URL = os.environ.get("WEBAPP_TEST_POSTGRES_URL",
                              os.environ.get("CARDSYS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this module (SQLAlchemy URL), dropped at the end.

    Skipped without a reachable server, except in CI (CI=true), where that is a failure.
    """
    yield from scratch_database(PG_ADMIN_URL, "webapp_test", "WEBAPP_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """The web app's database, once on SQLite (a file) and once on PostgreSQL (emptied before the test)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/webapp.db"
    url = request.getfixturevalue("postgres_url")
    from sqlalchemy import create_engine

    from webapp.store import Base

    engine = create_engine(url)
    Base.metadata.drop_all(engine)  # every test starts from an empty database, as on SQLite
    engine.dispose()
    return url
