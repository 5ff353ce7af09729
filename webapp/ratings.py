"""Satisfaction ratings (满意 / 基本满意 / 不满意) after a person served the citizen, as a service without HTTP.

When an agent ends the service the conversation awaits a rating (webapp/handoffs.py); the citizen's
next line is read here (a rating button's /rate_satisfaction{...} payload or the words themselves),
and any line ends the waiting: a citizen who asks something else is not asked again.
A stored rating is also published as a hotline event (common/events.py: rating) once committed.
"""
from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.events import NullPublisher, Publisher, utc_iso
from common.privacy import mask_text
from webapp.store import Conversation, Handoff, Rating, Store

RATINGS = ("满意", "基本满意", "不满意")
RATE_PAYLOAD_RE = re.compile(r"^/rate_satisfaction(\{.*\})?$")


def read_rating(text: str) -> tuple[str | None, str]:
    """(score, comment) of a citizen line: the score is None when the line is no rating."""
    m = RATE_PAYLOAD_RE.match(text)
    score, comment = None, ""
    if m and m.group(1):
        try:
            data = json.loads(m.group(1))
            score, comment = data.get("rating"), str(data.get("comment") or "")[:500]
        except ValueError:
            score = None
    elif text.strip() in RATINGS:
        score = text.strip()
    return (score if score in RATINGS else None), comment


def rating_event(r: Rating) -> dict[str, Any]:
    """A stored rating as its hotline event carries it (times as the web app stores them: naive UTC, ISO)."""
    return {"id": r.id, "conversation_id": r.conversation_id, "handoff_id": r.handoff_id, "score": r.score,
            "comment": r.comment, "created_at": utc_iso(r.created_at)}


class RatingService:
    """Stores the citizen's rating of the last resolved hand-off (the comment masked)."""

    def __init__(self, store: Store, events: Publisher | None = None) -> None:
        self.store = store
        self.events: Publisher = events or NullPublisher()

    async def reply(self, cid: str, text: str) -> str | None:
        """The citizen's line while a rating is awaited: the score it gave (stored), or None (no rating)."""
        score, comment = read_rating(text)

        changed: list[dict] = []

        def save(s: Session) -> str | None:
            changed.clear()
            conv = s.get(Conversation, cid)
            conv.awaiting_rating = False
            if score is None:
                return None
            h = s.scalars(select(Handoff).where(Handoff.conversation_id == cid, Handoff.status == "resolved")
                          .order_by(Handoff.id.desc())).first()
            r = Rating(conversation_id=cid, handoff_id=h.id if h else None, score=score, comment=mask_text(comment))
            s.add(r)
            s.flush()
            changed.append(rating_event(r))
            return score
        out = await self.store.run(save)
        for state in changed:
            self.events.publish("rating", cid, state)
        return out
