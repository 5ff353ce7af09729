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


async def test_confident_answer_offers_related_questions_of_the_same_topic_only(small_kb):
    msgs, _ = await run(kn.ActionAnswerFromKb(), "ask_card_loss_web")
    # the fixture's only other 社保卡 entry is the e-card one (电子社保卡 is another topic): no related message
    assert len(msgs) == 1
    hits = small_kb.decide("社保卡丢了怎么挂失").hits
    same_topic = [h for h in hits[1:] if h.entry.category.split("/")[0] == hits[0].entry.category.split("/")[0]]
    assert kn.related_entries(hits) == [h.entry for h in same_topic][:2]


def test_related_entries_keep_the_topic_and_skip_the_same_question():
    from knowledge.retriever import Hit
    from knowledge.schema import KbEntry

    def entry(i, cat, q):
        return KbEntry(f"x-{i:04d}", cat, q, ("a",) * 5, "答", "答", "s", "2026-12-04", False)
    top = entry(1, "社保卡/挂失", "社保卡丢了怎么办")
    hits = [Hit(top, 1, 1, 1), Hit(entry(2, "社保卡/补换卡", "怎么补卡"), 0.9, 0.9, 0.9),
            Hit(entry(3, "养老保险/待遇", "养老金几号发"), 0.8, 0.8, 0.8),
            Hit(entry(4, "社保卡/挂失", "社保卡丢了怎么办"), 0.7, 0.7, 0.7),
            Hit(entry(5, "社保卡/密码", "密码忘了"), 0.6, 0.6, 0.6), Hit(entry(6, "社保卡/启用", "怎么激活"), 0.5, 0.5, 0.5)]
    assert [e.id for e in kn.related_entries(hits)] == ["x-0002", "x-0005"]


async def test_out_of_scope_intent_gets_the_12345_reply_unless_the_knowledge_base_is_sure(small_kb, monkeypatch):
    d = CollectingDispatcher()
    t = tracker("ask_card_loss_web")
    t.latest_message = {**t.latest_message, "text": "明天天气怎么样", "intent": {"name": "out_of_scope", "confidence": 0.9}}
    events = await kn.ActionAnswerFromKb().run(d, t, {})
    assert d.messages[0]["text"] == kn.OUT_OF_SCOPE_TEXT and d.messages[0]["custom"]["kb"]["band"] == "out_of_scope"
    assert not any(e.get("event") == "followup" for e in events)  # not a failed turn: no hand-off counting
    # a narrated business question that NLU mistook for another matter is still answered when the KB is sure
    d = CollectingDispatcher()
    t.latest_message = {**t.latest_message, "text": "社保卡丢了怎么挂失", "intent": {"name": "out_of_scope", "confidence": 0.6}}
    await kn.ActionAnswerFromKb().run(d, t, {})
    assert d.messages[0]["custom"]["kb"]["id"] == "test-0001"


async def test_clarify_band_asks_which_side_with_one_button_per_entry(small_kb, monkeypatch):
    from knowledge.policy import Clarification
    from knowledge.retriever import Decision

    hits = small_kb.decide("社保卡丢了怎么挂失").hits
    ask = Clarification("请问您问的是职工还是城乡居民的情况？", (("职工", "test-0001"), ("城乡居民", "test-0004")))
    monkeypatch.setattr(small_kb, "decide", lambda q, k=3, strict=False: Decision("clarify", 0.5, hits, ask, 0.1))
    msgs, events = await run(kn.ActionAnswerFromKb(), "ask_card_loss_web")
    assert msgs[0]["text"] == ask.prompt and msgs[0]["custom"]["kb"]["band"] == "clarify"
    assert [b["title"] for b in msgs[0]["buttons"]] == ["职工", "城乡居民", "转人工"]
    assert '"kb_entry": "test-0004"' in msgs[0]["buttons"][1]["payload"]


async def test_a_question_the_knowledge_base_calls_not_ours_gets_the_12345_reply(small_kb, monkeypatch):
    from knowledge.retriever import Decision

    monkeypatch.setattr(small_kb, "decide", lambda q, strict=False: Decision("none", 0.05, [], not_ours=True))
    msgs, events = await run(kn.ActionAnswerFromKb(), "ask_card_loss_web")
    assert msgs[0]["text"] == kn.OUT_OF_SCOPE_TEXT
    assert msgs[0]["custom"]["kb"]["band"] == "out_of_scope"
    assert not any(e.get("name") == "failed_turns" for e in events)  # not a failure of ours
