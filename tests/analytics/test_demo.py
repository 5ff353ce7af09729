"""The demo month `make run` seeds in development: once, never in production, never over real data, marked simulated."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from openpyxl import load_workbook

from analytics import figures as F
from analytics.demo import DEMO_MARKER, is_simulated, previous_month, seed_demo
from analytics.report import write_report
from analytics.store import Cursor
from tests.analytics.conftest import Sources

TODAY = dt.date(2026, 12, 6)


def _seed(sources: Sources, tmp_path: Path):
    return seed_demo(sources.settings(), tmp_path / "reports", tmp_path / "sim", today=TODAY, daily=8,
                     formats=("html", "xlsx"), knowledge=False)


def test_previous_month_crosses_the_year():
    assert previous_month(dt.date(2026, 1, 15)) == "2025-12" and previous_month(TODAY) == "2026-11"


def test_seeds_the_previous_month_once_and_marks_it_simulated(sources: Sources, tmp_path, monkeypatch):
    monkeypatch.setenv("APP_ENV", "development")
    first = _seed(sources, tmp_path)
    assert first.status == "seeded" and first.month == "2026-11" and first.sessions > 100
    assert not (tmp_path / "sim").exists()  # the scratch sources are removed
    store = sources.ingester().store
    november = store.call(lambda s: F.summary(s, F.Period.month("2026-11")))
    assert november["sessions"] == first.sessions and store.call(is_simulated)
    assert store.call(lambda s: F.summary(s, F.Period.month("2026-10")))["sessions"] == 0
    html = (tmp_path / "reports" / "2026-11.html").read_text(encoding="utf-8")
    assert 'id="simulated"' in html and "模拟数据" in html and f'id="sessions">{november["sessions"]}<' in html
    cells = [c for row in load_workbook(tmp_path / "reports" / "2026-11.xlsx")["汇总"].iter_rows(values_only=True) for c in row if c]
    assert any("模拟数据" in str(c) for c in cells)

    again = _seed(sources, tmp_path)
    assert again.status == "already" and again.month == "2026-11"
    assert store.call(lambda s: F.summary(s, F.Period.month("2026-11")))["sessions"] == first.sessions


def test_an_interrupted_seeding_is_finished_by_the_next_run(sources: Sources, tmp_path, monkeypatch):
    monkeypatch.setenv("APP_ENV", "development")
    store = sources.ingester().store
    store.call(lambda s: s.add(Cursor(source=DEMO_MARKER, position="seeding 2026-11")))
    result = _seed(sources, tmp_path)
    assert result.status == "seeded" and result.month == "2026-11"
    assert store.call(lambda s: s.get(Cursor, DEMO_MARKER).position) == "2026-11"


def test_never_over_real_data(history: Sources, tmp_path, monkeypatch):
    monkeypatch.setenv("APP_ENV", "development")
    ingester = history.ingester()
    ingester.run()
    before = ingester.store.call(lambda s: F.summary(s, F.Period.month("2026-03")))
    assert _seed(history, tmp_path).status == "real_data"
    assert ingester.store.call(lambda s: F.summary(s, F.Period.month("2026-03"))) == before
    assert not ingester.store.call(is_simulated) and not (tmp_path / "reports").exists()
    html = write_report(ingester.store, "2026-03", tmp_path / "r")["html"].read_text(encoding="utf-8")
    assert 'id="simulated"' not in html


def test_never_in_production(sources: Sources, tmp_path, monkeypatch):
    monkeypatch.setenv("APP_ENV", "production")
    assert _seed(sources, tmp_path).status == "production"
    assert not Path(sources.analytics_url.removeprefix("sqlite:///")).exists() and not (tmp_path / "reports").exists()


def test_the_simulate_command_marks_the_store_it_fills(sources: Sources, tmp_path, monkeypatch):
    from analytics.simulate import main as simulate

    monkeypatch.setenv("ANALYTICS_DATABASE_URL", sources.analytics_url)
    assert simulate(["--start", "2026-10-05", "--days", "1", "--daily", "20", "--out", str(tmp_path / "sim"), "--ingest"]) == 0
    store = sources.ingester().store
    assert store.call(is_simulated) and store.call(lambda s: F.summary(s, F.Period.days(dt.date(2026, 10, 5), 1)))["sessions"] > 0
    assert 'id="simulated"' in write_report(store, "2026-10", tmp_path / "r")["html"].read_text(encoding="utf-8")
    monkeypatch.setenv("APP_ENV", "development")
    assert _seed(sources, tmp_path).status == "already"  # the demo month is not added on top
