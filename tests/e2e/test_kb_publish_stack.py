"""A supervisor's published change reaches citizens in the running stack without retraining or restarting.

The supervisor logs in to the desk of the running stack in headless Chromium, opens the 知识库 tab, edits a
pinned entry's answer, saves, reviews and publishes it (every page of the editor: tests/e2e/
test_kb_editor_browser.py); a citizen asks in the chat page and reads the new text. The time from publishing to the
first citizen seeing it is printed (target: within a minute; docs/knowledge_desk.md). The old text is then
restored from the history and published, and the citizen sees it again: the stack is left as found.
"""
from __future__ import annotations

import time
import uuid

import httpx
import pytest

from tests.e2e.conftest import chat
from tests.e2e.test_chat_page_browser import browser  # noqa: F401  (shared Chromium fixture)

pytestmark = pytest.mark.browser
QUESTION = "刚办完退休 第一个月的养老金啥时候能到账"  # pinned to pension-0035 (tests/fixtures/pinned_answers.yml)
ENTRY = "pension-0035"
LIMIT_SECONDS = 90.0  # generous over the 60 s target: the test proves the path, the figure is printed


def _desk(stack: dict[str, str]) -> httpx.Client:
    desk = httpx.Client(base_url=stack["webapp"], timeout=60)
    r = desk.post("/desk/login", json={"username": "supervisor", "password": "supervisor-demo"})
    assert r.status_code == 200, r.text
    return desk


def _seconds_until_answered(stack: dict[str, str], text: str, marker: str | None = None) -> float:
    """Ask as new citizens until the bot's answer holds `text` (and not `marker`); the seconds it took."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < LIMIT_SECONDS:
        lines = chat(stack, "kbpub" + uuid.uuid4().hex, QUESTION)
        answers = [m.get("text") or "" for m in lines if m.get("role") == "bot"]
        if any(text in a and not (marker and marker in a) for a in answers):
            return time.monotonic() - t0
        time.sleep(1.0)
    pytest.fail(f"the published text did not reach the citizen within {LIMIT_SECONDS:.0f} s")


def _publish_in_the_desk(browser, stack: dict[str, str], marker: str) -> None:  # noqa: F811
    """As a supervisor in the desk page: 知识库 → the entry → append `marker` to the answer → 保存 → 审核通过 → 发布."""
    from playwright.sync_api import expect

    page = browser.new_page()
    try:
        page.goto(stack["webapp"] + "/desk/login")
        page.fill("#username", "supervisor")
        page.fill("#password", "supervisor-demo")
        page.click("button[type=submit]")
        page.wait_for_url("**/desk")
        page.click("#tab-kb")
        expect(page.locator("#kb-admin")).to_be_visible()
        page.fill("#kb-search-q", ENTRY)
        page.click("#kb-search button")
        page.click(f"#kb-list li[data-id='{ENTRY}']")
        expect(page.locator("#kb-entry-id")).to_contain_text(ENTRY)
        answer = page.input_value("#kb-f-answer")
        page.fill("#kb-f-answer", answer.rstrip() + "\n" + marker)
        page.fill("#kb-f-note", "端到端测试：更新答复")
        page.click("#kb-save")
        expect(page.locator("#kb-status")).to_contain_text("已保存为草稿")
        pending = page.locator("#kb-pending .kb-pending").first
        pending.locator("button[data-act=review]").click()
        expect(page.locator("#kb-status")).to_contain_text("已审核通过")
        page.locator("#kb-pending .kb-pending").first.locator("button[data-act=publish]").click()
        expect(page.locator("#kb-status")).to_contain_text("已发布")
        expect(page.locator("#kb-entry-state")).to_have_text("已发布")
    finally:
        page.close()


def test_a_published_answer_reaches_the_citizen_within_a_minute(stack, browser):  # noqa: F811
    desk = _desk(stack)
    entry = desk.get(f"/desk/api/kb/entries/{ENTRY}").json()
    old = entry["published"]
    old_rev = next(r["rev"] for r in entry["revisions"] if r["state"] == "published")
    marker = f"（值班长更新 {uuid.uuid4().hex[:6]}：首月养老金到账时间以社保经办机构通知为准。）"
    try:
        _publish_in_the_desk(browser, stack, marker)
        assert desk.get(f"/desk/api/kb/entries/{ENTRY}").json()["published"]["answer"].endswith(marker)
        seconds = _seconds_until_answered(stack, marker)
        print(f"published → answered to a citizen in {seconds:.1f} s")
        page = browser.new_page()
        try:
            page.goto(stack["webapp"] + "/")
            page.fill("#input", QUESTION)
            page.press("#input", "Enter")
            page.locator(".msg.bot .text", has_text=marker).first.wait_for(timeout=30_000)
        finally:
            page.close()
    finally:  # the stack as found: the old text restored from the history and published
        r = desk.post(f"/desk/api/kb/entries/{ENTRY}/restore", json={"rev": old_rev, "note": "端到端测试：恢复"})
        assert r.status_code == 201, r.text
        assert desk.post(f"/desk/api/kb/revisions/{r.json()['revision']['rev']}/publish").status_code == 200
        first_line = old["answer"].strip().splitlines()[0]
        back = _seconds_until_answered(stack, first_line, marker)
        print(f"restored → answered in {back:.1f} s")
        desk.close()
