"""The desk's audit trail: who logged in, opened, claimed or changed what, and when (read by supervisors)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select

from common.privacy import mask_text
from webapp.store import AuditEvent, Store


class AuditLog:
    """Appends desk actions (details masked) and lists the latest."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def record(self, agent: str, action: str, target: object = "", detail: str = "") -> None:
        """Note one action of an agent (or of whatever was typed as a user name)."""
        await self.store.run(lambda s: s.add(AuditEvent(agent=agent[:64], action=action[:32], target=str(target)[:64],
                                                        detail=mask_text(detail)[:200])))

    async def latest(self, agent: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
        """The latest actions, newest first, of everybody or of one agent."""
        def read(s) -> list[dict[str, Any]]:
            q = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
            if agent:
                q = q.where(AuditEvent.agent == agent)
            return [{"at": e.at, "agent": e.agent, "action": e.action, "target": e.target, "detail": e.detail}
                    for e in s.scalars(q).all()]
        return await self.store.run(read)
