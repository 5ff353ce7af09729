"""Answer social-security questions from the knowledge base (ask_question, low-confidence fallbacks, out_of_scope).

Four bands (knowledge/policy.py, calibrated offline and shipped in knowledge/calibration.json):
confident -> the answer, "did this help?" buttons and up to two "您可能还想问" related questions;
clarify -> one question back (职工 or 城乡居民 ...), one button per entry; unsure -> up to 3 suggested
questions; none -> say so and offer a person. An out_of_scope message is answered only when the
knowledge base is sure, otherwise it gets the "not ours, call 12345" reply; so does a question that the knowledge
base finds nearer to other 12345 matters than to anything of ours (Decision.not_ours). Every reply carries
the entry id (or the suggestions), band and confidence in `custom.kb`.
"""
from __future__ import annotations

import json
import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.answer_sms import OFFER_TEXT, SMS_BUTTON, offers_sms
from actions.kb_service import kb_service
from actions.routing import kb_answers_out_of_scope
from actions.settings import current
from knowledge.retriever import Hit
from knowledge.schema import KbEntry

log = logging.getLogger(__name__)
FAILURES_BEFORE_HANDOFF = 2
HELPFUL_BUTTONS = [
    {"title": "有帮助", "payload": "/feedback_helpful"},
    {"title": "没帮助", "payload": "/feedback_unhelpful"},
]
HUMAN_BUTTON = {"title": "转人工", "payload": "/request_human"}
RELATED_MAX = 2
OUT_OF_SCOPE_TEXT = "抱歉，这个问题不在社保业务范围内，我回答不了。社保相关的问题可以继续问我；其他政务问题可以拨打 12345 市民服务热线。"


def entry_payload(entry: KbEntry, score: float, band: str) -> dict[str, Any]:
    """The custom payload of a knowledge answer: which entry, how sure, and its phone version."""
    return {"kb": {"id": entry.id, "score": round(score, 4), "band": band, "category": entry.category,
                   "voice_answer": entry.voice_answer, "local_review": entry.local_review}}


def entry_button(title: str, entry_id: str) -> dict[str, str]:
    """A button that asks for one entry directly."""
    return {"title": title, "payload": "/ask_question" + json.dumps({"kb_entry": entry_id}, ensure_ascii=False)}


def suggestion_button(entry: KbEntry) -> dict[str, str]:
    """A button titled with the entry's standard question."""
    return entry_button(entry.question, entry.id)


def utter_entry(dispatcher: CollectingDispatcher, entry: KbEntry, score: float, band: str,
                related: list[KbEntry] | None = None, sms_offer: bool = False) -> None:
    """Send an entry's answer with the helpful/unhelpful buttons, then related questions if any.

    sms_offer (phone callers from a mobile, actions/answer_sms.py): the spoken answer ends with the offer to
    text the written details, and "发短信" is the first option (key 1)."""
    text = entry.answer
    if entry.local_review:
        text += "\n（本条涉及济南本地规定，以 12345/12333 或办事大厅答复为准。）"
    payload, buttons = entry_payload(entry, score, band), HELPFUL_BUTTONS
    if sms_offer:
        payload["kb"].update(voice_answer=entry.voice_answer + OFFER_TEXT, sms_offer=True)
        buttons = [SMS_BUTTON, *HELPFUL_BUTTONS]
    dispatcher.utter_message(text=text, buttons=buttons, json_message=payload)
    if related:
        dispatcher.utter_message(text="您可能还想问：", buttons=[suggestion_button(e) for e in related],
                                 json_message={"kb": {"related": [e.id for e in related]}})


def related_entries(hits: list[Hit]) -> list[KbEntry]:
    """Up to two next-best entries of the answer's own topic (the citizen's likely next step).

    The topic is the first part of the category (社保卡, 养老保险 ...): a next-best entry from
    another topic is a ranking accident, not a related question.
    """
    top = hits[0].entry
    topic = top.category.split("/")[0]
    out = [h.entry for h in hits[1:] if h.entry.category.split("/")[0] == topic and h.entry.question != top.question]
    return out[:RELATED_MAX]


def failure_events(tracker: Tracker, reason: str) -> list[EventType]:
    """Count a failed turn; after the second in a row, hand the citizen to a person."""
    failed = int(tracker.get_slot("failed_turns") or 0) + 1
    events: list[EventType] = [SlotSet("failed_turns", float(failed))]
    if failed >= FAILURES_BEFORE_HANDOFF:
        events += [SlotSet("failed_turns", 0.0), SlotSet("handoff_reason", reason), FollowupAction("action_handoff_to_human")]
    return events


class ActionAnswerFromKb(Action):
    """Answer the latest question from the knowledge base in one of three bands."""

    def name(self) -> str:
        """Action name in domain.yml."""
        return "action_answer_from_kb"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[EventType]:
        """Pick the band for the question and answer, suggest, or admit that nothing fits."""
        kb = kb_service.get()
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        if kb is None and intent == "out_of_scope":
            dispatcher.utter_message(text=OUT_OF_SCOPE_TEXT)
            return []
        if kb is None:
            dispatcher.utter_message(text="抱歉，知识库暂时无法使用。您可以稍后再试，或者说“转人工”，也可以拨打 12345 热线。",
                                     buttons=[HUMAN_BUTTON])
            return []
        requested = next((e.get("value") for e in tracker.latest_message.get("entities", [])
                          if e.get("entity") == "kb_entry"), None)
        if requested and requested in kb.by_id:
            entry = kb.by_id[requested]
            utter_entry(dispatcher, entry, 1.0, "chosen", sms_offer=offers_sms(tracker, entry))
            return [SlotSet("kb_last_entry", entry.id), SlotSet("failed_turns", 0.0)]

        question = (tracker.latest_message.get("text") or "")[: current().max_message_chars]
        decision = kb.decide(question, strict=intent == "out_of_scope")
        hits: list[Hit] = decision.hits
        log.info("kb decision intent=%s band=%s conf=%.3f top=%s", intent, decision.band, decision.confidence,
                 hits[0].entry.id if hits else None)
        if decision.not_ours or (intent == "out_of_scope" and not kb_answers_out_of_scope(decision.band)):
            # another department's matter (NLU said so, or the message reads like the bank of other 12345 matters)
            dispatcher.utter_message(text=OUT_OF_SCOPE_TEXT,
                                     json_message={"kb": {"band": "out_of_scope", "score": round(decision.confidence, 4)}})
            return [SlotSet("kb_last_entry", None)]
        if decision.band == "confident":
            top = hits[0]
            utter_entry(dispatcher, top.entry, decision.confidence, "confident", related_entries(hits),
                        sms_offer=offers_sms(tracker, top.entry))
            return [SlotSet("kb_last_entry", top.entry.id), SlotSet("failed_turns", 0.0)]
        if decision.band == "clarify" and decision.clarify:
            options = decision.clarify.options
            dispatcher.utter_message(
                text=decision.clarify.prompt,
                buttons=[entry_button(label, eid) for label, eid in options] + [HUMAN_BUTTON],
                json_message={"kb": {"band": "clarify", "score": round(decision.confidence, 4),
                                     "suggestions": [eid for _, eid in options]}},
            )
            return [SlotSet("kb_last_entry", None)]
        if decision.band == "unsure":
            dispatcher.utter_message(
                text="我不太确定您问的是哪一项，您是想问：",
                buttons=[suggestion_button(h.entry) for h in hits[:3]] + [HUMAN_BUTTON],
                json_message={"kb": {"band": "unsure", "score": round(decision.confidence, 4),
                                     "suggestions": [h.entry.id for h in hits[:3]]}},
            )
            return [SlotSet("kb_last_entry", None)]
        dispatcher.utter_message(
            text="抱歉，知识库里没有找到能回答这个问题的内容。您可以换个说法再问，或者转人工客服；其他政务问题请拨打 12345 热线。",
            buttons=[HUMAN_BUTTON],
            json_message={"kb": {"band": "none", "score": round(decision.confidence, 4)}},
        )
        return failure_events(tracker, "机器人连续未能回答")


class ActionFeedbackUnhelpful(Action):
    """The citizen said an answer did not help: apologise, offer a person; twice in a row hands off."""

    def name(self) -> str:
        """Action name in domain.yml."""
        return "action_feedback_unhelpful"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict) -> list[EventType]:
        """Record the failure and offer the next step."""
        events = failure_events(tracker, "答复连续没帮助")
        if not any(isinstance(e, dict) and e.get("event") == "followup" for e in events):
            dispatcher.utter_message(text="抱歉没能帮到您。您可以换个说法详细描述一下，或者说“转人工”由专家坐席为您解答。",
                                     buttons=[HUMAN_BUTTON])
        return events
