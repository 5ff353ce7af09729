"""What supervisors see of the analytics in the desk: hot-issue alerts, the monthly reports and the dashboard (issue 13).

All are read, never written: the alerts and figures from the analytics store (filled by `python -m analytics.*`),
the reports from the folder `python -m analytics.report` writes to. A store that does not exist yet
(analytics never ran) has no alerts; the web app does not create it.
"""
from __future__ import annotations

import datetime as dt
import re
import threading
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, inspect, or_, select
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session

from analytics.alerts import alert_json
from analytics.store import Alert
from webapp.dashboard import Dashboard

# the formats analytics.report writes, and how each is served: HTML opens in the browser, the others download
REPORT_TYPES = {"html": "text/html; charset=utf-8", "pdf": "application/pdf",
                "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
REPORT_NAME = re.compile(r"(?P<month>\d{4}-(?:0[1-9]|1[0-2]))\.(?P<fmt>html|pdf|xlsx)")
ALERTS_LIMIT = 50  # the latest alerts when not only the open ones are asked for


class BadReportName(ValueError):
    """A report was asked for by a name that is not YYYY-MM.html|pdf|xlsx."""


class Supervision:
    """Reads the hot-issue alerts of the analytics store and lists and finds the monthly report files."""

    def __init__(self, analytics_url: str, zone: ZoneInfo, reports_dir: Path) -> None:
        self.analytics_url, self.zone, self.reports_dir = analytics_url, zone, Path(reports_dir)
        self._engine: Engine | None = None
        self._lock = threading.Lock()
        self.dashboard = Dashboard(self._store, zone)  # the 统计看板: figures and drill-down (webapp/dashboard.py)

    def _store(self) -> Engine | None:
        """The analytics store's engine, or None while the store does not exist (a SQLite file not yet written)."""
        with self._lock:
            if self._engine is None:
                url = make_url(self.analytics_url)
                if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") \
                        and not Path(url.database).is_file():
                    return None  # opening it would create an empty file in analytics' place
                self._engine = create_engine(url, pool_pre_ping=True)
            return self._engine

    def alerts(self, open_only: bool = False) -> list[dict[str, Any]]:
        """The alerts, newest first: the open ones (no end yet, or an end still ahead), or the latest ALERTS_LIMIT."""
        engine = self._store()
        if engine is None or not inspect(engine).has_table(Alert.__tablename__):
            return []
        now = dt.datetime.now(self.zone).replace(tzinfo=None)  # the store keeps the centre's local time
        query = select(Alert).order_by(Alert.started_at.desc(), Alert.id.desc())
        if open_only:
            query = query.where(or_(Alert.ended_at.is_(None), Alert.ended_at > now))
        else:
            query = query.limit(ALERTS_LIMIT)
        with Session(engine) as s:
            return [{**alert_json(a), "open": a.ended_at is None or a.ended_at > now, "last_signal_at": a.last_signal_at.isoformat(),
                     "total_count": a.total_count, "total_expected": round(a.total_expected, 2)} for a in s.scalars(query)]

    def reports(self) -> list[dict[str, Any]]:
        """The months with a report, newest first, each with the formats written for it."""
        months: dict[str, list[str]] = {}
        if self.reports_dir.is_dir():
            for path in self.reports_dir.iterdir():
                m = REPORT_NAME.fullmatch(path.name)
                if m and path.is_file():
                    months.setdefault(m["month"], []).append(m["fmt"])
        return [{"month": month, "formats": [f for f in REPORT_TYPES if f in fmts]}
                for month, fmts in sorted(months.items(), reverse=True)]

    def report_file(self, name: str) -> tuple[Path, str] | None:
        """(path, format) of a report named YYYY-MM.<format>; None when it was not written; BadReportName otherwise."""
        m = REPORT_NAME.fullmatch(name)
        if m is None:
            raise BadReportName(name)
        path = self.reports_dir / name  # the pattern leaves no room for a separator or ".."
        return (path, m["fmt"]) if path.is_file() else None

    def dispose(self) -> None:
        """Close the analytics store's connections."""
        if self._engine is not None:
            self._engine.dispose()
