"""The knowledge base as the action server sees it: loaded once, re-indexed when content changes.

Content updates take effect without retraining Rasa or restarting anything. With KB_DATABASE_URL (the
desk's knowledge tables, knowledge/editorial.py; `make run` points it at the web app's database) the bot
answers with the published entries: every KB_WATCH_SECONDS the publication stamp is read, and when a
supervisor published or retired something the entries are re-indexed in a background thread (only new
or changed texts are embedded again) while the old index keeps answering. The content files seed the
tables and are followed for entries the desk never changed. Without KB_DATABASE_URL the content files
alone are indexed, and a changed file is noticed by its fingerprint the same way.
"""
from __future__ import annotations

import logging
import threading
import time

from actions.settings import Settings, current
from knowledge import editorial
from knowledge.retriever import KnowledgeBase
from knowledge.schema import content_fingerprint, load_entries

log = logging.getLogger(__name__)


class KbService:
    """Holds the current KnowledgeBase and swaps in a new one when the content changes."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings  # None: the action server's settings (actions.settings.current())
        self._kb: KnowledgeBase | None = None
        self._fingerprint = ""
        self._stamp: int | None = None  # the publication stamp indexed (database source)
        self._sessions = None  # sessionmaker of KB_DATABASE_URL, made on first use
        self._embedder = None
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._last_check = 0.0
        self._reindexing = False
        self._started = False
        self.error: str | None = None

    @property
    def settings(self) -> Settings:
        """The settings this service indexes with."""
        return self._settings or current()

    def _load_embedder(self):
        settings = self.settings
        if settings.embedding_model.lower() in ("", "off", "none"):
            return None
        from knowledge.embedding import E5Embedder  # imported lazily: torch is heavy

        try:
            return E5Embedder(settings.embedding_model, threads=settings.embedding_threads,
                              precision=settings.embedding_precision)
        except Exception as exc:  # missing model: answer lexically rather than not at all
            log.error("embedding model unavailable (%s); using lexical retrieval only. Run `make model`.", exc)
            return None

    def _db(self):
        """A transaction on the knowledge tables (created where missing)."""
        if self._sessions is None:
            from sqlalchemy.orm import sessionmaker

            from common.database import create_sql_engine

            engine = create_sql_engine(self.settings.kb_database_url)
            editorial.create_tables(engine)
            self._sessions = sessionmaker(engine, expire_on_commit=False)
        return self._sessions.begin()

    def _sync_files(self, fp: str) -> None:
        """The content files into the tables: new entries, and those the desk never changed (idempotent)."""
        entries = load_entries(self.settings.kb_content_dir)
        try:
            with self._db() as s:
                counts = editorial.sync_from_files(s, entries, fp)
        except Exception as exc:  # another replica synced the same files at the same moment
            from sqlalchemy.exc import IntegrityError
            if not isinstance(exc, IntegrityError):
                raise
            log.info("knowledge files were synced by another process at the same time")
            return
        if counts["created"] or counts["updated"] or counts["retired"] or counts["kept_desk"]:
            log.info("knowledge files synced into the database: %s", counts)

    def _build(self) -> None:
        try:
            if self._embedder is None:
                self._embedder = self._load_embedder()
            settings = self.settings
            fp = content_fingerprint(settings.kb_content_dir)
            stamp = None
            if settings.kb_database_url:
                self._sync_files(fp)
                with self._db() as s:
                    stamp, entries = editorial.stamp(s), editorial.published_entries(s)
                kb = KnowledgeBase.from_entries(entries, self._embedder, settings.kb_cache_dir, f"db:{stamp}")
            else:
                kb = KnowledgeBase.from_content(settings.kb_content_dir, self._embedder, settings.kb_cache_dir)
            with self._lock:
                self._kb, self._fingerprint, self._stamp, self.error = kb, fp, stamp, None
            log.info("knowledge base indexed: %d entries%s, %d texts embedded now, %.1fs, calibration %s",
                     len(kb.entries), f" (publication {stamp})" if stamp is not None else "", kb.embedded_now,
                     kb.build_seconds, kb.calibration.report)
        except Exception as exc:
            log.exception("knowledge base could not be indexed")
            self.error = str(exc)
        finally:
            self._reindexing = False
            self._ready.set()

    def start(self) -> None:
        """Index in the background so the action server starts answering /health at once."""
        self._started = self._reindexing = True
        threading.Thread(target=self._build, name="kb-index", daemon=True).start()

    def changed(self) -> bool:
        """Whether the content files or (database source) the publication stamp moved since the last index."""
        if content_fingerprint(self.settings.kb_content_dir) != self._fingerprint:
            return True
        if not self.settings.kb_database_url:
            return False
        try:
            with self._db() as s:
                return editorial.stamp(s) != self._stamp
        except Exception as exc:  # the database is away: keep answering with the index we have
            log.warning("knowledge database unreachable (%s); answering with the current index", type(exc).__name__)
            return False

    def reindex_if_changed(self) -> bool:
        """Start a background re-index when the content changed; True if one started."""
        now = time.monotonic()
        if self._reindexing or now - self._last_check < self.settings.kb_watch_seconds:
            return False
        self._last_check = now
        if not self.changed():
            return False
        self.start()
        return True

    def get(self, timeout: float = 120.0) -> KnowledgeBase | None:
        """The current knowledge base (waits for the first index), or None if it failed."""
        if not self._started:
            self.start()
        self._ready.wait(timeout)
        self.reindex_if_changed()
        with self._lock:
            return self._kb


kb_service = KbService()
