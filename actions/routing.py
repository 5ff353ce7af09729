"""Where a message ends up, from its NLU intent and (for questions) the knowledge base's decision.

One definition, used by the knowledge action (an out_of_scope intent is tried on the knowledge base
first: a narrated question that NLU mistook for another matter still gets its answer when the
knowledge base is sure) and by the routing benchmark (scripts/bench_routing.py).
"""
from __future__ import annotations

from knowledge.retriever import KnowledgeBase

HANDOFF_INTENTS = frozenset({"request_human", "complain"})
CARD_INTENTS = frozenset({"report_card_loss", "query_card_progress"})
QUESTION_INTENTS = frozenset({"ask_question", "nlu_fallback"})
NOT_OURS_INTENTS = frozenset({"out_of_scope", "chitchat", "bot_challenge"})


def kb_answers_out_of_scope(band: str) -> bool:
    """An out_of_scope message is answered from the knowledge base only when it is sure (decide(strict=True))."""
    return band == "confident"


def outcome_for(intent: str, text: str, kb: KnowledgeBase) -> str:
    """knowledge | card_transaction | handoff | out_of_scope | social."""
    if intent in HANDOFF_INTENTS:
        return "handoff"
    if intent in CARD_INTENTS:
        return "card_transaction"
    if intent in QUESTION_INTENTS:
        return "knowledge" if kb.decide(text).band != "none" else "out_of_scope"
    if intent == "out_of_scope":
        return "knowledge" if kb_answers_out_of_scope(kb.decide(text, strict=True).band) else "out_of_scope"
    if intent in NOT_OURS_INTENTS:
        return "out_of_scope"
    return "social"
