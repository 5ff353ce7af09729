"""The hand-off life cycle as one service without HTTP: the desk's routes, the chat and the clock call it.

    queued ──claim──▶ claimed ──resolve──▶ resolved        (the citizen is asked for a rating)
      ▲                  │
      └────transfer──────┘
    queued ──unclaimed for HANDOFF_WAIT_SECONDS──▶ timed_out ──the citizen asks for a callback──▶ callback
    queued | claimed ──the chat page gone for HANDOFF_ABANDON_SECONDS──▶ abandoned
    queued | claimed ──the citizen says 回到机器人──▶ returned

Every change two people (or a person and the clock) can race on is one conditional
UPDATE … WHERE status = <expected>: SQLite and PostgreSQL both apply it atomically, and the row
count says who won. A row read beforehand only explains a refusal; it never decides one.
The time limits apply to web chats only: a phone hand-off is a transfer to the PBX's queue, and the
desk's row only shows the call's transcript.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from common.privacy import mask_text
from webapp.store import Agent, Conversation, Handoff, Store, WorkOrder, now

OPEN = ("queued", "claimed")
# how a hand-off ended, in the words the desk shows
CLOSED = {"resolved": "坐席已结束服务", "timed_out": "等待超时，无人接入", "callback": "等待超时，市民预约了回电",
          "abandoned": "市民已离开", "returned": "市民回到了机器人"}
WORKORDER_STATES = ("open", "in_progress", "closed")
WORKORDER_STATE_TEXT = {"open": "待处理", "in_progress": "处理中", "closed": "已办结"}
CALLBACK_SUPPLEMENT_MINUTES = 30  # a line within this time after asking for a callback is added to its work order


class HandoffRefused(Exception):
    """A change that did not happen, with the words to show; kind: not_found | forbidden | conflict."""

    def __init__(self, message: str, kind: str = "conflict") -> None:
        super().__init__(message)
        self.message, self.kind = message, kind


def handoff_dict(h: Handoff, waiting_now: dt.datetime | None = None) -> dict[str, Any]:
    """A hand-off as JSON for the desk."""
    ref = waiting_now or now()
    end = h.claimed_at or (h.resolved_at if h.status not in OPEN else None) or ref
    return {"id": h.id, "conversation_id": h.conversation_id, "channel": h.channel, "queue": h.queue,
            "priority": h.priority, "reason": h.reason, "summary": h.summary, "slots": h.slots or {},
            "status": h.status, "agent": h.agent, "created_at": h.created_at.isoformat() + "Z",
            "waiting_seconds": int((end - h.created_at).total_seconds()),
            "closed": CLOSED.get(h.status), "workorder_id": h.workorder_id}


def workorder_dict(w: WorkOrder) -> dict[str, Any]:
    """A work order as JSON."""
    return {"id": w.id, "conversation_id": w.conversation_id, "category": w.category, "title": w.title,
            "detail": w.detail, "contact": w.contact, "status": w.status, "deadline": w.deadline.isoformat() + "Z",
            "overdue": w.status != "closed" and w.deadline < now(), "created_by": w.created_by,
            "created_at": w.created_at.isoformat() + "Z", "resolution": w.resolution,
            "closed_at": w.closed_at.isoformat() + "Z" if w.closed_at else None}


def queue_position(s: Session, h: Handoff) -> int:
    """1 = next to be served in its queue (higher priority first, then first come)."""
    ahead = Store.count(s, Handoff, Handoff.queue == h.queue, Handoff.status == "queued",
                        (Handoff.priority > h.priority) | ((Handoff.priority == h.priority) & (Handoff.id < h.id)))
    return ahead + 1


def open_handoff(s: Session, cid: str) -> Handoff | None:
    """The conversation's queued or claimed hand-off, if any."""
    return s.scalars(select(Handoff).where(Handoff.conversation_id == cid, Handoff.status.in_(OPEN))
                     .order_by(Handoff.id.desc())).first()


def _set(s: Session, model: type, *where: Any, **values: Any) -> int:
    """UPDATE model SET values WHERE …: the number of rows changed (0 = someone else changed them first)."""
    result = s.execute(update(model).where(*where).values(**values).execution_options(synchronize_session=False))
    return result.rowcount


def _fresh(s: Session, hid: int) -> Handoff | None:
    """The hand-off as the database has it now (an UPDATE does not refresh rows the session already holds)."""
    return s.get(Handoff, hid, populate_existing=True)


def _why_not(h: Handoff | None, agent: Agent | None = None, wanted: str = "queued") -> HandoffRefused:
    """Explain a refused change from the row as it is now."""
    if h is None:
        return HandoffRefused("没有这个转人工记录", "not_found")
    if agent is not None and agent.role != "supervisor" and h.queue not in (agent.queues or []) and h.agent != agent.username:
        return HandoffRefused("这个会话不属于您的队列", "forbidden")
    if h.status in CLOSED:
        return HandoffRefused(f"这个会话已结束（{CLOSED[h.status]}）")
    if h.status == "claimed" and wanted == "queued":
        who = "您" if agent is not None and h.agent == agent.username else f"其他坐席（{h.agent}）"
        return HandoffRefused(f"这个会话已被{who}接入")
    return HandoffRefused("请先接入这个会话")


def _close(s: Session, hid: int, status: str, expected: tuple[str, ...]) -> dict[str, Any] | None:
    """Close a hand-off if it is still in one of the expected states; the bot serves its conversation again."""
    if not _set(s, Handoff, Handoff.id == hid, Handoff.status.in_(expected), status=status, resolved_at=now()):
        return None
    h = _fresh(s, hid)
    _set(s, Conversation, Conversation.id == h.conversation_id, Conversation.mode == "human", mode="bot")
    return handoff_dict(h)


class HandoffService:
    """State changes of hand-offs and work orders, each one atomic (see the module's docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # ------------------------------------------------------------------ the desk
    async def claim(self, hid: int, agent: Agent) -> dict[str, Any]:
        """The agent serves the hand-off; exactly one of several simultaneous claims wins, the others are refused."""
        def do(s: Session) -> dict[str, Any]:
            where = [Handoff.id == hid, Handoff.status == "queued"]
            if agent.role != "supervisor":
                where.append(Handoff.queue.in_(agent.queues or []))
            if not _set(s, Handoff, *where, status="claimed", agent=agent.username, claimed_at=now()):
                raise _why_not(_fresh(s, hid), agent)
            return handoff_dict(_fresh(s, hid))
        return await self.store.run(do)

    async def transfer(self, hid: int, agent: Agent, queue: str) -> dict[str, Any]:
        """The serving agent puts the hand-off back, into another queue; its waiting limit starts again."""
        def do(s: Session) -> dict[str, Any]:
            if not _set(s, Handoff, Handoff.id == hid, Handoff.status == "claimed", Handoff.agent == agent.username,
                        queue=queue, status="queued", agent=None, claimed_at=None, queued_at=now()):
                raise _why_not(_fresh(s, hid), agent, wanted="claimed")
            h = _fresh(s, hid)
            return handoff_dict(h) | {"position": queue_position(s, h)}
        return await self.store.run(do)

    async def resolve(self, hid: int, agent: Agent) -> dict[str, Any]:
        """The serving agent ends the service: the bot serves again and the citizen is asked for a rating."""
        def do(s: Session) -> dict[str, Any]:
            if not _set(s, Handoff, Handoff.id == hid, Handoff.status == "claimed", Handoff.agent == agent.username,
                        status="resolved", resolved_at=now()):
                raise _why_not(_fresh(s, hid), agent, wanted="claimed")
            h = _fresh(s, hid)
            _set(s, Conversation, Conversation.id == h.conversation_id, mode="bot", awaiting_rating=True)
            return handoff_dict(h)
        return await self.store.run(do)

    async def update_workorder(self, wid: int, visible: Callable[[WorkOrder], bool], status: str, resolution: str = "",
                               expected: str | None = None) -> dict[str, Any]:
        """Move a work order to a status, if it is still in the status the agent saw (`expected`).

        Without `expected` the status read in this transaction is the one expected. `visible(work order)`
        says whether the agent may see it.
        """
        def do(s: Session) -> dict[str, Any]:
            w = s.get(WorkOrder, wid)
            if w is None or not visible(w):
                raise HandoffRefused("没有这个工单", "not_found")
            values: dict[str, Any] = {"status": status, "closed_at": now() if status == "closed" else None}
            if resolution:
                values["resolution"] = mask_text(resolution)[:4000]
            if not _set(s, WorkOrder, WorkOrder.id == wid, WorkOrder.status == (expected or w.status), **values):
                s.refresh(w)
                raise HandoffRefused(f"工单已被其他坐席改为“{WORKORDER_STATE_TEXT.get(w.status, w.status)}”，请刷新后再操作")
            s.refresh(w)
            return workorder_dict(w)
        return await self.store.run(do)

    # ------------------------------------------------------------------ the citizen
    async def return_to_bot(self, cid: str) -> dict[str, Any] | None:
        """The citizen goes back to the bot: an open hand-off closes as returned (returned: the closed hand-off)."""
        def do(s: Session) -> dict[str, Any] | None:
            h = open_handoff(s, cid)
            closed = _close(s, h.id, "returned", OPEN) if h is not None else None
            _set(s, Conversation, Conversation.id == cid, mode="bot", awaiting_rating=False)
            return closed
        return await self.store.run(do)

    async def callback(self, cid: str, deadline_hours: int) -> tuple[dict[str, Any], dict[str, Any], bool]:
        """A callback work order for the conversation's timed-out hand-off: (hand-off, work order, newly created).

        One per hand-off however often the button is pressed; refused when no hand-off of the
        conversation timed out (or a newer one is open).
        """
        def do(s: Session) -> tuple[dict[str, Any], dict[str, Any], bool]:
            h = s.scalars(select(Handoff).where(Handoff.conversation_id == cid).order_by(Handoff.id.desc())).first()
            if h is None or h.status not in ("timed_out", "callback"):
                if h is not None and h.status in OPEN:
                    raise HandoffRefused("您正在排队等待人工客服，请稍候；不想等了可以说“回到机器人”。")
                raise HandoffRefused("现在没有等待回电的转人工记录。需要人工服务可以说“转人工”，也可以拨打 12345 市民服务热线。")
            if not _set(s, Handoff, Handoff.id == h.id, Handoff.status == "timed_out", status="callback"):
                s.refresh(h)  # pressed twice at once: the other press made the work order
                if h.status != "callback" or h.workorder_id is None:
                    raise _why_not(h)
                return handoff_dict(h), workorder_dict(s.get(WorkOrder, h.workorder_id)), False
            waited = int(((h.resolved_at or now()) - (h.queued_at or h.created_at)).total_seconds())
            w = WorkOrder(conversation_id=cid, category=h.queue, created_by="citizen", status="open",
                          title=mask_text(f"回电：{h.reason or '市民要求人工'}")[:200],
                          detail=mask_text(f"市民在{h.queue}队列等待约 {max(1, round(waited / 60))} 分钟无人接入，预约回电。\n"
                                           f"转人工原因：{h.reason or '（无）'}\n市民说过：{h.summary or '（无）'}\n"
                                           f"会话 {cid}，转人工记录 #{h.id}")[:4000],
                          deadline=now() + dt.timedelta(hours=deadline_hours))
            s.add(w)
            s.flush()
            _set(s, Handoff, Handoff.id == h.id, workorder_id=w.id)
            _set(s, Conversation, Conversation.id == cid, mode="callback")
            s.refresh(h)
            return handoff_dict(h), workorder_dict(w), True
        return await self.store.run(do)

    async def add_to_callback(self, cid: str, text: str) -> int | None:
        """Add the citizen's line (masked) to the callback work order just asked for; its id, or None (too late)."""
        def do(s: Session) -> int | None:
            if not _set(s, Conversation, Conversation.id == cid, Conversation.mode == "callback", mode="bot"):
                return None
            h = s.scalars(select(Handoff).where(Handoff.conversation_id == cid, Handoff.status == "callback",
                                                Handoff.workorder_id.is_not(None)).order_by(Handoff.id.desc())).first()
            w = s.get(WorkOrder, h.workorder_id) if h is not None else None
            if w is None or w.created_at < now() - dt.timedelta(minutes=CALLBACK_SUPPLEMENT_MINUTES):
                return None
            w.detail = (w.detail + "\n市民补充：" + mask_text(text))[:4000]
            return w.id
        return await self.store.run(do)

    # ------------------------------------------------------------------ the clock
    async def time_out(self, wait_seconds: float) -> list[dict[str, Any]]:
        """Close the web hand-offs queued longer than the limit as timed_out (unless claimed first); returns them."""
        def do(s: Session) -> list[dict[str, Any]]:
            cutoff = now() - dt.timedelta(seconds=wait_seconds)
            due = s.scalars(select(Handoff.id).where(Handoff.channel == "web", Handoff.status == "queued",
                                                     func.coalesce(Handoff.queued_at, Handoff.created_at) <= cutoff)).all()
            return [h for h in (_close(s, hid, "timed_out", ("queued",)) for hid in due) if h is not None]
        return await self.store.run(do)

    async def open_web(self) -> list[tuple[int, str]]:
        """(hand-off id, conversation id) of every open web hand-off."""
        return await self.store.run(lambda s: [tuple(r) for r in s.execute(
            select(Handoff.id, Handoff.conversation_id).where(Handoff.channel == "web", Handoff.status.in_(OPEN))).all()])

    async def abandon(self, hid: int) -> dict[str, Any] | None:
        """Close an open hand-off whose citizen left (unless it closed otherwise first); returns it."""
        return await self.store.run(lambda s: _close(s, hid, "abandoned", OPEN))
