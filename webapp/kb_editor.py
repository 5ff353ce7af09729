"""The desk's knowledge editor: knowledge/editorial.py in the web app's database, with roles, audit and figures.

Agents search, read and propose; supervisors review, publish, retire, restore, import and export (the routes
in webapp/routes/desk_kb.py check the role). The tables are seeded from the repository's content files on
first use (idempotent; the action server does the same at its start). The agents' answer search ranks the
published entries lexically (no model in the web app) and is rebuilt when the publication stamp moves.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from knowledge import editorial
from knowledge.schema import content_fingerprint, load_entries
from webapp.store import Store

T = TypeVar("T")
log = logging.getLogger(__name__)
FIGURE_DAYS = 90  # per-entry figures cover this many days up to today
FIGURE_SECONDS = 300.0  # and are read again after this long


class KbEditor:
    """The editorial store behind the desk's 知识库 tab."""

    def __init__(self, store: Store, content_dir: Path,
                 figures: Callable[[int], dict[str, dict[str, Any]]] | None = None) -> None:
        self.store, self.content_dir = store, content_dir
        self._figures_source = figures
        self._figures: tuple[float, dict[str, dict[str, Any]]] = (0.0, {})
        self._seeded = False
        self._lock = asyncio.Lock()
        self._search: tuple[int, Any] | None = None  # (stamp, lexical KnowledgeBase)

    async def ready(self) -> None:
        """Create the tables and bring the content files in, once per process."""
        if self._seeded:
            return
        async with self._lock:
            if self._seeded:
                return

            def seed() -> dict[str, int]:
                editorial.create_tables(self.store.engine)
                entries, fp = load_entries(self.content_dir), content_fingerprint(self.content_dir)
                return self.store.call(lambda s: editorial.sync_from_files(s, entries, fp))
            try:
                counts = await asyncio.to_thread(seed)
            except Exception as exc:  # another process seeded at the same moment: its rows are there now
                from sqlalchemy.exc import IntegrityError
                if not isinstance(exc, IntegrityError):
                    raise
                counts = {}
            if any(counts.get(k) for k in ("created", "updated", "retired")):
                log.info("knowledge files synced into the database: %s", counts)
            self._seeded = True

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """fn(session, *args) in a transaction (editorial.EditorialError passes through)."""
        await self.ready()
        return await self.store.run(lambda s: fn(s, *args, **kwargs))

    # --- figures ------------------------------------------------------------------------------------------------------
    async def figures(self) -> dict[str, dict[str, Any]]:
        """Per entry over the last FIGURE_DAYS days: answers, 没帮助 and hand-offs right after ({} without analytics)."""
        if self._figures_source is None:
            return {}
        at, cached = self._figures
        if time.monotonic() - at < FIGURE_SECONDS:
            return cached
        try:
            fresh = await asyncio.to_thread(self._figures_source, FIGURE_DAYS)
        except Exception as exc:  # the analytics store is away: the editor works without figures
            log.warning("per-entry figures unavailable (%s)", type(exc).__name__)
            fresh = {}
        self._figures = (time.monotonic(), fresh)
        return fresh

    async def detail(self, entry_id: str) -> dict[str, Any]:
        """An entry, its history and its figures."""
        out = await self.run(editorial.detail, entry_id)
        out["figures"] = (await self.figures()).get(entry_id) or {}
        out["figures_days"] = FIGURE_DAYS
        return out

    async def listing(self, **filters: Any) -> dict[str, Any]:
        """A page of entries, each with its figures; sort="worst" ranks by 没帮助 + hand-offs after the answer."""
        sort = filters.pop("sort", "")
        figures = await self.figures()
        if sort == "worst":
            page, size = filters.pop("page", 1), filters.pop("size", editorial.PAGE)
            everything = await self.run(editorial.listing, page=1, size=10 ** 6, **filters)
            ranked = sorted(everything["entries"], key=lambda e: (
                -((figures.get(e["id"]) or {}).get("unhelpful", 0) + (figures.get(e["id"]) or {}).get("handoff_after", 0)),
                -(figures.get(e["id"]) or {}).get("answers", 0), e["id"]))
            everything["entries"] = ranked[(page - 1) * size: page * size]
            everything.update(page=page, size=size)
            out = everything
        else:
            out = await self.run(editorial.listing, **filters)
        for e in out["entries"]:
            e["figures"] = figures.get(e["id"]) or {}
        return out

    # --- the agents' answer search ------------------------------------------------------------------------------------
    async def search(self, q: str, k: int = 5) -> list[Any]:
        """The k best published entries for a citizen's question (lexical)."""
        stamp = await self.run(editorial.stamp)
        if self._search is None or self._search[0] != stamp:
            entries = await self.run(editorial.published_entries)

            def build():
                from knowledge.retriever import KnowledgeBase
                return KnowledgeBase(entries)
            self._search = (stamp, await asyncio.to_thread(build))
        kb = self._search[1]
        return await asyncio.to_thread(kb.search, q, k)


def analytics_figures(dashboard: Any) -> Callable[[int], dict[str, dict[str, Any]]]:
    """Per-entry figures from the supervisors' dashboard (webapp/dashboard.py), as KbEditor wants them."""

    def read(days: int) -> dict[str, dict[str, Any]]:
        from analytics import figures as F
        from analytics import rollup

        session = dashboard._session()
        if session is None:
            return {}
        today = dashboard.today()
        period = F.Period(today - dt.timedelta(days=days - 1), today + dt.timedelta(days=1))
        with session as s:
            reader = rollup if rollup.ready(s) else F
            rows = reader.answer_figures(s, period, "entry_id", ())
        return {r["entry_id"]: {k: r[k] for k in ("answers", "unhelpful", "handoff_after", "unhelpful_rate",
                                                   "handoff_after_rate")} for r in rows if r.get("entry_id")}
    return read
