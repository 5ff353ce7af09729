"""A demo month of simulated traffic in the analytics store, for development (`make run` seeds it once).

A fresh checkout has no traffic, so the supervisors' desk would show an empty report list. In development
`scripts/run.sh` runs `python -m analytics.demo`: the previous calendar month is simulated at a modest
volume (analytics.simulate, in the services' own formats, in a scratch folder), ingested into
ANALYTICS_DATABASE_URL by the ordinary ingester, and that month's report is written where `make report`
writes (var/reports), so the desk lists it.

Simulated figures must never pass for real ones:
- never with APP_ENV=production, and never into a store that already holds sessions: it only seeds an
  empty store (`make analytics-demo` marks the store it fills in the same way);
- the store remembers the seeding in a marker row (`cursors`, source `demo:simulated`), which makes a
  second run a no-op and which analytics.report reads: every report of that store says in red that its
  data is simulated (`is_simulated`). Delete the store (var/analytics.db) to start again with real data.
"""
from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analytics.settings import ROOT, Settings, load_settings
from analytics.store import AnalyticsStore, ChatSession, Cursor
from common.settings import is_production

DEMO_MARKER = "demo:simulated"  # a `cursors` row: position "seeding YYYY-MM" while seeding, then "YYYY-MM"
DEMO_DAILY = 150.0  # sessions on an ordinary Wednesday: ~3,400 sessions, ~40,000 Rasa events a month, a few seconds
DEMO_SEED = 13


def is_simulated(s: Session) -> bool:
    """True when the store holds the simulated demo month (its figures are not real)."""
    return s.get(Cursor, DEMO_MARKER) is not None


@dataclass
class DemoResult:
    """What `seed_demo` did: status seeded | already (seeded before) | real_data | production."""

    status: str
    month: str = ""
    sessions: int = 0
    events: int = 0
    seconds: float = 0.0
    reports: list[Path] = field(default_factory=list)

    def line(self) -> str:
        """One line for the run log."""
        if self.status == "seeded":
            files = ", ".join(p.name for p in self.reports)
            return (f"simulated demo month {self.month} seeded: {self.sessions:,} sessions, {self.events:,} Rasa events, "
                    f"report {files} ({self.seconds:.0f} s; marked as simulated)")
        return {"already": f"the analytics store already holds simulated data ({self.month}): nothing seeded",
                "real_data": "the analytics store already holds data: no demo month seeded",
                "production": "APP_ENV=production: no demo data"}[self.status]


def previous_month(today: dt.date) -> str:
    """YYYY-MM of the calendar month before today's."""
    return (today.replace(day=1) - dt.timedelta(days=1)).strftime("%Y-%m")


def _state(s: Session) -> tuple[str | None, int]:
    marker = s.get(Cursor, DEMO_MARKER)
    return (marker.position if marker else None), s.scalar(select(func.count()).select_from(ChatSession)) or 0


def mark_simulated(store: AnalyticsStore, position: str) -> None:
    """Record in the store that it holds simulated data (position: what was simulated, e.g. the month)."""
    def save(s: Session) -> None:
        marker = s.get(Cursor, DEMO_MARKER)
        if marker is None:
            s.add(Cursor(source=DEMO_MARKER, position=position))
        else:
            marker.position = position
    store.call(save)


def seed_demo(settings: Settings, reports_dir: Path, work_dir: Path, today: dt.date | None = None, daily: float = DEMO_DAILY,
              formats: tuple[str, ...] = ("html", "xlsx", "pdf"), knowledge: bool = True) -> DemoResult:
    """Seed the previous month of simulated traffic and write its report, once, in development only.

    work_dir: scratch folder for the simulated source databases (removed afterwards). The PDF is left out when
    there is no Chromium. A run interrupted while seeding is finished by the next one (the ingest is replay-safe)."""
    if is_production():
        return DemoResult("production")
    from analytics.figures import Period
    from analytics.ingest import Ingester
    from analytics.report import write_report
    from analytics.simulate import TrafficModel, render
    from analytics.sources import SourceWriter

    began = time.perf_counter()
    store = AnalyticsStore(settings.database_url)
    try:
        position, sessions = store.call(_state)
        if position is not None and not position.startswith("seeding"):
            return DemoResult("already", month=position)
        if position is None and sessions:
            return DemoResult("real_data")
        month = position.split()[-1] if position else previous_month(today or dt.date.today())
        mark_simulated(store, f"seeding {month}")  # first: from here on the store counts as simulated
        period = Period.month(month)
        shutil.rmtree(work_dir, ignore_errors=True)
        work_dir.mkdir(parents=True)
        sources = Settings(database_url=settings.database_url, rasa_events_url=f"sqlite:///{work_dir / 'rasa_events.db'}",
                           tracker_store_url=f"sqlite:///{work_dir / 'none.db'}", webapp_database_url=f"sqlite:///{work_dir / 'webapp.db'}",
                           voice_db_path=str(work_dir / "voice_calls.sqlite3"), timezone=settings.timezone,
                           abandon_minutes=settings.abandon_minutes, alert_webhook="")
        writer = SourceWriter(work_dir / "rasa_events.db", sources.webapp_database_url, work_dir / "voice_calls.sqlite3")
        stats = render(TrafficModel(daily_sessions=daily, seed=DEMO_SEED), period.start, (period.end - period.start).days, writer)
        writer.close()
        Ingester(store, sources).run(replay=True)
        mark_simulated(store, month)
        shutil.rmtree(work_dir, ignore_errors=True)
        from analytics.report_pdf import chromium_path

        if "pdf" in formats and chromium_path() is None:
            formats = tuple(f for f in formats if f != "pdf")
        kb = None
        if knowledge:
            from analytics.gaps import load_knowledge

            kb = load_knowledge()
        paths = write_report(store, month, reports_dir, formats, kb=kb)
        return DemoResult("seeded", month, stats.sessions, stats.events, time.perf_counter() - began, list(paths.values()))
    finally:
        store.dispose()


def main(argv: list[str] | None = None) -> int:
    """Command line: python -m analytics.demo [--daily 150] [--reports var/reports]."""
    p = argparse.ArgumentParser(prog="python -m analytics.demo",
                                description="Seed a simulated demo month into an empty analytics store (development only).")
    p.add_argument("--daily", type=float, default=DEMO_DAILY, help="simulated sessions on an ordinary Wednesday")
    p.add_argument("--reports", default=str(ROOT / "var" / "reports"), help="where the month's report is written")
    p.add_argument("--work", default=str(ROOT / "var" / "demo-sim"), help="scratch folder for the simulated sources")
    args = p.parse_args(argv)
    result = seed_demo(load_settings(), Path(args.reports), Path(args.work), daily=args.daily)
    print(f"[demo] {result.line()}", file=sys.stderr if result.status == "real_data" else sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
