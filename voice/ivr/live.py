"""The keypad menu callers hear next: from the content files, or from what supervisors publish in the desk.

With KB_DATABASE_URL the menu is built from the desk's published entries (knowledge/editorial.py: the
tables are created where missing and seeded from the content files, as the action server does). Every
KB_WATCH_SECONDS the gateway reads the publication stamp; when it moved (a supervisor published or
retired an entry), the menu is rebuilt in a worker thread and swapped in: calls that start afterwards
hear it, and a call in progress takes it the next time it comes back to the main menu (voice/ivr/service.py),
so a key always means what the caller last heard. A database that is away, or published content that
makes no menu, keeps the menu callers have (a warning in the log). Without KB_DATABASE_URL the content
files are read once, at start, as before.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

from common.settings import redact_url
from knowledge.schema import KbEntry
from voice.ivr.menu import LAYOUT_PATH, GeneratedMenu, MenuError, load_menu
from voice.settings import Settings

log = logging.getLogger(__name__)
EVERY_SECOND = 1.0  # KB_WATCH_SECONDS=0 (the action server: on every question): the gateway reads the stamp every second


def _why(exc: BaseException) -> str:
    """An exception in one line (a database error without its SQL)."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


class PublishedContent:
    """The desk's knowledge tables at one database URL, as the keypad menu reads them.

    `seed` (the gateway): the tables are created where missing and the content files synced in first, like
    the action server does; without it (`python -m voice.ivr`, read-only) nothing is written.
    """

    def __init__(self, url: str, content_dir: Path | None = None, seed: bool = True) -> None:
        self.url, self.content_dir, self.seed = url, content_dir, seed
        self.shown = redact_url(url)
        self._sessions = None  # sessionmaker, made on first use

    def _db(self):  # noqa: ANN202 - a SQLAlchemy session context
        """A transaction on the knowledge tables."""
        if self._sessions is None:
            from sqlalchemy.orm import sessionmaker

            from common.database import create_sql_engine
            from knowledge import editorial

            if not self.seed and self.url.startswith("sqlite:///") and not Path(self.url[10:]).is_file():
                raise FileNotFoundError(f"no database at {self.shown}")  # read-only: never create one here
            engine = create_sql_engine(self.url, create_folder=self.seed)
            try:
                if self.seed:
                    editorial.create_tables(engine)
            except Exception:
                engine.dispose()
                raise
            self._sessions = sessionmaker(engine, expire_on_commit=False)
        return self._sessions.begin()

    def sync_files(self) -> None:
        """The content files into the tables (idempotent; another process seeding at the same moment is fine)."""
        from sqlalchemy.exc import IntegrityError

        from knowledge import editorial
        from knowledge.schema import CONTENT_DIR, ContentError, content_fingerprint, load_entries

        folder = self.content_dir or CONTENT_DIR
        try:
            entries = load_entries(folder)
        except ContentError as exc:  # a broken content file must not stop the menu following the desk
            log.warning("keypad menu: the content files cannot be synced into %s (%s); the published entries "
                        "are used as they are", self.shown, exc)
            return
        try:
            with self._db() as s:
                counts = editorial.sync_from_files(s, entries, content_fingerprint(folder))
        except IntegrityError:  # another replica (or the action server) synced the same files at the same moment
            log.info("keypad menu: knowledge files were synced by another process at the same time")
            return
        if counts["created"] or counts["updated"] or counts["retired"]:
            log.info("keypad menu: knowledge files synced into %s: %s", self.shown, counts)

    def stamp(self) -> int:
        """The publication stamp (-1 before any content)."""
        from knowledge import editorial

        with self._db() as s:
            return editorial.stamp(s)

    def read(self) -> tuple[int, list[KbEntry]]:
        """The publication stamp and the entries published at it, read in one transaction."""
        from knowledge import editorial

        if self.seed:
            self.sync_files()
        with self._db() as s:
            return editorial.stamp(s), editorial.published_entries(s)


class LiveMenu:
    """Holds the keypad menu and rebuilds it when the desk publishes (see the module docstring)."""

    def __init__(self, settings: Settings, layout_path: Path = LAYOUT_PATH, content_dir: Path | None = None,
                 analytics_url: str | None = None, seed: bool = True) -> None:
        self.settings = settings
        self.layout_path, self.content_dir, self.analytics_url = layout_path, content_dir, analytics_url
        self.published = (PublishedContent(settings.kb_database_url, content_dir, seed)
                          if settings.kb_database_url else None)
        self.menu: GeneratedMenu | None = None
        self.stamp: int | None = None  # the publication the menu was built from (None: the content files)
        self._refused: int | None = None  # a publication that made no menu: not tried again until the stamp moves
        self._away = False  # the database could not be read at the last check (warned once)
        self._lock = threading.Lock()

    @property
    def interval(self) -> float:
        """Seconds between two reads of the publication stamp."""
        return self.settings.kb_watch_seconds or EVERY_SECOND

    def _from_database(self) -> tuple[GeneratedMenu, int]:
        assert self.published is not None
        stamp, entries = self.published.read()
        if not entries:
            raise MenuError(f"nothing is published in {self.published.shown}")
        menu = load_menu(self.layout_path, self.content_dir, self.analytics_url, entries=entries,
                         content=f"publication {stamp}")
        return menu, stamp

    def load(self) -> GeneratedMenu:
        """The first menu (blocking): the published entries, else (database away, no menu) the content files.

        MenuError only when the content files make no menu either, as without KB_DATABASE_URL.
        """
        with self._lock:
            if self.published is not None:
                try:
                    self.menu, self.stamp = self._from_database()
                    return self.menu
                except Exception as exc:  # the phone service starts all the same; the watch takes the desk's later
                    self._away = not isinstance(exc, MenuError)
                    log.warning("keypad menu: the desk's published knowledge in %s gave no menu (%s); "
                                "callers hear the content files' menu until it does", self.published.shown, _why(exc))
            self.menu = load_menu(self.layout_path, self.content_dir, self.analytics_url)
            return self.menu

    def refresh(self) -> GeneratedMenu | None:
        """The menu rebuilt when the publication stamp moved, else None (blocking; never raises)."""
        if self.published is None:
            return None
        with self._lock:
            try:
                stamp = self.published.stamp()
            except Exception as exc:  # the database is away: callers keep the menu they have
                if not self._away:
                    log.warning("keypad menu: knowledge database %s unreachable (%s); callers keep the "
                                "current menu", self.published.shown, _why(exc))
                self._away = True
                return None
            if self._away:
                log.info("keypad menu: knowledge database %s reachable again", self.published.shown)
                self._away = False
            if stamp in (self.stamp, self._refused):
                return None
            try:
                menu, stamp = self._from_database()
            except MenuError as exc:  # e.g. every entry retired: never an empty menu
                self._refused = stamp
                log.warning("keypad menu: publication %d gives no menu (%s); callers keep the current menu",
                            stamp, exc)
                return None
            except Exception as exc:  # the database went away while reading: tried again at the next check
                log.warning("keypad menu: publication %d could not be read (%s); callers keep the current menu",
                            stamp, _why(exc))
                return None
            before = self.stamp
            self.menu, self.stamp, self._refused = menu, stamp, None
        log.info("keypad menu rebuilt from publication %d (was %s): %d services on the main menu, questions "
                 "ranked by %s", stamp, "the content files" if before is None else before,
                 len(menu.root.options), menu.ranked_by)
        return menu

    async def watch(self, swap: Callable[[GeneratedMenu], Awaitable[None]]) -> None:
        """Until cancelled: every `interval`, refresh in a worker thread and hand a rebuilt menu to `swap`."""
        if self.published is None:
            return
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.interval)
            try:
                menu = await loop.run_in_executor(None, self.refresh)
                if menu is not None:
                    await swap(menu)
            except asyncio.CancelledError:
                raise
            except Exception:  # never let the watch die: the next publication is tried again
                log.exception("keypad menu: the rebuilt menu could not be swapped in")
