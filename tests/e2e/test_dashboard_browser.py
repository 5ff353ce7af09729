"""The supervisors' 统计看板 in headless Chromium: figures of a seeded analytics store, a figure's drill-down list, a
session's masked turns, the per-day chart, the CSV download, a long list paged forward and back; an agent does not see
the tab; nothing on the desk's pages breaks their Content-Security-Policy.

The web app is served in-process on loopback, reading an analytics store this test writes (the hand-counted history
of tests/analytics): the running test stack reads the developer's ANALYTICS_DATABASE_URL, which a test must not fill.
"""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from tests.analytics.conftest import RAW_ID, RAW_PHONE, Sources, write_history
from tests.e2e.browser import CHROMIUM_ARGS, chromium_path, desk_login
from webapp.app import create_app
from webapp.settings import Settings

pytestmark = pytest.mark.browser


@pytest.fixture()
def app(tmp_path: Path):
    """The web app over an analytics store holding the hand-counted history (9 sessions on 2 and 3 March 2026)."""
    folder = tmp_path / "analytics"
    folder.mkdir()
    sources = Sources(folder / "rasa_events.db", f"sqlite:///{folder / 'webapp.db'}", folder / "voice_calls.sqlite3",
                      f"sqlite:///{folder / 'analytics.db'}")
    write_history(sources)
    ingester = sources.ingester()
    ingester.run()
    ingester.store.dispose()
    settings = Settings(database_url=f"sqlite:///{tmp_path}/d.db", analytics=sources.settings(), reports_dir=tmp_path / "reports")
    return create_app(settings, name=f"dash{abs(hash(tmp_path)) % 10**8}")


async def test_supervisor_drills_from_a_figure_to_a_sessions_masked_turns(app):
    exe = chromium_path()
    if exe is None:
        pytest.fail("Chromium is not installed (make system-deps installs it)")
    from playwright.async_api import async_playwright, expect  # expect, not wait_for_function: the desk allows no eval

    from tests.voice.doubles import serve

    console: list[str] = []
    async with serve(app) as port, async_playwright() as p:
        b = await p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            base = f"http://127.0.0.1:{port}"
            agent = await desk_login(b, base, "agent1", "agent1-demo", console)
            await agent.wait_for_timeout(500)  # the desk has loaded what it shows an agent
            assert await agent.locator("#tab-dashboard").is_hidden() and await agent.locator("#dashboard").is_hidden()
            assert (await agent.request.get(base + "/desk/api/dashboard")).status == 403
            await agent.close()

            page = await desk_login(b, base, "supervisor", "supervisor-demo", console)
            await page.click("#tab-dashboard")
            assert await page.locator(".layout").is_hidden()
            await page.locator(".db-card").first.wait_for()  # today: the history is from March
            await page.click("#db-periods button[data-period=custom]")
            await page.fill("#db-from", "2026-03-02")
            await page.fill("#db-to", "2026-03-03")
            await page.click("#db-custom button")
            await expect(page.locator("#db-period")).to_have_text("2026-03-02 至 2026-03-03")
            cards = {await c.get_attribute("data-figure"): await c.inner_text() for c in await page.locator(".db-card").all()}
            assert "9" in cards["sessions"] and "44.4%" in cards["direct_answer_rate"] and "4 / 9" in cards["direct_answer_rate"]
            assert "55.6%" in cards["handoff_rate"] and "50.0%" in cards["satisfaction_rate"]
            assert "1.2 分钟" in cards["wait_seconds"]  # 70 s mean wait
            assert await page.locator("#db-days rect.db-bar").count() == 2
            assert await page.locator("#db-hours rect.db-bar").count() == 24
            assert "社保卡/挂失" in await page.locator("#db-topics").inner_text()

            # a card → the sessions it counts → one session's turns, masked
            await page.click(".db-card[data-figure=handoff_rate]")
            await page.wait_for_selector("#db-drill:not([hidden])")
            assert "转人工率：共 5 条" in await page.locator("#db-drill-title").inner_text()
            assert await page.locator("#db-drill-rows tr.db-link").count() == 5
            await page.click(".db-card[data-figure=queue_abandonment_rate]")
            await expect(page.locator("#db-drill-title")).to_contain_text("共 1 条")
            await page.locator("#db-drill-rows tr.db-link").first.click()
            session = page.locator("#db-session")
            await session.locator(".line.citizen").first.wait_for()
            text = await session.inner_text()
            assert "查下卡的进度" in text and "转人工" in text
            assert RAW_ID not in text and RAW_PHONE not in text and "1238" in text  # the ID's last digits, as masked

            # a day's bar → that day's sessions
            await page.locator("#db-days rect.db-hit").first.click()
            await expect(page.locator("#db-drill-title")).to_contain_text("2026-03-02：共 6 条")

            # the per-day CSV
            async with page.expect_download() as info:
                await page.click("#db-export")
            download = await info.value
            assert download.suggested_filename == "dashboard_2026-03-02_2026-03-03.csv"
            body = Path(await download.path()).read_bytes()
            assert body.startswith(b"\xef\xbb\xbf") and "合计,9," in body.decode("utf-8-sig")
            if os.environ.get("DASHBOARD_SCREENSHOT"):  # for a person to look at: DASHBOARD_SCREENSHOT=/tmp/d.png
                await page.screenshot(path=os.environ["DASHBOARD_SCREENSHOT"], full_page=True)
        finally:
            await b.close()
    # the login page, the desk, its live feed and the dashboard all ran under the pages' Content-Security-Policy
    assert not [m for m in console if "Content Security Policy" in m or m.startswith("pageerror")], console


@pytest.fixture()
def busy_app(tmp_path: Path):
    """The web app over three simulated days (≈ 120 sessions: lists longer than a page)."""
    from analytics.simulate import TrafficModel, render
    from analytics.sources import SourceWriter

    folder = tmp_path / "analytics"
    folder.mkdir()
    sources = Sources(folder / "rasa_events.db", f"sqlite:///{folder / 'webapp.db'}", folder / "voice_calls.sqlite3",
                      f"sqlite:///{folder / 'analytics.db'}")
    writer = SourceWriter(sources.events, sources.webapp_url, sources.calls)
    render(TrafficModel(daily_sessions=45, seed=2), dt.date(2026, 3, 2), 3, writer)
    writer.close()
    ingester = sources.ingester(now="2026-03-06 00:00")
    ingester.run()
    ingester.store.dispose()
    settings = Settings(database_url=f"sqlite:///{tmp_path}/d.db", analytics=sources.settings(), reports_dir=tmp_path / "reports")
    return create_app(settings, name=f"busy{abs(hash(tmp_path)) % 10**8}")


async def test_a_long_list_pages_forward_and_back(busy_app):
    """下一页 reads the next page by the key the last one gave, 上一页 goes back to the very same rows; the last page
    has no 下一页."""
    exe = chromium_path()
    if exe is None:
        pytest.fail("Chromium is not installed (make system-deps installs it)")
    from playwright.async_api import async_playwright, expect  # expect, not wait_for_function: the desk allows no eval

    from tests.voice.doubles import serve

    console: list[str] = []
    async with serve(busy_app) as port, async_playwright() as p:
        b = await p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            base = f"http://127.0.0.1:{port}"
            page = await desk_login(b, base, "supervisor", "supervisor-demo", console)
            total = (await (await page.request.get(base + "/desk/api/dashboard/sessions?from=2026-03-02&to=2026-03-04"
                                                   "&figure=sessions&limit=1")).json())["total"]
            pages = -(-total // 50)
            assert pages >= 2
            await page.click("#tab-dashboard")
            await page.click("#db-periods button[data-period=custom]")
            await page.fill("#db-from", "2026-03-02")
            await page.fill("#db-to", "2026-03-04")
            await page.click("#db-custom button")
            await expect(page.locator("#db-period")).to_have_text("2026-03-02 至 2026-03-04")
            await page.click(".db-card[data-figure=sessions]")
            await expect(page.locator("#db-page")).to_have_text(f"第 1 / {pages} 页")
            rows = page.locator("#db-drill-rows")
            first = await rows.inner_text()
            assert await page.locator("#db-prev").is_disabled()
            seen = [first]
            for n in range(2, pages + 1):
                await page.click("#db-next")
                await expect(page.locator("#db-page")).to_have_text(f"第 {n} / {pages} 页")
                seen.append(await rows.inner_text())
            assert await page.locator("#db-next").is_disabled() and len(set(seen)) == pages
            assert await rows.locator("tr.db-link").count() == total - 50 * (pages - 1)
            for n in range(pages - 1, 0, -1):
                await page.click("#db-prev")
                await expect(page.locator("#db-page")).to_have_text(f"第 {n} / {pages} 页")
                assert await rows.inner_text() == seen[n - 1]
            assert await page.locator("#db-prev").is_disabled() and not await page.locator("#db-next").is_disabled()
        finally:
            await b.close()
    assert not [m for m in console if "Content Security Policy" in m or m.startswith("pageerror")], console
