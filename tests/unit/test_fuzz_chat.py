"""Fuzzer: whatever a chat page sends on /ws/chat, the chat answers in words (or not at all) and never fails.

The chat service is the real one (webapp/chat.py) on a SQLite file, with Rasa replaced by an echo. Short form
in `make test`; `make fuzz` runs it with thousands of examples (tests/fuzzing.py).
"""
from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzzing import FUZZ, GARBAGE, JSON
from webapp.app import create_app
from webapp.rasa_client import RasaClient
from webapp.settings import Settings

TEXT = st.text(max_size=40) | st.text(min_size=490, max_size=520) | st.sampled_from(
    ["回到机器人", "/back_to_bot", "/handoff_callback", "/inform{\"id_number\": \"370102199001011234\"}", "转人工",
     "5", " ", "\x00", "\ud7ff"])


@st.composite
def frames(draw: st.DrawFn) -> Any:
    """A page's frame: mostly a message with odd parts, sometimes anything (text or binary)."""
    if draw(st.integers(0, 5)) < 3:
        return draw(GARBAGE)
    return json.dumps({"type": draw(st.sampled_from(["message", "state", "ping"]) | JSON),
                       "text": draw(TEXT | JSON), "display": draw(st.none() | TEXT | JSON),
                       "client_id": draw(st.none() | st.text(max_size=70) | JSON)})


@pytest.fixture(scope="module")
def chat(tmp_path_factory: pytest.TempPathFactory):
    async def echo(self, sender, text, metadata=None, channel="web"):
        return [{"recipient_id": sender, "text": "机器人回答：" + text}]

    patch = pytest.MonkeyPatch()
    patch.setattr(RasaClient, "send", echo)
    path: Path = tmp_path_factory.mktemp("fuzz_chat") / "chat.db"
    yield create_app(Settings(database_url=f"sqlite:///{path}"), name="fuzz_chat").ctx.chat
    patch.undo()


@FUZZ
@given(st.lists(frames(), min_size=1, max_size=6))
@example([b"\xff\xfe binary", "[" * 5000, json.dumps({"type": "message", "text": "长" * 501})])
@example([json.dumps({"type": "message", "text": "你好", "display": {"a": 1}, "client_id": ["x"]})])
def test_any_frame_gets_an_answer_in_words_or_nothing(chat, raw_frames: list[Any]) -> None:
    async def run() -> list[Any]:
        return [await chat.frame("fuzzconversation01", raw) for raw in raw_frames]

    for raw, answer in zip(raw_frames, asyncio.run(run()), strict=True):
        assert answer is None or isinstance(answer, dict), answer
        if answer is not None:
            assert answer["type"] in ("error", "state"), answer
            if answer["type"] == "error":
                assert isinstance(answer["text"], str) and answer["text"], answer
                assert any("\u4e00" <= ch <= "\u9fff" for ch in answer["text"]), answer  # said in Chinese
        if isinstance(raw, bytes) or not raw.startswith("{"):
            assert answer is not None  # nothing the page would send goes unanswered
