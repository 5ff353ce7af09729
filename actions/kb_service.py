"""The knowledge base as the action server sees it: loaded once, re-indexed when content changes.

Content updates take effect without retraining Rasa: every KB_WATCH_SECONDS the content
fingerprint is compared, and a changed content folder is re-indexed in a background thread
(only new or changed texts are embedded again) while the old index keeps answering.
"""
from __future__ import annotations

import logging
import threading
import time

from actions.settings import Settings, current
from knowledge.retriever import KnowledgeBase
from knowledge.schema import content_fingerprint

log = logging.getLogger(__name__)


class KbService:
    """Holds the current KnowledgeBase and swaps in a new one when the content changes."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings  # None: the action server's settings (actions.settings.current())
        self._kb: KnowledgeBase | None = None
        self._fingerprint = ""
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

    def _build(self) -> None:
        try:
            if self._embedder is None:
                self._embedder = self._load_embedder()
            settings = self.settings
            fp = content_fingerprint(settings.kb_content_dir)
            kb = KnowledgeBase.from_content(settings.kb_content_dir, self._embedder, settings.kb_cache_dir)
            with self._lock:
                self._kb, self._fingerprint, self.error = kb, fp, None
            log.info("knowledge base indexed: %d entries, %d texts embedded now, %.1fs, calibration %s",
                     len(kb.entries), kb.embedded_now, kb.build_seconds, kb.calibration.report)
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

    def reindex_if_changed(self) -> bool:
        """Start a background re-index when the content fingerprint changed; True if one started."""
        now = time.monotonic()
        if self._reindexing or now - self._last_check < self.settings.kb_watch_seconds:
            return False
        self._last_check = now
        if content_fingerprint(self.settings.kb_content_dir) == self._fingerprint:
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
