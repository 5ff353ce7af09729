"""Benchmark of the monthly report: a month of ≥ 500,000 Rasa events, the report command timed per format.

    python scripts/bench_report.py [--events 500000] [--month 2026-11] [--history-months 1] [--profile]

1. Simulates the month (analytics.simulate, in the services' own formats) at the Wednesday volume that gives at
   least --events Rasa events (topped up with a second seed if the draw falls short), plus --history-months
   months before it at the same volume (so 环比 and the trend have data, as in a store that has been running),
   and ingests everything into a fresh SQLite analytics store.
2. Runs `python -m analytics.report --month M` as a subprocess — what cron or `make report` runs, start-up,
   knowledge index and Chromium included — for html, html+xlsx and html+xlsx+pdf, and prints the wall time of
   each against the target (60 s). With --profile, the in-process report_data under cProfile (top functions).
Prints Markdown; the figures are kept in docs/analytics.md.
"""
from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics import figures as F  # noqa: E402
from analytics.ingest import Ingester  # noqa: E402
from analytics.report import report_data, shift_month  # noqa: E402
from analytics.settings import ROOT, Settings  # noqa: E402
from analytics.simulate import TrafficModel, render  # noqa: E402
from analytics.sources import SourceWriter  # noqa: E402
from analytics.store import AnalyticsStore  # noqa: E402

TARGET_SECONDS = 60.0
EVENTS_PER_SESSION = 11.5  # measured on simulated months (docs/analytics.md); only used to choose the volume


def simulate_month(out: Path, month: str, events: int, history: int) -> tuple[float, int, int, float]:
    """Write the month (≥ events Rasa events) and `history` months before it; (daily volume, month's events, all events, s)."""
    began = time.perf_counter()
    period = F.Period.month(month)
    days = (period.end - period.start).days
    per_daily = TrafficModel(daily_sessions=1.0).expected(period.start, days).sum()  # sessions per unit of --daily
    daily = round(events / (per_daily * EVENTS_PER_SESSION) * 1.02, 0)
    writer = SourceWriter(out / "rasa_events.db", f"sqlite:///{out / 'webapp.db'}", out / "voice_calls.sqlite3")
    for back in range(history, 0, -1):
        prev = F.Period.month(shift_month(month, -back))
        render(TrafficModel(daily_sessions=daily, seed=100 + back), prev.start, (prev.end - prev.start).days, writer)
    before = writer.events_written
    render(TrafficModel(daily_sessions=daily, seed=1), period.start, days, writer)
    seed = 2
    while writer.events_written - before < events:  # top up the month with another seed's sessions
        missing = events - (writer.events_written - before)
        render(TrafficModel(daily_sessions=missing / (per_daily * EVENTS_PER_SESSION) * 1.1, seed=seed), period.start, days, writer)
        seed += 1
    writer.close()
    return daily, writer.events_written - before, writer.events_written, time.perf_counter() - began


def time_report(url: str, month: str, out: Path, formats: str) -> tuple[float, list[str]]:
    """Wall time of `python -m analytics.report` for the formats, and its output lines."""
    env = {**os.environ, "ANALYTICS_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "analytics.report", "--month", month, "--out", str(out), "--formats", formats],
                          env=env, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        print(f"report --formats {formats} failed ({done.returncode}):\n{done.stderr[-2000:]}", file=sys.stderr)
    return seconds, done.stdout.strip().splitlines()


def main() -> int:
    """Command line: see the module docstring."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=500_000, help="Rasa events in the reported month (at least)")
    p.add_argument("--month", default="2026-11", help="the month reported (a month without public holidays by default)")
    p.add_argument("--history-months", type=int, default=1, help="months before it simulated at the same volume")
    p.add_argument("--profile", action="store_true", help="also profile report_data in-process (cProfile, top 20)")
    p.add_argument("--keep", default="", help="keep the simulated sources and store in this folder")
    p.add_argument("--reuse", action="store_true", help="with --keep: time the reports of the store kept there (no simulation)")
    args = p.parse_args()
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.keep or tmp)
        out.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{out / 'analytics.db'}"
        reuse = args.reuse and (out / "analytics.db").is_file()
        if not reuse:
            daily, month_events, all_events, sim_seconds = simulate_month(out, args.month, args.events, args.history_months)
        settings = Settings(database_url=url, rasa_events_url=f"sqlite:///{out / 'rasa_events.db'}",
                            tracker_store_url=f"sqlite:///{out / 'none.db'}", webapp_database_url=f"sqlite:///{out / 'webapp.db'}",
                            voice_db_path=str(out / "voice_calls.sqlite3"), timezone="Asia/Shanghai", abandon_minutes=30,
                            alert_webhook="")
        store = AnalyticsStore(url)
        if not reuse:
            ingested = Ingester(store, settings, now=dt.datetime(2027, 6, 1)).run()
        now = store.call(lambda s: F.summary(s, F.Period.month(args.month)))
        size = (out / "analytics.db").stat().st_size / 1e6
        print("## Monthly report at 500k events\n")
        print(f"- machine: {os.cpu_count()} CPUs; SQLite analytics store ({size:.0f} MB after ingest)")
        if reuse:
            print(f"- the store kept in {out} ({now['sessions']:,} sessions in {args.month})")
        else:
            print(f"- simulated {args.month} at {daily:.0f} sessions a Wednesday: {month_events:,} Rasa events, {now['sessions']:,} sessions "
                  f"(+ {args.history_months} month(s) before at the same volume; {all_events:,} events in all, written in {sim_seconds:.0f} s)")
            print(f"- ingest: {ingested.events_read:,} events in {ingested.seconds:.0f} s")
        load = os.getloadavg()[0]
        print(f"- `python -m analytics.report --month {args.month}` (a new process each time: start-up, knowledge index, Chromium; "
              f"load average {load:.1f} on {os.cpu_count()} CPUs when they started):\n")
        print("| formats | wall time | target | files |")
        print("|---|---|---|---|")
        for formats in ("html", "html,xlsx", "html,xlsx,pdf"):
            seconds, lines = time_report(url, args.month, out / "reports", formats)
            files = "; ".join(line.removeprefix("[report] ").replace(str(out / "reports") + "/", "") for line in lines)
            print(f"| {formats} | {seconds:.1f} s | {'met' if seconds <= TARGET_SECONDS else 'NOT met'} (≤ {TARGET_SECONDS:.0f} s) | {files} |")
        if args.profile:
            profiler = cProfile.Profile()
            t0 = time.perf_counter()
            profiler.enable()
            store.call(lambda s: report_data(s, args.month))
            profiler.disable()
            print(f"\n- report_data in-process (no knowledge index): {time.perf_counter() - t0:.1f} s; top functions by cumulative time:\n")
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(20)
            print("```\n" + "\n".join(line for line in text.getvalue().splitlines() if line.strip())[-4000:] + "\n```")
        store.dispose()
    print(f"\n(benchmark ran {time.perf_counter() - began:.0f} s.)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
