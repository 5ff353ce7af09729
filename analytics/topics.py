"""What a citizen's message was about: its topic, from the knowledge answer it got or from its intent.

A topic is a knowledge category (社保卡/挂失, 养老保险/… as in knowledge/content), so the bot's card
self-service (report_card_loss) and the knowledge answers about card loss count together. Messages the
knowledge base could not place get a topic of their own: a surge of questions nobody can answer is a
hot issue too. Greetings, thanks, feedback buttons and form answers have no topic.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

NOT_FOUND = "未找到答案"
OUT_OF_SCOPE = "业务范围外"
HUMAN = "转人工"
COMPLAINT = "投诉"

# intents that name a topic by themselves (the rest take the topic of the answer they got, or none)
INTENT_TOPICS = {
    "report_card_loss": "社保卡/挂失",
    "query_card_progress": "社保卡/制卡进度",
    "request_human": HUMAN,
    "complain": COMPLAINT,
    "out_of_scope": OUT_OF_SCOPE,
}
# intents that are never a question of their own
NO_TOPIC_INTENTS = {"greet", "goodbye", "thanks", "affirm", "deny", "bot_challenge", "chitchat", "feedback_helpful",
                    "feedback_unhelpful", "rate_satisfaction", "inform"}
ANSWER_BANDS = ("confident", "chosen")  # bands in which an entry is given as the answer

# What a session was for (the 咨询/投诉 split), decided once here from its first business turn:
# 咨询 a business question (answered or not), 办理 the bot's card self-service, 求助/转人工 asked for a person
# straight away, 投诉/举报 a complaint (the `complain` intent anywhere in the session, or a hand-off whose
# reason is a complaint), 其他 out of scope or no business turn at all (greetings only). Every session has one.
CONSULT, TRANSACT, HELP, COMPLAINT_TYPE, OTHER = "咨询", "办理", "求助/转人工", "投诉/举报", "其他"
REQUEST_TYPES = (CONSULT, TRANSACT, HELP, COMPLAINT_TYPE, OTHER)
TRANSACTION_INTENTS = {"report_card_loss", "query_card_progress"}  # actions/card_service.py
COMPLAINT_INTENTS = {"complain"}
COMPLAINT_WORD = "投诉"  # in a hand-off reason (actions/handoff.py: 市民投诉/情绪不满)


@lru_cache(maxsize=4)
def entry_categories(content_dir: str | None = None) -> dict[str, str]:
    """Knowledge entry id -> category, read from the knowledge content (knowledge/content/*.yml)."""
    from knowledge.schema import CONTENT_DIR, load_entries

    return {e.id: e.category for e in load_entries(Path(content_dir) if content_dir else CONTENT_DIR)}


def category_of(entry_id: str | None) -> str | None:
    """The category of an entry, or None when the entry is unknown (deleted since)."""
    return entry_categories().get(entry_id) if entry_id else None


def reply_topic(band: str | None, entry_id: str | None, category: str | None, suggestions: list | None) -> str | None:
    """The topic a bot reply puts the question under (None when the reply is not a knowledge reply)."""
    if band in ANSWER_BANDS:
        return category or category_of(entry_id) or NOT_FOUND
    if band in ("clarify", "unsure"):
        first = (suggestions or [None])[0]
        return category_of(first) or NOT_FOUND
    if band == "none":
        return NOT_FOUND
    if band == "out_of_scope":
        return OUT_OF_SCOPE
    return None


def turn_topic(intent: str | None, reply: str | None) -> str | None:
    """The topic of a citizen turn: its intent's own topic, else the topic of the knowledge reply it got."""
    if intent in INTENT_TOPICS and intent != "out_of_scope":
        return INTENT_TOPICS[intent]
    if reply:
        return reply
    if intent in NO_TOPIC_INTENTS:
        return None
    return INTENT_TOPICS.get(intent or "")


def area(topic: str | None) -> str:
    """The first level of a topic (社保卡/挂失 -> 社保卡)."""
    return (topic or "").split("/")[0]


def request_type(first_intent: str | None, topic: str | None, complained: bool = False, handoff_reason: str | None = None) -> str:
    """A session's request type (REQUEST_TYPES) from the intent of its first business turn, its topic, whether the
    citizen complained in it and the reason of its hand-off."""
    if complained or topic == COMPLAINT or COMPLAINT_WORD in (handoff_reason or ""):
        return COMPLAINT_TYPE
    if topic is None or topic == OUT_OF_SCOPE:
        return OTHER
    if topic == HUMAN:
        return HELP
    if first_intent in TRANSACTION_INTENTS:
        return TRANSACT
    return CONSULT
