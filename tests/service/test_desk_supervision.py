"""The supervisor's hot-issue alerts and monthly reports in the desk: who may see them, what is read, what is served."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from analytics.store import Alert, AnalyticsStore, Turn
from tests.analytics.conftest import RAW_ID, RAW_PHONE, write_history
from tests.service.test_desk import browser, login
from webapp.app import create_app
from webapp.rasa_client import RasaClient
from webapp.settings import Settings

ENDPOINTS = ["/desk/api/alerts", "/desk/api/alerts?open=1", "/desk/api/reports", "/desk/api/reports/2026-10.pdf"]
FILES = {"2026-10.html": b"<!doctype html><title>2026\xe5\xb9\xb410\xe6\x9c\x88</title>", "2026-10.pdf": b"%PDF-1.4 fake pdf\n",
         "2026-10.xlsx": b"PK\x03\x04 fake workbook", "2026-09.html": b"<p>September</p>"}


@pytest.fixture()
def app(tmp_path, monkeypatch, sources):
    """The web app reading this test's analytics store and reports folder (a few report files written in it)."""
    async def fake_send(self, sender, text, metadata=None, channel="web"):
        return [{"recipient_id": sender, "text": "机器人回答：" + text}]

    monkeypatch.setattr(RasaClient, "send", fake_send)
    reports = tmp_path / "reports"
    reports.mkdir()
    for name, data in FILES.items():
        (reports / name).write_bytes(data)
    (reports / "notes.txt").write_text("not a report")
    (tmp_path / "secret.html").write_text("outside the reports folder")
    settings = Settings(database_url=f"sqlite:///{tmp_path}/d.db", analytics=sources.settings(), reports_dir=reports)
    return create_app(settings, name=f"s{abs(hash(tmp_path)) % 10**8}")


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_no_login_and_citizens_get_401(app, path):
    _, r = await app.asgi_client.get(path)
    assert r.status == 401
    _, citizen = await browser(app)
    _, r = await app.asgi_client.get(path, headers=citizen)
    assert r.status == 401


@pytest.mark.parametrize("path", ENDPOINTS + ["/desk/api/reports/..%2Fsecret.html"])
async def test_agents_get_403(app, path):
    agent = await login(app, "agent1", "agent1-demo")
    _, r = await app.asgi_client.get(path, headers=agent)
    assert r.status == 403 and r.json["error"]


async def test_supervisor_lists_the_months_and_formats(app):
    sup = await login(app, "supervisor", "supervisor-demo")
    _, r = await app.asgi_client.get("/desk/api/reports", headers=sup)
    assert r.status == 200
    assert r.json["reports"] == [{"month": "2026-10", "formats": ["html", "pdf", "xlsx"]}, {"month": "2026-09", "formats": ["html"]}]


@pytest.mark.parametrize(("name", "content_type", "attachment"), [
    ("2026-10.html", "text/html; charset=utf-8", False),
    ("2026-10.pdf", "application/pdf", True),
    ("2026-10.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", True),
])
async def test_supervisor_downloads_the_report_bytes(app, name, content_type, attachment):
    sup = await login(app, "supervisor", "supervisor-demo")
    _, r = await app.asgi_client.get(f"/desk/api/reports/{name}", headers=sup)
    assert r.status == 200
    assert r.body == FILES[name]
    assert r.headers["content-type"] == content_type
    disposition = r.headers.get("content-disposition", "")
    assert (disposition == f'attachment; filename="{name}"') if attachment else not disposition.startswith("attachment")
    assert "sandbox" in r.headers["content-security-policy"] and r.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("name", [
    "..%2Fsecret.html", "%2E%2E%2Fsecret.html", "..%252Fsecret.html", "..%5Csecret.html", "2026-10.html%00.pdf",
    "2026-13.pdf", "2026-00.pdf", "26-10.pdf", "2026-1.pdf", "2026-10", "2026-10.exe", "2026-10.PDF", "2026-10.pdf.",
    "notes.txt", "%202026-10.pdf",
])
async def test_bad_names_and_traversal_are_refused(app, name):
    sup = await login(app, "supervisor", "supervisor-demo")
    _, r = await app.asgi_client.get(f"/desk/api/reports/{name}", headers=sup)
    assert r.status == 400 and "2026-10.pdf" in r.json["error"]


@pytest.mark.parametrize("path", ["/desk/api/reports/../../secret.html", "/desk/api/reports/../secret.html",
                                  "/desk/api/reports/sub/2026-10.pdf", "/desk/api/reports/2026-08.pdf"])
async def test_what_is_outside_or_not_written_is_not_found(app, path):
    sup = await login(app, "supervisor", "supervisor-demo")
    _, r = await app.asgi_client.get(path, headers=sup)
    assert r.status in (400, 404) and b"outside the reports folder" not in r.body


async def test_no_analytics_store_means_no_alerts_and_none_is_created(app, sources):
    sup = await login(app, "supervisor", "supervisor-demo")
    for path in ("/desk/api/alerts", "/desk/api/alerts?open=1"):
        _, r = await app.asgi_client.get(path, headers=sup)
        assert r.status == 200 and r.json == {"alerts": []}
    assert not Path(sources.analytics_url.removeprefix("sqlite:///")).exists()


async def test_alerts_come_from_the_analytics_store_with_masked_examples(app, sources):
    # the hand-counted history of tests/analytics (a raw ID and phone number typed in), ingested as analytics does it
    write_history(sources)
    ingester = sources.ingester()
    ingester.run()
    store: AnalyticsStore = ingester.store
    stored = store.call(lambda s: [t for t in s.scalars(select(Turn.text).where(Turn.role == "citizen")) if "身份证" in t])
    assert stored and RAW_ID not in stored[0]
    now = dt.datetime.now(ZoneInfo("Asia/Shanghai")).replace(microsecond=0, tzinfo=None)  # the store keeps local times
    ended_long_ago = dt.datetime(2026, 3, 4, 9)

    def add(s):
        s.add(Alert(topic="社保卡/进度查询", level="hourly", started_at=now - dt.timedelta(hours=2), detected_at=now - dt.timedelta(hours=1),
                    last_signal_at=now - dt.timedelta(hours=1), ended_at=None, count=18, expected=5.5, p_value=1e-8,
                    total_count=18, total_expected=5.5, examples=stored, entries=[["card-0510", 9]]))
        s.add(Alert(topic="社保卡/挂失", level="daily", started_at=dt.datetime(2026, 3, 2, 9), detected_at=dt.datetime(2026, 3, 3),
                    last_signal_at=dt.datetime(2026, 3, 3), ended_at=ended_long_ago, count=30, expected=10.0, p_value=1e-7,
                    total_count=30, total_expected=10.0, examples=["社保卡丢了咋办"], entries=[["card-0501", 2]]))
    store.call(add)
    store.dispose()

    sup = await login(app, "supervisor", "supervisor-demo")
    _, r = await app.asgi_client.get("/desk/api/alerts?open=1", headers=sup)
    assert r.status == 200
    [alert] = r.json["alerts"]
    assert alert["topic"] == "社保卡/进度查询" and alert["open"] is True
    assert (alert["count"], alert["expected"]) == (18, 5.5) and alert["started_at"] == (now - dt.timedelta(hours=2)).isoformat()
    assert alert["examples"] == stored and "热点预警" in alert["text"] and "社保卡/进度查询" in alert["text"]
    assert RAW_ID not in r.text and RAW_PHONE not in r.text
    _, r = await app.asgi_client.get("/desk/api/alerts", headers=sup)
    assert [(a["topic"], a["open"]) for a in r.json["alerts"]] == [("社保卡/进度查询", True), ("社保卡/挂失", False)]


@pytest.mark.browser
async def test_supervisor_sees_the_banner_and_the_reports_in_headless_chromium(app, sources):
    """The desk page in headless Chromium against the app served in-process: banner, examples, report links."""
    from tests.e2e.browser import CHROMIUM_ARGS, chromium_path, desk_login
    from tests.voice.doubles import serve

    exe = chromium_path()
    if exe is None:
        pytest.fail("Chromium is not installed (make system-deps installs it)")
    from playwright.async_api import async_playwright

    store = AnalyticsStore(sources.analytics_url)
    store.call(lambda s: s.add(Alert(topic="社保卡/挂失", level="hourly", started_at=dt.datetime(2026, 3, 2, 9),
                                     detected_at=dt.datetime(2026, 3, 2, 11), last_signal_at=dt.datetime(2026, 3, 2, 11),
                                     count=21, expected=6.0, p_value=1e-9, examples=["身份证3701**********1238 的卡丢了咋办"],
                                     entries=[])))
    store.dispose()
    async with serve(app) as port, async_playwright() as p:
        b = await p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            base = f"http://127.0.0.1:{port}"
            for user, password in (("agent1", "agent1-demo"), ("supervisor", "supervisor-demo")):
                page = await desk_login(b, base, user, password)
                if user == "agent1":  # an agent sees neither the banner nor the reports
                    await page.wait_for_timeout(500)
                    assert await page.locator("#alerts").is_hidden() and await page.locator("#reports").is_hidden()
                    await page.close()
            banner = page.locator("#alerts")
            await banner.locator(".alert-item").wait_for()
            text = await banner.inner_text()
            assert "社保卡/挂失" in text and "21 次" in text and "3月2日 09:00" in text
            example = banner.locator(".examples li")
            assert await example.is_hidden()
            await banner.locator(".alert-item b").click()
            assert await example.inner_text() == "身份证3701**********1238 的卡丢了咋办"
            links = page.locator("#reports a")
            await links.first.wait_for()
            hrefs = [(await a.inner_text(), await a.get_attribute("href")) for a in await links.all()]
            assert hrefs == [("打开", "/desk/api/reports/2026-10.html"), ("PDF", "/desk/api/reports/2026-10.pdf"),
                             ("XLSX", "/desk/api/reports/2026-10.xlsx"), ("打开", "/desk/api/reports/2026-09.html")]
            async with page.expect_download() as info:
                await page.locator("#reports a", has_text="PDF").click()
            download = await info.value
            assert download.suggested_filename == "2026-10.pdf"
            assert Path(await download.path()).read_bytes() == FILES["2026-10.pdf"]
        finally:
            await b.close()
