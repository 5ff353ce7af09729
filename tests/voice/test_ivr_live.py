"""The keypad menu follows what supervisors publish in the desk (KB_DATABASE_URL), on a real SQLite file.

Publications go through knowledge/editorial.py as the desk makes them (propose reviewed by a supervisor,
then publish; retire). Without KB_DATABASE_URL the menu is the content files', read once.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from common.database import create_sql_engine
from knowledge import editorial
from knowledge.schema import load_entries
from tests.voice.doubles import MediaStreamCaller, ScriptedBot, ToneEngine, serve
from tests.voice.test_media_stream import saved_call
from voice.app import create_app
from voice.engines.desk import InMemoryHandoffDesk
from voice.engines.synthesis import SpeechCache
from voice.ivr.live import LiveMenu, PublishedContent
from voice.ivr.menu import Answer, GeneratedMenu, build_menu, load_layout, walk
from voice.session import Services
from voice.settings import ListenTimings, Settings, SettingsError
from voice.speech_text import reply_text, split_sentences
from voice.store import CallStore

NEW_ANSWER = "社保卡密码忘了，请带身份证到任一社保网点重置，也可以在电子社保卡里重置。"


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A desk database seeded from the content files once (about 5 s); each test works on a copy."""
    path = tmp_path_factory.mktemp("desk") / "desk.db"
    PublishedContent(f"sqlite:///{path}").sync_files()
    checkpoint(path)
    return path


@pytest.fixture
def desk_url(seeded: Path, tmp_path: Path) -> str:
    copy = tmp_path / "desk.db"
    shutil.copy(seeded, copy)
    return f"sqlite:///{copy}"


@pytest.fixture(scope="module")
def files_menu() -> GeneratedMenu:
    return build_menu(load_entries(), load_layout())


def checkpoint(path: Path) -> None:
    """Everything written into the database file itself (WAL emptied), as a copy or a byte edit needs it."""
    engine = create_sql_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    engine.dispose()


@contextmanager
def desk(url: str) -> Iterator[Session]:
    """A transaction on the knowledge tables, as the web app's desk opens one."""
    engine = create_sql_engine(url)
    try:
        with sessionmaker(engine, expire_on_commit=False).begin() as s:
            yield s
    finally:
        engine.dispose()


def publish_voice_answer(url: str, entry_id: str, voice_answer: str) -> None:
    """An editor's change of the voice answer, reviewed and published by a supervisor."""
    with desk(url) as s:
        current = next(e for e in editorial.published_entries(s) if e.id == entry_id)
        head = s.get(editorial.EntryRow, entry_id).head  # type: ignore[union-attr]
        saved = editorial.propose(s, entry_id, head, {**editorial.data_of(current), "voice_answer": voice_answer},
                                  "editor1", "电话答复更新", reviewed_by="supervisor1")
        editorial.publish(s, saved.revision["rev"], "supervisor1")


def settings_for(tmp_path: Path, url: str = "", watch_s: float = 5.0) -> Settings:
    return Settings(handoff_backend="local", db_path=tmp_path / "calls.sqlite3", kb_database_url=url,
                    kb_watch_seconds=watch_s, timings=ListenTimings(no_input_timeout_ms=15000))


def answers(menu: GeneratedMenu) -> dict[str, tuple[str, str]]:
    """entry id → (keys that reach it, what the caller hears)."""
    return {option.entry_id: (keys, option.voice_answer) for keys, option in walk(menu.root) if isinstance(option, Answer)}


def password_question(menu: GeneratedMenu) -> tuple[str, Answer]:
    """The first question under 社保卡业务 › 社保卡密码和解锁, and the keys that reach it."""
    return next((keys, option) for keys, option in walk(menu.root) if keys.startswith("13") and isinstance(option, Answer))


# --- with KB_DATABASE_URL -------------------------------------------------------------------

def test_the_menu_is_built_from_the_published_entries_seeded_from_the_files(tmp_path: Path,
                                                                            files_menu: GeneratedMenu) -> None:
    url = f"sqlite:///{tmp_path / 'fresh' / 'desk.db'}"  # no tables yet: the gateway creates and seeds them
    live = LiveMenu(settings_for(tmp_path, url))
    menu = live.load()
    with desk(url) as s:
        stamp, published = editorial.stamp(s), editorial.published_entries(s)
    assert [e.id for e in published] == [e.id for e in load_entries()]
    assert live.stamp == stamp and menu.content == f"publication {stamp}"
    assert menu.root == files_menu.root  # untouched content: the same menu as from the files
    assert live.refresh() is None  # nothing published since


def test_a_published_voice_answer_is_what_the_rebuilt_menu_answers(tmp_path: Path, desk_url: str) -> None:
    live = LiveMenu(settings_for(tmp_path, desk_url))
    before = live.load()
    keys, question = password_question(before)
    assert question.voice_answer != NEW_ANSWER
    publish_voice_answer(desk_url, question.entry_id, NEW_ANSWER)
    after = live.refresh()
    assert after is not None and live.menu is after
    assert answers(after)[question.entry_id] == (keys, NEW_ANSWER)  # same keys, the new words
    assert answers(before)[question.entry_id] == (keys, question.voice_answer)  # the old menu object is unchanged
    assert after.content == f"publication {live.stamp}" != before.content
    assert live.refresh() is None  # the stamp did not move again: no rebuild


def test_a_retired_entry_leaves_the_menu(tmp_path: Path, desk_url: str) -> None:
    live = LiveMenu(settings_for(tmp_path, desk_url))
    before = live.load()
    keys, question = password_question(before)
    with desk(desk_url) as s:
        editorial.retire(s, question.entry_id, "supervisor1", "政策已调整")
    after = live.refresh()
    assert after is not None
    assert question.entry_id not in answers(after) and question.entry_id in answers(before)
    # exactly the menu of the content without that entry: another question moved up to its key
    without = [e for e in load_entries() if e.id != question.entry_id]
    assert after.root == build_menu(without, load_layout()).root
    moved_up = dict(walk(after.root))[keys]
    assert isinstance(moved_up, Answer) and moved_up.entry_id != question.entry_id


def test_a_publication_that_makes_no_menu_keeps_the_current_one(tmp_path: Path, desk_url: str,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    live = LiveMenu(settings_for(tmp_path, desk_url))
    before = live.load()
    with desk(desk_url) as s:
        for entry in editorial.published_entries(s):
            editorial.retire(s, entry.id, "supervisor1")
    with caplog.at_level(logging.WARNING, logger="voice.ivr.live"):
        assert live.refresh() is None and live.refresh() is None
    assert live.menu is before and before.root.options  # never an empty menu
    assert [r.getMessage() for r in caplog.records if "gives no menu" in r.getMessage()] != []
    assert len(caplog.records) == 1  # said once, not at every check


# --- a database that is away ----------------------------------------------------------------

def test_a_database_away_at_start_serves_the_files_then_the_desk_when_it_is_there(
        tmp_path: Path, seeded: Path, files_menu: GeneratedMenu, caplog: pytest.LogCaptureFixture) -> None:
    mount = tmp_path / "mnt"
    mount.write_text("not mounted")  # the database's folder is a file: nothing can be opened there
    url = f"sqlite:///{mount / 'desk.db'}"
    live = LiveMenu(settings_for(tmp_path, url))
    with caplog.at_level(logging.WARNING, logger="voice.ivr.live"):
        menu = live.load()  # the gateway starts all the same
        assert live.refresh() is None and live.refresh() is None
    assert menu.content == "content files" and menu.root == files_menu.root and live.stamp is None
    assert live.menu is menu
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and "gave no menu" in warned[0]  # said once, not at every check
    # the database comes up, holding a publication made meanwhile
    mount.unlink()
    mount.mkdir()
    shutil.copy(seeded, mount / "desk.db")
    keys, question = password_question(menu)
    publish_voice_answer(url, question.entry_id, NEW_ANSWER)
    with caplog.at_level(logging.INFO, logger="voice.ivr.live"):
        after = live.refresh()
    assert after is not None and after.content.startswith("publication ")
    assert answers(after)[question.entry_id] == (keys, NEW_ANSWER)
    assert any("reachable again" in r.getMessage() for r in caplog.records)


def test_a_database_that_breaks_keeps_the_current_menu(tmp_path: Path, desk_url: str,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    live = LiveMenu(settings_for(tmp_path, desk_url))
    before = live.load()
    keys, question = password_question(before)
    publish_voice_answer(desk_url, question.entry_id, NEW_ANSWER)
    path = Path(desk_url.removeprefix("sqlite:///"))
    checkpoint(path)
    with path.open("r+b") as f:
        f.write(b"\0broken!" * 12)  # the header: "file is not a database"
    with caplog.at_level(logging.WARNING, logger="voice.ivr.live"):
        assert live.refresh() is None and live.refresh() is None
    assert live.menu is before and live.stamp is not None
    assert answers(live.menu)[question.entry_id] == (keys, question.voice_answer)  # callers keep what they had
    assert len(caplog.records) == 1 and "unreachable" in caplog.records[0].getMessage()


def test_a_malformed_database_url_is_refused_at_start() -> None:
    with pytest.raises(SettingsError, match="KB_DATABASE_URL"):
        Settings.from_env({"VOICE_HANDOFF": "local", "KB_DATABASE_URL": "mysql://kb@db/kb"})
    s = Settings.from_env({"VOICE_HANDOFF": "local", "KB_DATABASE_URL": "postgresql+psycopg://kb:pw@db/kb",
                           "KB_WATCH_SECONDS": "2"})
    assert (s.kb_database_url, s.kb_watch_seconds) == ("postgresql+psycopg://kb:pw@db/kb", 2.0)
    assert "pw@" not in repr(s)


# --- without KB_DATABASE_URL ----------------------------------------------------------------

def test_without_the_setting_the_files_are_read_once(tmp_path: Path, files_menu: GeneratedMenu) -> None:
    settings = Settings.from_env({"VOICE_HANDOFF": "local"})
    assert (settings.kb_database_url, settings.kb_watch_seconds) == ("", 5.0)
    live = LiveMenu(settings_for(tmp_path))
    menu = live.load()
    assert live.published is None and menu.content == "content files" and menu.root == files_menu.root
    assert live.refresh() is None and live.menu is menu
    assert not (tmp_path / "desk.db").exists()

    async def never(menu: GeneratedMenu) -> None:
        raise AssertionError("nothing to swap without KB_DATABASE_URL")

    asyncio.run(asyncio.wait_for(live.watch(never), 1))  # returns at once: nothing to watch


# --- the gateway: a publication reaches callers ---------------------------------------------

@pytest.mark.asyncio
async def test_a_call_hears_the_published_answer_once_it_is_back_at_the_main_menu(tmp_path: Path,
                                                                                    desk_url: str) -> None:
    """A call in progress keeps the levels it went down; back at the main menu it takes the new menu."""
    settings = settings_for(tmp_path, desk_url, watch_s=0.05)
    live = LiveMenu(settings)
    menu = live.load()
    keys, question = password_question(menu)
    engine = ToneEngine()
    services = Services(settings=settings, recognizers=None, speech=SpeechCache(engine), bot=ScriptedBot(),
                        desk=InMemoryHandoffDesk(), store=CallStore(settings.db_path), menu=menu, live_menu=live)
    new_sentences = split_sentences(reply_text({"text": NEW_ANSWER}))

    async def health(http: httpx.AsyncClient, port: int) -> dict:
        return (await http.get(f"http://127.0.0.1:{port}/health")).json()

    async with serve(create_app(services, name=f"voice_{uuid.uuid4().hex[:8]}", audiosocket=False)) as port:
        async with httpx.AsyncClient() as http, MediaStreamCaller(f"ws://127.0.0.1:{port}/media-stream") as caller:
            assert (await health(http, port))["keypad_content"] == menu.content
            await caller.wait_for_audio(0, timeout=10)
            await caller.press(keys[:-1], gap_s=0.3)  # down to the password questions
            await asyncio.to_thread(publish_voice_answer, desk_url, question.entry_id, NEW_ANSWER)
            for _ in range(100):  # the watch reads the stamp every 0.05 s and rebuilds in a worker thread
                if (await health(http, port))["keypad_content"] != menu.content:
                    break
                await asyncio.sleep(0.1)
            assert services.menu is live.menu and services.menu is not menu
            assert set(new_sentences) <= set(engine.texts)  # synthesised before the swap: callers hear it at once
            await caller.press(keys[-1], gap_s=0.3)  # still in the level it went down to: the old answer
            await caller.press("***", gap_s=0.3)  # back to the questions, 社保卡业务, the main menu: the new menu
            await caller.press(keys, gap_s=0.3)
            await caller.press("0", gap_s=0.3)
            await asyncio.wait_for(caller.closed.wait(), timeout=20)
        saved = await saved_call(services.store, caller.call_sid)
    heard = [line["text"] for line in saved["transcript"] if line["role"] == "bot"]
    old, new = reply_text({"text": question.voice_answer}), reply_text({"text": NEW_ANSWER})
    assert [t.startswith(new) for t in heard if t.startswith((old, new))] == [False, True], heard
