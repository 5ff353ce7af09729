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
