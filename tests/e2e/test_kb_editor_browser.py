"""The desk's 知识库 tab in headless Chromium (docs/knowledge_desk.md): a supervisor edits an entry, reviews and
publishes it and sees its history; an agent proposes a change that waits for review and may not publish it; a diff
between two revisions, retiring an entry and restoring an old revision; the editor's validation (a voice answer over
80 characters, a new entry duplicating an existing question); two supervisors editing the same entry at once (the
second save is refused, nothing is overwritten); export and import of an area's file. Every step is checked in what
the page shows and in what the API then answers; nothing on the pages breaks their Content-Security-Policy.

The web app is served in-process on loopback over a database of its own; it seeds the knowledge tables from the
repository's YAML at start.
"""
from __future__ import annotations

import re
import uuid
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.e2e.browser import CHROMIUM_ARGS, chromium_path, desk_login
from webapp.app import create_app
from webapp.settings import Settings

pytestmark = pytest.mark.browser

ENTRY = "ecard-0001"          # 电子社保卡是什么？
OTHER = "ecard-0003"          # 申领电子社保卡需要什么条件？
WHEN = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}")
# what Chromium logs for an answer the page expects (a refused save, a forbidden call): not a fault of the page
EXPECTED_REFUSALS = re.compile(r"Failed to load resource: the server responded with a status of (403|409|422)")


@pytest.fixture()
def app(tmp_path: Path):
    """The web app over a database of its own (the knowledge tables seeded from knowledge/content/*.yml) and an
    empty analytics store of its own (the developer's must not be read)."""
    from analytics.settings import Settings as AnalyticsSettings

    analytics = AnalyticsSettings(database_url=f"sqlite:///{tmp_path}/analytics.db",
                                  rasa_events_url=f"sqlite:///{tmp_path}/events.db",
                                  tracker_store_url=f"sqlite:///{tmp_path}/tracker.db",
                                  webapp_database_url=f"sqlite:///{tmp_path}/d.db", voice_db_path=str(tmp_path / "calls.db"))
    settings = Settings(database_url=f"sqlite:///{tmp_path}/d.db", analytics=analytics, reports_dir=tmp_path / "reports")
    return create_app(settings, name=f"kbed{abs(hash(tmp_path)) % 10**8}")


@asynccontextmanager
async def chromium(app):
    """(browser, base URL) with the app served on loopback."""
    exe = chromium_path()
    if exe is None:
        pytest.fail("Chromium is not installed (make system-deps installs it)")
    from playwright.async_api import async_playwright

    from tests.voice.doubles import serve

    async with serve(app) as port, async_playwright() as p:
        b = await p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            yield b, f"http://127.0.0.1:{port}"
        finally:
            await b.close()


async def login(browser, base: str, user: str, password: str, console: list[str]):
    """desk_login, and the desk page's console errors recorded with their address ("console-error: <url> <text>"):
    the browser's own request for /favicon.ico (the desk has none) is not the page's fault."""
    page = await desk_login(browser, base, user, password, console)

    def record(message) -> None:
        url = (message.location or {}).get("url", "")
        if message.type == "error" and not url.endswith("/favicon.ico"):
            console.append(f"console-error: {url} {message.text}")
    page.on("console", record)
    return page


def assert_clean(console: list[str]) -> None:
    """No Content-Security-Policy violation, no script error, no console error but an expected refusal."""
    bad = [m for m in console if "Content Security Policy" in m or m.startswith("pageerror")
           or (m.startswith("console-error:") and not EXPECTED_REFUSALS.search(m))]
    assert not bad, console


async def api(page, base: str, path: str) -> dict:
    """GET a desk API path with the page's login cookie."""
    r = await page.request.get(base + path)
    assert r.status == 200, (path, r.status, await r.text())
    return await r.json()


async def open_kb(page) -> None:
    """Open the 知识库 tab."""
    from playwright.async_api import expect

    await page.click("#tab-kb")
    await expect(page.locator("#kb-admin")).to_be_visible()
    await expect(page.locator(".layout")).to_be_hidden()
    await expect(page.locator("#dashboard")).to_be_hidden()
    await expect(page.locator("#tab-kb")).to_have_class(re.compile(r"\bactive\b"))


async def open_entry(page, query: str, entry_id: str) -> None:
    """Search for `query` and open `entry_id` from the results."""
    from playwright.async_api import expect

    await page.fill("#kb-search-q", query)
    await page.click("#kb-search button")
    await expect(page.locator("#kb-list-title")).to_contain_text(query)
    await page.click(f"#kb-list li[data-id='{entry_id}']")
    await expect(page.locator("#kb-entry-id")).to_contain_text(entry_id)
    await expect(page.locator("#kb-history tr[data-number]").first).to_be_visible()


async def save(page, note: str) -> None:
    await page.fill("#kb-f-note", note)
    await page.click("#kb-save")


async def review_and_publish(page, number: int) -> None:
    """As a supervisor: 审核通过 then 发布 the pending revision `number`; the header then shows it published."""
    from playwright.async_api import expect

    pending = page.locator("#kb-pending .kb-pending", has_text=f"第 {number} 版")
    await expect(pending.locator("button[data-act=publish]")).to_be_disabled()  # a draft is reviewed first
    await pending.locator("button[data-act=review]").click()
    await expect(page.locator("#kb-status")).to_contain_text(f"第 {number} 版已审核通过")
    pending = page.locator("#kb-pending .kb-pending", has_text=f"第 {number} 版")
    await expect(pending.locator("button[data-act=publish]")).to_be_enabled()
    await pending.locator("button[data-act=publish]").click()
    await expect(page.locator("#kb-status")).to_contain_text(f"第 {number} 版已发布")
    await expect(page.locator("#kb-entry-published")).to_contain_text(f"已发布第 {number} 版")
    await expect(page.locator("#kb-entry-state")).to_have_text("已发布")
    await expect(page.locator("#kb-pending .kb-pending")).to_have_count(0)


async def test_supervisor_edits_reviews_and_publishes_an_entry(app):
    from playwright.async_api import expect

    console: list[str] = []
    marker = "（测试补充" + uuid.uuid4().hex[:8] + "）"
    async with chromium(app) as (b, base):
        page = await login(b, base, "supervisor", "supervisor-demo", console)
        await expect(page.locator("#tab-dashboard")).to_be_visible()
        await open_kb(page)
        await expect(page.locator("#kb-sup-tools")).to_be_visible()
        await open_entry(page, "电子社保卡是什么", ENTRY)
        await expect(page.locator("#kb-entry-state")).to_have_text("已发布")
        await expect(page.locator("#kb-entry-published")).to_contain_text("已发布第 1 版")
        await expect(page.locator("#kb-f-question")).to_have_value("电子社保卡是什么？")
        await expect(page.locator("#kb-para-count")).to_contain_text("13 条")
        original = await page.input_value("#kb-f-answer")
        assert original.startswith("电子社保卡是实体社保卡的线上形态")
        await expect(page.locator("#kb-voice-count")).to_have_text(re.compile(r"^\d+/80$"))
        await expect(page.locator("#kb-voice-count")).not_to_have_class(re.compile("kb-over"))

        await page.fill("#kb-f-answer", original + marker)
        await save(page, "补充说明")
        await expect(page.locator("#kb-status")).to_contain_text("已保存为草稿（第 2 版）")
        await expect(page.locator("#kb-pending .kb-pending")).to_have_count(1)
        await expect(page.locator("#kb-pending .kb-pending")).to_contain_text("第 2 版草稿")
        await expect(page.locator("#kb-entry-published")).to_contain_text("已发布第 1 版")
        draft = (await api(page, base, f"/desk/api/kb/entries/{ENTRY}"))
        newest = max(draft["revisions"], key=lambda r: r["number"])
        assert newest["state"] == "draft" and newest["data"]["answer"].endswith(marker) and newest["note"] == "补充说明"
        assert not draft["published"]["answer"].endswith(marker)  # nothing the bot answers has changed yet

        await review_and_publish(page, 2)
        assert (await page.input_value("#kb-f-answer")).endswith(marker)
        row2, row1 = page.locator("#kb-history tr[data-number='2']"), page.locator("#kb-history tr[data-number='1']")
        await expect(row2).to_contain_text("已发布")
        await expect(row2).to_contain_text("补充说明")
        cells = await row2.locator("td").all_inner_texts()
        assert cells[2] == "supervisor" and WHEN.search(cells[3])  # 作者, 时间
        assert cells[5].startswith("supervisor") and WHEN.search(cells[5])  # 审核
        assert cells[6].startswith("supervisor") and WHEN.search(cells[6])  # 发布
        await expect(row1).to_contain_text("已被替代")
        await expect(row1).to_contain_text("仓库文件")

        data = await api(page, base, f"/desk/api/kb/entries/{ENTRY}")
        assert data["entry"]["state"] == "published" and data["entry"]["published"] == 2
        assert data["published"]["answer"] == original + marker
        published = next(r for r in data["revisions"] if r["number"] == 2)
        assert published["state"] == "published" and published["published_by"] == "supervisor"
        assert published["reviewed_by"] == "supervisor"
        # the list shows the entry published, nothing waits for review
        await expect(page.locator("#kb-review-count")).to_have_text("0")
        await expect(page.locator(f"#kb-list li[data-id='{ENTRY}']")).to_contain_text("已发布")
    assert_clean(console)


async def test_an_agent_proposes_and_a_supervisor_publishes(app):
    from playwright.async_api import expect

    console: list[str] = []
    marker = "（坐席建议" + uuid.uuid4().hex[:8] + "）"
    async with chromium(app) as (b, base):
        agent = await login(b, base, "agent1", "agent1-demo", console)
        await expect(agent.locator("#tab-kb")).to_be_visible()
        await expect(agent.locator("#tab-dashboard")).to_be_hidden()
        await open_kb(agent)
        await expect(agent.locator("#kb-sup-tools")).to_be_hidden()
        await open_entry(agent, "申领电子社保卡", OTHER)
        await expect(agent.locator("#kb-retire")).to_be_hidden()
        original = await agent.input_value("#kb-f-answer")
        await agent.fill("#kb-f-answer", original + marker)
        await save(agent, "坐席建议补充")
        await expect(agent.locator("#kb-status")).to_contain_text("已保存为草稿（第 2 版），等待值班长审核")
        pending = agent.locator("#kb-pending .kb-pending")
        await expect(pending).to_contain_text("第 2 版草稿，待审核")
        # the agent may withdraw the draft, not review, publish or reject it
        await expect(pending.locator("button[data-act=withdraw]")).to_be_visible()
        for act in ("review", "publish", "reject"):
            await expect(agent.locator(f"button[data-act={act}]")).to_have_count(0)
        await expect(agent.get_by_role("button", name="发布", exact=True)).to_have_count(0)
        await expect(agent.locator("#kb-review-count")).to_have_text("1")
        await agent.click("#kb-show-review")
        await expect(agent.locator(f"#kb-list li[data-id='{OTHER}']")).to_contain_text("待审核")

        data = await api(agent, base, f"/desk/api/kb/entries/{OTHER}")
        draft = next(r for r in data["revisions"] if r["number"] == 2)
        assert draft["state"] == "draft" and draft["author"] == "agent1"
        refused = await agent.request.post(base + f"/desk/api/kb/revisions/{draft['rev']}/publish")
        assert refused.status == 403
        refused = await agent.request.post(base + f"/desk/api/kb/revisions/{draft['rev']}/review")
        assert refused.status == 403
        data = await api(agent, base, f"/desk/api/kb/entries/{OTHER}")
        assert next(r for r in data["revisions"] if r["number"] == 2)["state"] == "draft"
        assert data["published"]["answer"] == original

        sup = await login(b, base, "supervisor", "supervisor-demo", console)
        await open_kb(sup)
        await expect(sup.locator("#kb-review-count")).to_have_text("1")
        await sup.click("#kb-show-review")
        item = sup.locator(f"#kb-list li[data-id='{OTHER}']")
        await expect(item).to_contain_text("第 2 版 · 草稿（待审核）")
        await expect(item).to_contain_text("agent1")
        await expect(item).to_contain_text("坐席建议补充")
        await item.click()
        await expect(sup.locator("#kb-entry-id")).to_contain_text(OTHER)
        await expect(sup.locator("#kb-pending .kb-pending")).to_contain_text("agent1")
        await expect(sup.locator("#kb-pending button[data-act=withdraw]")).to_have_count(0)  # not the author
        await review_and_publish(sup, 2)
        await expect(sup.locator("#kb-review-count")).to_have_text("0")
        await expect(sup.locator("#kb-list li.kb-none")).to_contain_text("没有待审核的修改")

        data = await api(sup, base, f"/desk/api/kb/entries/{OTHER}")
        assert data["published"]["answer"] == original + marker
        published = next(r for r in data["revisions"] if r["number"] == 2)
        assert (published["author"], published["published_by"]) == ("agent1", "supervisor")
    assert_clean(console)


async def test_diff_retire_and_restore_an_old_revision(app):
    from playwright.async_api import expect

    console: list[str] = []
    async with chromium(app) as (b, base):
        page = await login(b, base, "supervisor", "supervisor-demo", console)
        await open_kb(page)
        await open_entry(page, "电子社保卡是什么", ENTRY)
        original = await page.input_value("#kb-f-answer")
        assert "由人社部统一签发" in original
        await page.fill("#kb-f-answer", original.replace("由人社部统一签发", "由国家统一发放"))
        await save(page, "改写签发说法")
        await expect(page.locator("#kb-status")).to_contain_text("第 2 版")
        await review_and_publish(page, 2)

        # 对比: revision 2 against revision 1, field by field
        await page.locator("#kb-history tr[data-number='2'] button[data-act=diff]").click()
        diff = page.locator("#kb-diff")
        await expect(diff).to_be_visible()
        await expect(diff).to_contain_text("第 1 版 → 第 2 版")
        answer = diff.locator(".kb-diff-field[data-field=answer]")
        await expect(answer.locator("del").first).to_be_visible()
        await expect(answer.locator("ins").first).to_be_visible()
        deleted = "".join(await answer.locator("del").all_inner_texts())
        inserted = "".join(await answer.locator("ins").all_inner_texts())
        assert "人社部" in deleted and "国家" in inserted and "国家" not in deleted and "人社部" not in inserted
        assert "统一" in "".join(await answer.locator("span").all_inner_texts())  # unchanged text stays plain
        await expect(diff.locator(".kb-diff-field")).to_have_count(1)  # only the answer changed
        await expect(page.locator("#kb-history tr[data-number='1'] button[data-act=diff]")).to_be_disabled()

        # 停用 with its confirmation dialog: the entry leaves the answers
        await page.click("#kb-retire")
        await expect(page.locator("#kb-dialog")).to_be_visible()
        await page.click("#kb-dialog-ok")  # a note is required
        await expect(page.locator("#kb-dialog-error")).to_be_visible()
        await page.fill("#kb-dialog-note", "测试停用")
        await page.click("#kb-dialog-ok")
        await expect(page.locator("#kb-dialog")).to_be_hidden()
        await expect(page.locator("#kb-entry-state")).to_have_text("已停用")
        await expect(page.locator("#kb-retire")).to_be_hidden()
        assert (await api(page, base, f"/desk/api/kb/entries/{ENTRY}"))["entry"]["state"] == "retired"

        # 恢复此版 (revision 1), then 发布: the old text is what the bot answers again
        await page.locator("#kb-history tr[data-number='1'] button[data-act=restore]").click()
        await expect(page.locator("#kb-dialog")).to_be_visible()
        await expect(page.locator("#kb-dialog-note")).to_have_value("恢复第 1 版")
        await page.click("#kb-dialog-ok")
        await expect(page.locator("#kb-status")).to_contain_text("已按第 1 版生成新版本（第 4 版）")
        pending = page.locator("#kb-pending .kb-pending", has_text="第 4 版")
        await expect(pending).to_contain_text("已审核，待发布")  # a supervisor's restore is reviewed at once
        await pending.locator("button[data-act=publish]").click()
        await expect(page.locator("#kb-entry-published")).to_contain_text("已发布第 4 版")
        await expect(page.locator("#kb-entry-state")).to_have_text("已发布")
        await expect(page.locator("#kb-f-answer")).to_have_value(original.rstrip())
        await expect(page.locator("#kb-history tr[data-number='4']")).to_contain_text("恢复")

        data = await api(page, base, f"/desk/api/kb/entries/{ENTRY}")
        assert data["entry"]["state"] == "published" and data["entry"]["published"] == 4
        assert data["published"]["answer"] == original.strip()
        restored = next(r for r in data["revisions"] if r["number"] == 4)
        assert restored["source"] == "restore" and restored["published_by"] == "supervisor"
    assert_clean(console)


async def test_the_editor_refuses_a_long_voice_answer_and_shows_duplicates(app):
    from playwright.async_api import expect

    console: list[str] = []
    async with chromium(app) as (b, base):
        page = await login(b, base, "supervisor", "supervisor-demo", console)
        await open_kb(page)
        total = (await api(page, base, "/desk/api/kb/entries"))["total"]
        await open_entry(page, "电子社保卡是什么", ENTRY)
        await page.fill("#kb-f-voice", "电子社保卡" * 18)  # 90 characters
        await expect(page.locator("#kb-voice-count")).to_have_text("90/80")
        await expect(page.locator("#kb-voice-count")).to_have_class(re.compile("kb-over"))
        await save(page, "太长的语音答复")
        error = page.locator("#kb-error")
        await expect(error).to_be_visible()
        await expect(error).to_have_attribute("role", "alert")
        await expect(error).to_contain_text("没有保存")
        await expect(error).to_contain_text("语音答复有 90 个字，超过 80 个字的上限")
        await expect(page.locator("#kb-f-voice")).to_have_value("电子社保卡" * 18)  # the user's text stays
        data = await api(page, base, f"/desk/api/kb/entries/{ENTRY}")
        assert data["entry"]["head"] == 1 and len(data["revisions"]) == 1

        # leaving the form with unsaved changes asks first; 取消 keeps them
        await page.click("#kb-new")
        await expect(page.locator("#kb-dialog")).to_be_visible()
        await expect(page.locator("#kb-dialog-title")).to_have_text("放弃未保存的修改？")
        await page.click("#kb-dialog-cancel")
        await expect(page.locator("#kb-dialog")).to_be_hidden()
        await expect(page.locator("#kb-entry-id")).to_contain_text(ENTRY)
        await expect(page.locator("#kb-f-voice")).to_have_value("电子社保卡" * 18)

        # 新建条目 asking what ecard-0001 asks: 检查 and 保存 both name the existing entry, nothing is created
        await page.click("#kb-new")
        await page.click("#kb-dialog-ok")  # 放弃修改
        await expect(page.locator("#kb-entry-id")).to_have_text("新建条目")
        await expect(page.locator("#kb-f-area")).to_be_visible()
        await page.select_option("#kb-f-area", "ecard")
        await expect(page.locator("#kb-f-category")).to_have_value("电子社保卡/")
        await page.fill("#kb-f-category", "电子社保卡/申领")
        await page.fill("#kb-f-question", "电子社保卡是什么？")
        await page.fill("#kb-f-paraphrases", "\n".join(f"测试问法第{i}种说法" for i in range(1, 4)))
        await expect(page.locator("#kb-para-count")).to_have_class(re.compile("kb-over"))  # fewer than 5
        await page.fill("#kb-f-paraphrases", "\n".join(f"测试问法第{i}种说法" for i in range(1, 6)))
        await expect(page.locator("#kb-para-count")).to_contain_text("5 条")
        await expect(page.locator("#kb-para-count")).not_to_have_class(re.compile("kb-over"))
        await page.fill("#kb-f-answer", "这是测试用的答复，请拨打12333咨询。")
        await page.fill("#kb-f-voice", "这是测试用的语音答复。")
        await page.fill("#kb-f-source", "测试")
        await page.click("#kb-check")
        await expect(page.locator("#kb-error")).to_contain_text(ENTRY)
        dups = page.locator("#kb-dups")
        await expect(dups).to_be_visible()
        await expect(dups).to_contain_text(ENTRY)
        await expect(dups).to_contain_text("电子社保卡是什么？")
        await save(page, "重复的新条目")
        await expect(page.locator("#kb-error")).to_contain_text("没有保存")
        await expect(dups).to_contain_text(ENTRY)
        assert (await api(page, base, "/desk/api/kb/entries"))["total"] == total

        # the same entry asking something new is created as a draft of a new id, not yet published
        question = "电子社保卡测试条目" + uuid.uuid4().hex[:6] + "怎么办理？"
        await page.fill("#kb-f-question", question)
        await save(page, "新条目")
        await expect(page.locator("#kb-status")).to_contain_text("已保存为草稿（第 1 版）")
        await expect(page.locator("#kb-entry-id")).to_contain_text("ecard-")
        await expect(page.locator("#kb-entry-state")).to_have_text("未发布")
        new_id = (await page.locator("#kb-entry-id").inner_text()).split("（")[0]
        assert new_id != ENTRY and re.fullmatch(r"ecard-\d{4}", new_id)
        data = await api(page, base, f"/desk/api/kb/entries/{new_id}")
        assert data["published"] is None and data["revisions"][0]["data"]["question"] == question
        assert (await api(page, base, "/desk/api/kb/entries"))["total"] == total + 1
    assert_clean(console)


async def test_a_concurrent_edit_is_refused_not_overwritten(app):
    from playwright.async_api import expect

    console: list[str] = []
    async with chromium(app) as (b, base):
        first = await login(b, base, "supervisor", "supervisor-demo", console)
        second = await login(b, base, "supervisor", "supervisor-demo", console)
        for page in (first, second):
            await open_kb(page)
            await open_entry(page, "电子社保卡是什么", ENTRY)
        original = await first.input_value("#kb-f-answer")
        await first.fill("#kb-f-answer", original + "甲的修改")
        await second.fill("#kb-f-answer", original + "乙的修改")
        await save(first, "甲")
        await expect(first.locator("#kb-status")).to_contain_text("已保存为草稿（第 2 版）")
        await save(second, "乙")
        await expect(second.locator("#kb-error")).to_have_text("该条目已被他人修改（第 2 版），请刷新后再改")
        await expect(second.locator("#kb-f-answer")).to_have_value(original + "乙的修改")  # nothing typed is lost
        data = await api(second, base, f"/desk/api/kb/entries/{ENTRY}")
        assert data["entry"]["head"] == 2
        assert [r["data"]["answer"].endswith("甲的修改") for r in data["revisions"] if r["number"] == 2] == [True]
        assert not any("乙的修改" in r["data"]["answer"] for r in data["revisions"])
        # 重新载入 (giving up the unsaved text, after a confirmation) shows what the other supervisor saved
        await second.click("#kb-reload")
        await expect(second.locator("#kb-dialog")).to_be_visible()
        await second.click("#kb-dialog-ok")
        await expect(second.locator("#kb-f-answer")).to_have_value(original + "甲的修改")
        await expect(second.locator("#kb-error")).to_be_hidden()
    assert_clean(console)


async def test_export_and_import_an_area_file(app, tmp_path: Path):
    from playwright.async_api import expect

    console: list[str] = []
    marker = "导入测试" + uuid.uuid4().hex[:6]
    async with chromium(app) as (b, base):
        page = await login(b, base, "supervisor", "supervisor-demo", console)
        await open_kb(page)
        await page.select_option("#kb-export-area", "ecard")
        await expect(page.locator("#kb-export")).to_have_attribute("href", "/desk/api/kb/export?area=ecard")
        async with page.expect_download() as info:
            await page.click("#kb-export")
        text = Path(await (await info.value).path()).read_text(encoding="utf-8")
        assert text.startswith("area: ecard") and "电子社保卡是什么？" in text
        changed = text.replace("由人社部统一签发", "由人社部统一签发（" + marker + "）", 1)
        assert changed != text
        upload = tmp_path / "ecard.yml"
        upload.write_text(changed, encoding="utf-8")

        await page.click("#kb-import")
        await expect(page.locator("#kb-import-dialog")).to_be_visible()
        await page.set_input_files("#kb-import-file", str(upload))
        await page.click("#kb-import-go")
        result = page.locator("#kb-import-result")
        await expect(result).to_contain_text("导入完成：新增 0 条，修改 1 条")
        await page.click("#kb-import-close")
        # imported without 直接发布: a draft waiting for review, the published text unchanged
        await expect(page.locator("#kb-review-count")).to_have_text("1")
        data = await api(page, base, f"/desk/api/kb/entries/{ENTRY}")
        assert marker not in data["published"]["answer"]
        newest = max(data["revisions"], key=lambda r: r["number"])
        assert newest["state"] == "draft" and marker in newest["data"]["answer"]
    assert_clean(console)


async def test_withdraw_reject_filters_and_pages(app):
    """An agent withdraws a draft, a supervisor rejects the next one with a reason; the list's state, category and
    待地方确认 filters and its pages show what the API counts."""
    from playwright.async_api import expect

    console: list[str] = []
    async with chromium(app) as (b, base):
        agent = await login(b, base, "agent1", "agent1-demo", console)
        await open_kb(agent)
        await open_entry(agent, "申领电子社保卡", OTHER)
        original = await agent.input_value("#kb-f-answer")
        await agent.fill("#kb-f-answer", original + "（撤回前）")
        await save(agent, "第一次建议")
        await expect(agent.locator("#kb-review-count")).to_have_text("1")
        await agent.locator("#kb-pending button[data-act=withdraw]").click()
        await expect(agent.locator("#kb-status")).to_contain_text("第 2 版已撤回")
        await expect(agent.locator("#kb-pending .kb-pending")).to_have_count(0)
        await expect(agent.locator("#kb-history tr[data-number='2']")).to_contain_text("已撤回")
        await expect(agent.locator("#kb-review-count")).to_have_text("0")
        await agent.fill("#kb-f-answer", original + "（第二次）")
        await save(agent, "第二次建议")
        await expect(agent.locator("#kb-status")).to_contain_text("第 3 版")

        sup = await login(b, base, "supervisor", "supervisor-demo", console)
        await open_kb(sup)
        # 待审核 filter: just the entry with the draft
        await sup.select_option("#kb-filter-state", "pending")
        await expect(sup.locator("#kb-list-title")).to_contain_text("共 1 条")
        await expect(sup.locator("#kb-list li")).to_have_count(1)
        await sup.click(f"#kb-list li[data-id='{OTHER}']")
        pending = sup.locator("#kb-pending .kb-pending", has_text="第 3 版")
        await pending.locator("button[data-act=reject]").click()
        await expect(sup.locator("#kb-dialog")).to_be_visible()
        await sup.click("#kb-dialog-ok")  # a reason is required
        await expect(sup.locator("#kb-dialog-error")).to_have_text("请填写说明")
        await sup.fill("#kb-dialog-note", "表述不准确")
        await sup.click("#kb-dialog-ok")
        await expect(sup.locator("#kb-status")).to_contain_text("第 3 版已退回")
        row = sup.locator("#kb-history tr[data-number='3']")
        await expect(row).to_contain_text("已退回")
        await expect(row).to_contain_text("表述不准确")
        await expect(sup.locator("#kb-list li.kb-none")).to_contain_text("没有符合条件的条目")  # nothing pending now
        data = await api(sup, base, f"/desk/api/kb/entries/{OTHER}")
        states = {r["number"]: r["state"] for r in data["revisions"]}
        assert states == {1: "published", 2: "withdrawn", 3: "rejected"}
        assert data["published"]["answer"] == original

        # category and 待地方确认 filters, and pages of 50
        await sup.select_option("#kb-filter-state", "")
        await sup.select_option("#kb-filter-category", "电子社保卡/申领")
        expected = (await api(sup, base, "/desk/api/kb/entries?category=" + "电子社保卡/申领"))["total"]
        await expect(sup.locator("#kb-list-title")).to_contain_text(f"共 {expected} 条")
        assert all(t.startswith("电子社保卡/申领") for t in await sup.locator("#kb-list li .meta").all_inner_texts())
        await sup.select_option("#kb-filter-category", "")
        await sup.check("#kb-filter-local")
        expected = (await api(sup, base, "/desk/api/kb/entries?local_review=1"))["total"]
        await expect(sup.locator("#kb-list-title")).to_contain_text(f"共 {expected} 条")
        assert all("待地方确认" in t for t in await sup.locator("#kb-list li .meta").all_inner_texts())
        await expect(sup.locator("#kb-local-count")).to_have_text(str(expected))
        await sup.uncheck("#kb-filter-local")
        total = (await api(sup, base, "/desk/api/kb/entries"))["total"]
        pages = -(-total // 50)
        assert pages >= 2
        await expect(sup.locator("#kb-page")).to_have_text(f"第 1 / {pages} 页")
        await expect(sup.locator("#kb-list li")).to_have_count(50)
        first = await sup.locator("#kb-list li").first.get_attribute("data-id")
        await expect(sup.locator("#kb-prev")).to_be_disabled()
        await sup.click("#kb-next")
        await expect(sup.locator("#kb-page")).to_have_text(f"第 2 / {pages} 页")
        assert await sup.locator("#kb-list li").first.get_attribute("data-id") != first
    assert_clean(console)
