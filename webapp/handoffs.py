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

Opening a hand-off (POST /api/handoff, the contract in common/handoff.py) also lives here: a complaint
jumps the queue (priority), and outside DESK_HOURS the conversation's next line becomes a work order
(webapp/workorders.py) instead. Every queue position anybody sees — the answer to the bot, the chat page
live and after a reload, the desk's list — comes from `queue_position`, the one rule.

Every change is also published as a hotline event (common/events.py: handoff_queued, handoff_claimed, …,
each carrying the hand-off's whole state, masked) once its transaction committed; publishing never blocks.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from common.events import NullPublisher, Publisher, utc_iso
from common.handoff import QUEUES, HandoffReply, HandoffRequest
from common.privacy import mask_slots, mask_text
from webapp.refusals import Refused
from webapp.store import Agent, Conversation, Handoff, Store, WorkOrder, now
from webapp.store import set_where as _set
from webapp.workorders import workorder_dict, workorder_event

OPEN = ("queued", "claimed")
# how a hand-off ended, in the words the desk shows
CLOSED = {"resolved": "坐席已结束服务", "timed_out": "等待超时，无人接入", "callback": "等待超时，市民预约了回电",
          "abandoned": "市民已离开", "returned": "市民回到了机器人"}
CALLBACK_SUPPLEMENT_MINUTES = 30  # a line within this time after asking for a callback is added to its work order


HandoffRefused = Refused  # a refused hand-off change (the name its callers know)


def handoff_dict(h: Handoff, waiting_now: dt.datetime | None = None) -> dict[str, Any]:
    """A hand-off as JSON for the desk."""
    ref = waiting_now or now()
    end = h.claimed_at or (h.resolved_at if h.status not in OPEN else None) or ref
    return {"id": h.id, "conversation_id": h.conversation_id, "channel": h.channel, "queue": h.queue,
            "priority": h.priority, "reason": h.reason, "summary": h.summary, "slots": h.slots or {},
            "status": h.status, "agent": h.agent, "created_at": h.created_at.isoformat() + "Z",
            "waiting_seconds": int((end - h.created_at).total_seconds()),
            "closed": CLOSED.get(h.status), "workorder_id": h.workorder_id}


def handoff_event(h: Handoff) -> dict[str, Any]:
    """A hand-off's state as a hotline event carries it (times as the web app stores them: naive UTC, ISO)."""
    return {"id": h.id, "conversation_id": h.conversation_id, "channel": h.channel, "queue": h.queue, "reason": h.reason,
            "status": h.status, "agent": h.agent, "created_at": utc_iso(h.created_at), "claimed_at": utc_iso(h.claimed_at),
            "resolved_at": utc_iso(h.resolved_at), "workorder_id": h.workorder_id}


def queue_position(s: Session, h: Handoff) -> int:
    """1 = next to be served in its queue (higher priority first, then first come): the one rule everybody shows."""
    ahead = Store.count(s, Handoff, Handoff.queue == h.queue, Handoff.status == "queued",
                        (Handoff.priority > h.priority) | ((Handoff.priority == h.priority) & (Handoff.id < h.id)))
    return ahead + 1


def in_queue_order() -> tuple[Any, ...]:
    """ORDER BY of a queue's hand-offs, next served first: the order `queue_position` counts in."""
    return Handoff.priority.desc(), Handoff.id


def priority_of(reason: str) -> int:
    """A complaint or an unhappy citizen is served first (1); everybody else in arrival order (0)."""
    return 1 if ("投诉" in reason or "不满" in reason) else 0


def on_duty(hours: str, days: str, at: dt.datetime) -> bool:
    """Whether the expert seat is on duty at a local time ("08:30-17:00", "1,2,3,4,5")."""
    try:
        start, end = hours.split("-")
        weekdays = {int(d) for d in days.split(",") if d.strip()}
    except ValueError:
        return True  # a malformed setting must not lock citizens out
    if at.isoweekday() not in weekdays:
        return False
    hm = at.strftime("%H:%M")
    return start <= hm < end if end != "24:00" else hm >= start


def visible_to(agent: Agent, h: Handoff) -> bool:
    """Supervisors see every hand-off; agents those of their queues and the ones they serve."""
    return agent.role == "supervisor" or h.queue in (agent.queues or []) or h.agent == agent.username


def open_handoff(s: Session, cid: str) -> Handoff | None:
    """The conversation's queued or claimed hand-off, if any."""
    return s.scalars(select(Handoff).where(Handoff.conversation_id == cid, Handoff.status.in_(OPEN))
                     .order_by(Handoff.id.desc())).first()


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


def _close(s: Session, hid: int, status: str, expected: tuple[str, ...],
           changed: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
    """Close a hand-off if it is still in one of the expected states; the bot serves its conversation again."""
    if not _set(s, Handoff, Handoff.id == hid, Handoff.status.in_(expected), status=status, resolved_at=now()):
        return None
    h = _fresh(s, hid)
    _set(s, Conversation, Conversation.id == h.conversation_id, Conversation.mode == "human", mode="bot")
    if changed is not None:
        changed.append(handoff_event(h))
    return handoff_dict(h)


class HandoffService:
    """Opening and state changes of hand-offs, each one atomic (see the module's docstring)."""

    def __init__(self, store: Store, desk_hours: str = "00:00-24:00", desk_days: str = "1,2,3,4,5,6,7",
                 events: Publisher | None = None) -> None:
        self.store = store
        self.desk_hours, self.desk_days = desk_hours, desk_days
        self.events: Publisher = events or NullPublisher()

    def _publish(self, kind: str, changed: list[dict[str, Any]]) -> None:
        """Publish the committed changes (`kind` names the change; a closing change is named by the new status)."""
        for state in changed:
            name = kind if kind != "handoff_closed" else f"handoff_{state['status']}"
            self.events.publish(name, state["conversation_id"], state)

    # ------------------------------------------------------------------ the bot and the voice gateway
    async def open(self, request: HandoffRequest) -> HandoffReply:
        """Queue the conversation for a person (one open hand-off however often it is asked), or, off duty,
        let its next line become a work order. The request's texts are masked again, with the citizen's name."""
        duty = on_duty(self.desk_hours, self.desk_days, dt.datetime.now())
        cid, channel = request.conversation_id, request.channel
        # the citizen's name, when a service sends it unmasked, is masked wherever it appears
        names = tuple(str(v) for k, v in request.slots.items() if k == "person_name" and v and "*" not in str(v))
        reason = mask_text(request.reason, names)[:200]

        changed: list[dict[str, Any]] = []

        def create(s: Session) -> dict[str, Any]:
            changed.clear()  # tried once more on a conflict
            conv = Store.ensure_conversation(s, cid, channel)
            for line in request.transcript:  # phone calls bring their transcript along
                if line.get("text"):
                    role = "citizen" if line.get("role") in ("caller", "citizen", "user") else "bot"
                    Store.add_message(s, cid, role, mask_text(str(line["text"]), names)[:2000], {"source": "phone"}, channel)
            h = open_handoff(s, cid)
            if not duty:
                conv.mode = "message"
                return {"id": None, "status": "offhours", "position": None, "queue": request.queue}
            if h is None:
                h = Handoff(conversation_id=cid, channel=channel, queue=request.queue, priority=priority_of(reason),
                            reason=reason, summary=mask_text(request.summary, names)[:500],
                            slots=mask_slots({str(k)[:64]: str(v) for k, v in request.slots.items()}))
                s.add(h)
                s.flush()
                changed.append(handoff_event(h))
            conv.mode = "human"
            return {"id": h.id, "status": h.status, "position": queue_position(s, h), "queue": h.queue}

        info = await self.store.run_once_more_on_conflict(create)  # two requests at once: one hand-off, both answered
        self._publish("handoff_queued", changed)
        if info["status"] == "offhours":
            message = (f"现在不是人工服务时间（{self.desk_hours}）。您可以直接留言，说明要办的事和联系电话，"
                       "我们会登记为工单，上班后尽快处理；也可以拨打 12345 热线。")
        else:
            message = f"正在为您转接{info['queue']}专家坐席，您前面还有 {info['position'] - 1} 位，请稍候。"
            if channel == "web":
                message += "等待期间可以随时说“回到机器人”。"
        return HandoffReply(message=message, **info)

    async def latest(self, cid: str) -> dict[str, Any] | None:
        """The conversation's latest hand-off (with its queue position while queued), None when it has none."""
        def read(s: Session) -> dict[str, Any] | None:
            h = s.scalars(select(Handoff).where(Handoff.conversation_id == cid).order_by(Handoff.id.desc())).first()
            return (handoff_dict(h) | {"position": queue_position(s, h) if h.status == "queued" else None}) if h else None
        return await self.store.run(read)

    async def waiting(self, cid: str) -> dict[str, Any] | None:
        """The conversation's open hand-off with its queue position, None when none is open."""
        def read(s: Session) -> dict[str, Any] | None:
            h = open_handoff(s, cid)
            return handoff_dict(h) | {"position": queue_position(s, h)} if h else None
        return await self.store.run(read)

    # ------------------------------------------------------------------ the desk
    async def board(self, agent: Agent) -> dict[str, Any]:
        """What an agent's desk lists: the waiting hand-offs of its queues (next served first), its own, and
        for supervisors the ones other agents serve."""
        def read(s: Session) -> dict[str, Any]:
            rows = s.scalars(select(Handoff).where(Handoff.status.in_(OPEN)).order_by(*in_queue_order())).all()
            visible = [h for h in rows if visible_to(agent, h)]
            by_queue = {q: [handoff_dict(h) for h in visible if h.queue == q and h.status == "queued"]
                        for q in QUEUES if agent.role == "supervisor" or q in agent.queues}
            mine = [handoff_dict(h) for h in visible if h.status == "claimed" and h.agent == agent.username]
            others = [handoff_dict(h) for h in visible if h.status == "claimed" and h.agent != agent.username] \
                if agent.role == "supervisor" else []
            return {"queues": by_queue, "mine": mine, "claimed_by_others": others}
        return await self.store.run(read)

    async def get(self, hid: int, agent: Agent) -> Handoff:
        """The hand-off, if the agent may see it; HandoffRefused (not_found, forbidden) otherwise."""
        h = await self.store.run(lambda s: s.get(Handoff, hid))
        if h is None:
            raise HandoffRefused("没有这个转人工记录", "not_found")
        if not visible_to(agent, h):
            raise HandoffRefused("这个会话不属于您的队列", "forbidden")
        return h

    async def served_by(self, hid: int, agent: Agent) -> Handoff:
        """The hand-off, if the agent serves it now; HandoffRefused otherwise (e.g. not claimed, or closed)."""
        h = await self.get(hid, agent)
        if h.status != "claimed" or h.agent != agent.username:
            raise HandoffRefused("请先接入这个会话" if h.status in OPEN else
                                 f"这个会话已结束（{handoff_dict(h)['closed'] or h.status}）")
        return h

    # ------------------------------------------------------------------ the desk
    async def claim(self, hid: int, agent: Agent) -> dict[str, Any]:
        """The agent serves the hand-off; exactly one of several simultaneous claims wins, the others are refused."""
        def do(s: Session) -> dict[str, Any]:
            where = [Handoff.id == hid, Handoff.status == "queued"]
            if agent.role != "supervisor":
                where.append(Handoff.queue.in_(agent.queues or []))
            if not _set(s, Handoff, *where, status="claimed", agent=agent.username, claimed_at=now()):
                raise _why_not(_fresh(s, hid), agent)
            h = _fresh(s, hid)
            changed[:] = [handoff_event(h)]
            return handoff_dict(h)
        changed: list[dict[str, Any]] = []
        out = await self.store.run(do)
        self._publish("handoff_claimed", changed)
        return out

    async def transfer(self, hid: int, agent: Agent, queue: str) -> dict[str, Any]:
        """The serving agent puts the hand-off back, into another queue; its waiting limit starts again."""
        def do(s: Session) -> dict[str, Any]:
            if not _set(s, Handoff, Handoff.id == hid, Handoff.status == "claimed", Handoff.agent == agent.username,
                        queue=queue, status="queued", agent=None, claimed_at=None, queued_at=now()):
                raise _why_not(_fresh(s, hid), agent, wanted="claimed")
            h = _fresh(s, hid)
            changed[:] = [handoff_event(h)]
            return handoff_dict(h) | {"position": queue_position(s, h)}
        changed: list[dict[str, Any]] = []
        out = await self.store.run(do)
        self._publish("handoff_transferred", changed)
        return out

    async def resolve(self, hid: int, agent: Agent) -> dict[str, Any]:
        """The serving agent ends the service: the bot serves again and the citizen is asked for a rating."""
        def do(s: Session) -> dict[str, Any]:
            if not _set(s, Handoff, Handoff.id == hid, Handoff.status == "claimed", Handoff.agent == agent.username,
                        status="resolved", resolved_at=now()):
                raise _why_not(_fresh(s, hid), agent, wanted="claimed")
            h = _fresh(s, hid)
            _set(s, Conversation, Conversation.id == h.conversation_id, mode="bot", awaiting_rating=True)
            changed[:] = [handoff_event(h)]
            return handoff_dict(h)
        changed: list[dict[str, Any]] = []
        out = await self.store.run(do)
        self._publish("handoff_resolved", changed)
        return out

    # ------------------------------------------------------------------ the citizen
    async def return_to_bot(self, cid: str) -> dict[str, Any] | None:
        """The citizen goes back to the bot: an open hand-off closes as returned (returned: the closed hand-off)."""
        def do(s: Session) -> dict[str, Any] | None:
            changed.clear()
            h = open_handoff(s, cid)
            closed = _close(s, h.id, "returned", OPEN, changed) if h is not None else None
            _set(s, Conversation, Conversation.id == cid, mode="bot", awaiting_rating=False)
            return closed
        changed: list[dict[str, Any]] = []
        out = await self.store.run(do)
        self._publish("handoff_closed", changed)
        return out

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
            changed[:] = [handoff_event(h)]
            orders[:] = [workorder_event(w)]
            return handoff_dict(h), workorder_dict(w), True
        changed: list[dict[str, Any]] = []
        orders: list[dict[str, Any]] = []
        out = await self.store.run(do)
        self._publish("handoff_callback", changed)
        for state in orders:
            self.events.publish("workorder_opened", state["conversation_id"] or "", state)
        return out

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
            changed.clear()
            return [h for h in (_close(s, hid, "timed_out", ("queued",), changed) for hid in due) if h is not None]
        changed: list[dict[str, Any]] = []
        out = await self.store.run(do)
        self._publish("handoff_closed", changed)
        return out

    async def open_web(self) -> list[tuple[int, str]]:
        """(hand-off id, conversation id) of every open web hand-off."""
        return await self.store.run(lambda s: [tuple(r) for r in s.execute(
            select(Handoff.id, Handoff.conversation_id).where(Handoff.channel == "web", Handoff.status.in_(OPEN))).all()])

    async def abandon(self, hid: int) -> dict[str, Any] | None:
        """Close an open hand-off whose citizen left (unless it closed otherwise first); returns it."""
        changed: list[dict[str, Any]] = []

        def do(s: Session) -> dict[str, Any] | None:
            changed.clear()
            return _close(s, hid, "abandoned", OPEN, changed)
        out = await self.store.run(do)
        self._publish("handoff_closed", changed)
        return out
