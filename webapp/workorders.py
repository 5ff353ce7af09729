"""Work orders (工单) as one service without HTTP: what cannot be solved on the spot, tracked to closure.

They come from three places: an agent at the desk, the citizen's message outside working hours (留言,
after a hand-off was asked for off duty, webapp/handoffs.py) and a callback after a hand-off timed out
(made with the hand-off's change, in webapp/handoffs.py). Every text is masked before it is stored.
Who sees which: supervisors all; agents their queues' categories, what they created, and 留言 when they
serve the 综合 queue.

Every creation and status change is also published as a hotline event (common/events.py: workorder_opened,
workorder_updated, workorder_closed, with the order's state, masked) once committed. A callback work order
is published by webapp/handoffs.py, which makes it.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from common.events import NullPublisher, Publisher, utc_iso
from common.privacy import mask_contact, mask_text
from webapp.refusals import Refused
from webapp.store import Agent, Conversation, Store, WorkOrder, now, set_where

WORKORDER_STATES = ("open", "in_progress", "closed")
WORKORDER_STATE_TEXT = {"open": "待处理", "in_progress": "处理中", "closed": "已办结"}
MESSAGE_CATEGORY = "留言"  # an off-hours message
MESSAGE_DEADLINE_DAYS = 3


def workorder_dict(w: WorkOrder) -> dict[str, Any]:
    """A work order as JSON."""
    return {"id": w.id, "conversation_id": w.conversation_id, "category": w.category, "title": w.title,
            "detail": w.detail, "contact": w.contact, "status": w.status, "deadline": w.deadline.isoformat() + "Z",
            "overdue": w.status != "closed" and w.deadline < now(), "created_by": w.created_by,
            "created_at": w.created_at.isoformat() + "Z", "resolution": w.resolution,
            "closed_at": w.closed_at.isoformat() + "Z" if w.closed_at else None}


def workorder_event(w: WorkOrder) -> dict[str, Any]:
    """A work order's state as a hotline event carries it (no title, detail or contact: the figures need none)."""
    return {"id": w.id, "conversation_id": w.conversation_id, "category": w.category, "status": w.status,
            "created_by": w.created_by, "created_at": utc_iso(w.created_at), "deadline": utc_iso(w.deadline),
            "closed_at": utc_iso(w.closed_at)}


def visible_to(agent: Agent, w: WorkOrder) -> bool:
    """Supervisors: all; agents: their queues' categories, what they created, 留言 with the 综合 queue."""
    queues = agent.queues or []
    return (agent.role == "supervisor" or w.category in queues or w.created_by == agent.username
            or (w.category == MESSAGE_CATEGORY and "综合" in queues))


class WorkOrderService:
    """Creating, listing and moving work orders; a change two agents race on is one conditional UPDATE."""

    def __init__(self, store: Store, events: Publisher | None = None) -> None:
        self.store = store
        self.events: Publisher = events or NullPublisher()

    def _publish(self, kind: str, state: dict[str, Any] | None) -> None:
        if state is not None:
            self.events.publish(kind, state["conversation_id"] or "", state)

    async def create(self, agent: Agent, title: str, days: int, category: str = "综合", detail: str = "",
                     contact: str = "", conversation_id: str | None = None) -> dict[str, Any]:
        """An agent files a work order, due in `days` days (the caller checked title and days)."""
        def do(s: Session) -> dict[str, Any]:
            w = WorkOrder(conversation_id=conversation_id, category=mask_text(category)[:32],
                          title=mask_text(title)[:200], detail=mask_text(detail)[:4000],
                          contact=mask_contact(contact)[:64],
                          deadline=now() + dt.timedelta(days=days), created_by=agent.username)
            s.add(w)
            s.flush()
            changed[:] = [workorder_event(w)]
            return workorder_dict(w)
        changed: list[dict[str, Any]] = []
        out = await self.store.run(do)
        self._publish("workorder_opened", changed[0] if changed else None)
        return out

    async def file_message(self, cid: str, text: str) -> int | None:
        """The citizen's off-hours message becomes a work order (the bot serves again); its id, or None when the
        conversation no longer waits for a message."""
        def do(s: Session) -> int | None:
            conv = s.get(Conversation, cid)
            if conv is None or conv.mode != "message":
                return None
            w = WorkOrder(conversation_id=cid, category=MESSAGE_CATEGORY, title=mask_text(text)[:60],
                          detail=mask_text(text), status="open",
                          deadline=now() + dt.timedelta(days=MESSAGE_DEADLINE_DAYS), created_by="citizen")
            s.add(w)
            conv.mode = "bot"
            s.flush()
            changed[:] = [workorder_event(w)]
            return w.id
        changed: list[dict[str, Any]] = []
        out = await self.store.run(do)
        self._publish("workorder_opened", changed[0] if changed else None)
        return out

    async def listing(self, agent: Agent, status: str | None = None) -> list[dict[str, Any]]:
        """The work orders the agent may see, soonest deadline first: of one status, or (agents) the unfinished."""
        def read(s: Session) -> list[dict[str, Any]]:
            q = select(WorkOrder).order_by(WorkOrder.deadline)
            if status:
                q = q.where(WorkOrder.status == status)
            elif agent.role != "supervisor":
                q = q.where(WorkOrder.status != "closed")
            return [workorder_dict(w) for w in s.scalars(q.limit(2000)).all() if visible_to(agent, w)][:500]
        return await self.store.run(read)

    async def update(self, wid: int, visible: Callable[[WorkOrder], bool], status: str, resolution: str = "",
                     expected: str | None = None) -> dict[str, Any]:
        """Move a work order to a status, if it is still in the status the agent saw (`expected`).

        Without `expected` the status read in this transaction is the one expected. `visible(work order)`
        says whether the agent may see it; Refused when it may not or another agent changed it first.
        """
        def do(s: Session) -> dict[str, Any]:
            w = s.get(WorkOrder, wid)
            if w is None or not visible(w):
                raise Refused("没有这个工单", "not_found")
            values: dict[str, Any] = {"status": status, "closed_at": now() if status == "closed" else None}
            if resolution:
                values["resolution"] = mask_text(resolution)[:4000]
            if not set_where(s, WorkOrder, WorkOrder.id == wid, WorkOrder.status == (expected or w.status), **values):
                s.refresh(w)
                raise Refused(f"工单已被其他坐席改为“{WORKORDER_STATE_TEXT.get(w.status, w.status)}”，请刷新后再操作")
            s.refresh(w)
            changed[:] = [workorder_event(w)]
            return workorder_dict(w)
        changed: list[dict[str, Any]] = []
        out = await self.store.run(do)
        self._publish("workorder_closed" if status == "closed" else "workorder_updated", changed[0] if changed else None)
        return out
