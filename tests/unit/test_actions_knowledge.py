"""Knowledge actions with CollectingDispatcher and trackers from scenario-named JSON files."""
import json
from pathlib import Path

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import knowledge as kn
from knowledge.calibration import calibrate
from knowledge.retriever import KnowledgeBase
from knowledge.schema import load_entries
from tests.helpers import CharHashEmbedder

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def tracker(name: str) -> Tracker:
    d = json.loads((FIXTURES / "trackers" / f"{name}.json").read_text(encoding="utf-8"))
    return Tracker(d["sender_id"], d["slots"], d["latest_message"], d["events"], False, None,
                   {"name": "action_listen"}, d["latest_action_name"])


@pytest.fixture(autouse=True)
def small_kb(monkeypatch, tmp_path):
    kb = KnowledgeBase(load_entries(FIXTURES / "kb_small"), CharHashEmbedder(), tmp_path)
    kb.calibration = calibrate(kb, ["明天天气怎么样", "公积金怎么提取", "asdfghjkl", "推荐一部电影", "红烧肉怎么做"])
    monkeypatch.setattr(kn.kb_service, "get", lambda timeout=0: kb)
    return kb


async def run(action, name):
    d = CollectingDispatcher()
    events = await action.run(d, tracker(name), {})
    return d.messages, events


async def test_confident_answer_carries_entry_id_score_and_feedback_buttons():
    msgs, events = await run(kn.ActionAnswerFromKb(), "ask_card_loss_web")
    assert len(msgs) == 1
    m = msgs[0]
    assert m["custom"]["kb"]["id"] == "test-0001"
    assert 0 < m["custom"]["kb"]["score"] <= 1
    assert "挂失" in m["text"]
    assert [b["title"] for b in m["buttons"]] == ["有帮助", "没帮助"]
    assert {"event": "slot", "timestamp": None, "name": "kb_last_entry", "value": "test-0001"} in events


async def test_nothing_relevant_twice_hands_off():
    msgs, events = await run(kn.ActionAnswerFromKb(), "out_of_scope_after_one_failure")
    assert msgs[0]["custom"]["kb"]["band"] == "none"
    assert any(b["payload"] == "/request_human" for b in msgs[0]["buttons"])
    assert {"event": "followup", "timestamp": None, "name": "action_handoff_to_human"} in events


async def test_suggestion_button_answers_the_chosen_entry():
    msgs, _ = await run(kn.ActionAnswerFromKb(), "suggestion_button_chosen")
    assert msgs[0]["custom"]["kb"]["id"] == "test-0003"


async def test_unsure_band_offers_three_questions(small_kb, monkeypatch):
    small_kb.calibration.confident_at, small_kb.calibration.unsure_at = 1.01, 0.0
    msgs, _ = await run(kn.ActionAnswerFromKb(), "ask_card_loss_web")
    titles = [b["title"] for b in msgs[0]["buttons"]]
    assert msgs[0]["custom"]["kb"]["band"] == "unsure"
    assert len(titles) == 4 and titles[-1] == "转人工"
    assert msgs[0]["buttons"][0]["payload"].startswith("/ask_question{")
