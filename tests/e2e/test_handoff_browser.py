"""Issue 4 end to end in headless Chromium with two browser contexts: citizen and agent."""
from __future__ import annotations

import random
import string

import pytest

from tests.e2e.test_chat_page_browser import browser  # noqa: F401  (shared Chromium fixture)

pytestmark = pytest.mark.browser


def test_citizen_is_served_by_an_agent_then_rates_then_the_bot_answers_again(stack, browser):  # noqa: F811
    citizen_ctx, agent_ctx = browser.new_context(), browser.new_context()
    citizen, agent = citizen_ctx.new_page(), agent_ctx.new_page()
    try:
        marker = "QX" + "".join(random.choices(string.ascii_uppercase, k=5))  # finds this conversation in the desk
        citizen.goto(stack["webapp"] + "/")
        citizen.fill("#input", f"我的问题编号{marker}")
        citizen.press("#input", "Enter")
        citizen.wait_for_selector(".msg.bot", timeout=30_000)
        citizen.fill("#input", "转人工")
        citizen.press("#input", "Enter")
        citizen.wait_for_selector("#queue:not([hidden])", timeout=30_000)
        assert "排队" in citizen.inner_text("#queue")

        # the desk refuses anonymous access
        agent.goto(stack["webapp"] + "/desk")
        assert agent.url.endswith("/desk/login")
        agent.fill("#username", "agent1")
        agent.fill("#password", "agent1-demo")
        agent.click("button[type=submit]")
        agent.wait_for_url("**/desk")
        entry = agent.locator("#queues li", has_text=marker).first
        entry.wait_for(timeout=15_000)
        entry.click()
        agent.click("#claim")
        citizen.wait_for_selector("text=人工客服（坐席一号）已接入", timeout=10_000)

        agent.wait_for_selector("#reply:not([disabled])")
        agent.fill("#reply", "您好，我是人工客服，请问您要办理什么业务？")
        agent.press("#reply", "Enter")
        citizen.wait_for_selector(".msg.agent", timeout=10_000)
        assert "人工客服" in citizen.inner_text(".msg.agent")

        agent.on("dialog", lambda d: d.accept())
        agent.click("#resolve")
        citizen.wait_for_selector("#rating:not([hidden])", timeout=10_000)
        citizen.click("#rating button[data-score='满意']")
        citizen.wait_for_selector("text=感谢您的评价", timeout=10_000)

        # the bot serves the conversation again: the question is answered from the knowledge base (in
        # whatever band: this test is about the hand-back, tests/unit/test_answer_stability.py about bands)
        bots_before = citizen.locator(".msg.bot").count()
        citizen.fill("#input", "电子社保卡咋领 用啥app")
        citizen.press("#input", "Enter")
        citizen.wait_for_function(f"document.querySelectorAll('.msg.bot').length > {bots_before}", timeout=30_000)
        replies = citizen.locator(".msg.bot").all_inner_texts()[bots_before:]
        assert "电子社保卡" in "\n".join(replies) and "排队" not in "\n".join(replies), replies
    finally:
        citizen_ctx.close()
        agent_ctx.close()
