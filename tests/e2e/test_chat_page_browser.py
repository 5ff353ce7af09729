"""The citizen chat page in a real browser: send 你好, see a Chinese reply, survive reload and outages."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.browser import CHROMIUM_ARGS, chromium_path

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def browser():
    exe = chromium_path()
    if exe is None:
        pytest.fail("Chromium is not installed (make system-deps installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        yield b
        b.close()


def bot_texts(page) -> list[str]:
    return page.locator(".msg.bot .text").all_inner_texts()


def test_hello_gets_a_chinese_reply_and_survives_reload(stack, browser):
    page = browser.new_page()
    page.goto(stack["webapp"] + "/")
    page.fill("#input", "你好")
    page.press("#input", "Enter")
    page.wait_for_selector(".msg.bot", timeout=30_000)
    first = bot_texts(page)[0]
    assert "社保" in first
    page.reload()
    page.wait_for_selector(".msg.bot", timeout=10_000)
    assert page.locator(".msg.citizen .text").all_inner_texts() == ["你好"]
    assert bot_texts(page)[0] == first
    page.close()


def test_buttons_are_shown_and_clickable(stack, browser):
    page = browser.new_page()
    page.goto(stack["webapp"] + "/")
    page.fill("#input", "社保卡丢了咋办")  # pinned: answered directly (tests/fixtures/pinned_answers.yml)
    page.press("#input", "Enter")
    page.locator(".msg.bot .buttons button", has_text="有帮助").first.wait_for(timeout=30_000)
    page.wait_for_timeout(500)  # the related questions ("您可能还想问") follow the answer
    before = page.locator(".msg.bot").count()
    page.locator(".msg.bot .buttons button", has_text="有帮助").first.click()
    page.wait_for_function(f"document.querySelectorAll('.msg.bot').length > {before}", timeout=30_000)
    assert "谢谢" in bot_texts(page)[-1]
    page.close()


def test_too_long_message_is_refused_and_kept_in_the_box(stack, browser):
    page = browser.new_page()
    page.goto(stack["webapp"] + "/")
    page.fill("#input", "长" * 600)
    page.press("#input", "Enter")
    assert "太长" in page.inner_text("#hint")
    assert len(page.input_value("#input")) == 600
    page.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_bot_shows_a_clear_message(browser, tmp_path):
    port = _free_port()
    env = {**os.environ, "WEBAPP_PORT": str(port), "RASA_URL": f"http://127.0.0.1:{_free_port()}",
           "WEBAPP_DATABASE_URL": f"sqlite:///{tmp_path}/down.db", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "webapp"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        page = browser.new_page()
        page.goto(url + "/")
        page.fill("#input", "你好")
        page.press("#input", "Enter")
        page.wait_for_selector(".msg.system", timeout=15_000)
        assert "暂时无法连接" in page.inner_text(".msg.system")
        # the web app itself goes away: the page says so and keeps the conversation
        proc.terminate()
        proc.wait(10)
        page.wait_for_selector("#banner:not([hidden])", timeout=15_000)
        assert "连接已断开" in page.inner_text("#banner")
        assert page.locator(".msg.citizen .text").all_inner_texts() == ["你好"]
        page.close()
    finally:
        if proc.poll() is None:
            proc.kill()
