"""The answer-quality issue's done-when, in the chat page: pinned colloquial questions get direct right answers.

Every question of tests/fixtures/pinned_answers.yml marked `browser: true` (the README's examples and
ten colloquial questions that are in no evaluation set) is typed into the citizen chat page of the
running stack; the page must show the recorded entry's answer with the 有帮助/没帮助 buttons (a direct
answer, not suggestions). tests/unit/test_answer_stability.py guards that these answers do not move
with the machine's numerics.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from knowledge.schema import load_entries
from tests.e2e.test_chat_page_browser import browser  # noqa: F401  (shared Chromium fixture)

pytestmark = pytest.mark.browser
PINNED = [p for p in yaml.safe_load((Path(__file__).resolve().parents[1] / "fixtures" / "pinned_answers.yml")
                                    .read_text(encoding="utf-8"))["pinned"] if p.get("browser")]
ANSWERS = {e.id: e.answer for e in load_entries()}
RELATED = "您可能还想问："  # actions/knowledge.py: the related-questions bubble that follows a direct answer


def test_readme_and_colloquial_questions_get_direct_right_answers(stack, browser):  # noqa: F811
    assert len(PINNED) >= 12
    page = browser.new_page()
    try:
        page.goto(stack["webapp"] + "/")
        for pin in PINNED:
            before = page.locator(".msg.bot").count()
            page.fill("#input", pin["text"])
            page.press("#input", "Enter")
            # the previous answer's related questions ("您可能还想问：", a bubble of their own) may still arrive
            # after this question is sent: they belong to the previous turn, so they are skipped here
            page.wait_for_function(
                f"Array.from(document.querySelectorAll('.msg.bot')).slice({before})"
                f".some(m => !m.querySelector('.text').textContent.startsWith({RELATED!r}))", timeout=30_000)
            answer = page.locator(".msg.bot").nth(before)
            if answer.locator(".text").inner_text().startswith(RELATED):
                answer = page.locator(".msg.bot").nth(before + 1)
            shown = answer.locator(".text").inner_text()
            first_line = ANSWERS[pin["entry"]].strip().splitlines()[0].strip()
            assert first_line in shown, (pin, shown[:120])
            assert answer.locator(".buttons button", has_text="有帮助").count() == 1, (pin, shown[:120])
    finally:
        page.close()
