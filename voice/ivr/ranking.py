"""How often each knowledge entry was given as the answer, read from the analytics store (never written).

The analytics ingester (analytics/ingest.py) records one `knowledge_answers` row per answer the bot
gave with a knowledge entry (bands confident and chosen, web and phone alike). Keypad answers are
served by the gateway itself and are not counted there, so the menu does not feed its own ranking.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def answer_counts(window_days: int, database_url: str | None = None,
                  now: dt.datetime | None = None) -> tuple[dict[str, int], str]:
    """Answers per entry id over the last `window_days` (local time), and where they came from.

    Returns ({}, why) when there is no analytics database or it cannot be read: the menu then keeps
    the content order, and the gateway starts all the same.
    """
    from sqlalchemy import create_engine, func, inspect, select
    from sqlalchemy.engine import make_url

    from analytics.settings import load_settings, redact_url
    from analytics.store import KnowledgeAnswer

    try:
        settings = load_settings()
        url = database_url or settings.database_url
        local_now = now or dt.datetime.now(settings.zone).replace(tzinfo=None)
    except Exception as exc:  # a malformed analytics setting must not keep the phone service down
        return {}, f"analytics settings unusable: {exc}"
    shown = redact_url(url)
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and not (parsed.database and Path(parsed.database).is_file()):
            return {}, f"no analytics database at {shown}"  # never create one here
        engine = create_engine(parsed)
        try:
            if not inspect(engine).has_table(KnowledgeAnswer.__tablename__):
                return {}, f"no knowledge answers recorded in {shown}"
            since = local_now - dt.timedelta(days=window_days)
            with engine.connect() as db:
                rows = db.execute(select(KnowledgeAnswer.entry_id, func.count())
                                  .where(KnowledgeAnswer.at >= since)
                                  .group_by(KnowledgeAnswer.entry_id)).all()
        finally:
            engine.dispose()
    except Exception as exc:  # unreachable server, bad URL: the content order serves
        log.warning("keypad menu: analytics store %s unreadable (%s); using the content order", shown, exc)
        return {}, f"analytics store {shown} unreadable"
    counts = {str(entry_id): int(n) for entry_id, n in rows}
    return counts, f"{sum(counts.values())} answers in {window_days} days in {shown}"
