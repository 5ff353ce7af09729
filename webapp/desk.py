"""The human expert seat: hand-off API for the bot and the voice gateway, and the agent desk.

Hand-off life cycle (webapp/handoffs.py, where every state change is made): queued -> claimed (an agent
serves; the bot is silent) -> resolved (back to the bot; the citizen is asked for satisfaction). Transfer
puts a claimed hand-off back into another queue. A web hand-off also ends by the clock (timed_out,
abandoned) or when the citizen returns to the bot (webapp/chat.py). Outside working hours a hand-off
becomes a message (留言) that is filed as a work order (工单).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import json
import logging
import re
from pathlib import Path
from typing import Any

from sanic import Request, Sanic, Websocket, response
from sqlalchemy import select
from sqlalchemy.orm import Session

from common.privacy import mask_contact, mask_slots, mask_text
from webapp.auth import (
    COOKIE,
    QUEUES,
    SESSION_SECONDS,
    LoginThrottle,
    check_login,
    desk_session_valid,
    disable_demo_agents,
    end_desk_sessions,
    ensure_demo_agents,
    open_desk_session,
    read_session_claims,
    sign_session,
)
from webapp.chat import valid_cid
from webapp.handoffs import (
    OPEN,
    WORKORDER_STATES,
    HandoffRefused,
    HandoffService,
    handoff_dict,
    open_handoff,
    queue_position,
    workorder_dict,
)
from webapp.store import Agent, AuditEvent, Conversation, Handoff, Rating, Store, WorkOrder, dumps, now

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
RATINGS = ("满意", "基本满意", "不满意")
REFUSED_STATUS = {"not_found": 404, "forbidden": 403, "conflict": 409}
WS_SESSION_CHECK_SECONDS = 15.0  # an idle live feed re-checks its session this often


def service_authorized(request: Request, token: str) -> bool:
    """True when the request carries the service token (action server, voice gateway)."""
    auth = request.headers.get("authorization", "")
    return auth.startswith("Bearer ") and hmac.compare_digest(auth[7:], str(token))


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


def refused(r: HandoffRefused):
    """The desk's answer to a change that did not happen (someone else was first, or it is not the agent's)."""
    return response.json({"error": r.message}, status=REFUSED_STATUS.get(r.kind, 409))


def attach_desk(app: Sanic) -> None:
    """Register the hand-off API, the desk pages and the desk API on the web app."""
    store: Store = app.ctx.store
    settings = app.ctx.settings
    hub = app.ctx.hub
    chat = app.ctx.chat
    handoffs: HandoffService = app.ctx.handoffs
    if settings.dev_mode:
        store.call(ensure_demo_agents)
    else:
        for name in store.call(disable_demo_agents):
            log.warning("desk: demo account %s still had its published password and was disabled "
                        "(production; create real accounts with `python -m webapp.accounts`)", name)
    throttle = LoginThrottle()
    app.ctx.login_throttle = throttle

    # ---------------------------------------------------------------- helpers
    def current_agent(request: Request) -> Agent | None:
        """The agent of a signed cookie whose server-side session is still open (not logged out, not revoked)."""
        claims = read_session_claims(request.cookies.get(COOKIE), str(settings.session_secret))
        if not claims:
            return None

        def find(s) -> Agent | None:
            if not desk_session_valid(s, claims["u"], str(claims.get("s") or "")):
                return None
            agent = s.get(Agent, claims["u"])
            return agent if agent and agent.active else None
        return store.call(find)

    def can_see(agent: Agent, h: Handoff) -> bool:
        return agent.role == "supervisor" or h.queue in (agent.queues or []) or h.agent == agent.username

    def can_see_workorder(agent: Agent, w: WorkOrder) -> bool:
        """Supervisors: all; agents: their queues' categories, what they created, 留言 with the 综合 queue."""
        queues = agent.queues or []
        return (agent.role == "supervisor" or w.category in queues or w.created_by == agent.username
                or (w.category == "留言" and "综合" in queues))

    def sees_event(agent: Agent, event: dict[str, Any]) -> bool:
        """Live desk events go to the agents of the event's queue (and supervisors) only."""
        if agent.role == "supervisor":
            return True
        if event.get("type") == "rating":
            return False
        queue = event.get("queue")
        return queue is None or queue in (agent.queues or []) or event.get("agent") == agent.username

    async def audit(agent: str, action: str, target: object = "", detail: str = "") -> None:
        await store.run(lambda s: s.add(AuditEvent(agent=agent[:64], action=action[:32], target=str(target)[:64],
                                                   detail=mask_text(detail)[:200])))

    def notify_desk(kind: str, **data: Any) -> None:
        hub.publish("desk", {"type": kind, **data})

    async def push_citizen_handoff(cid: str, info: dict[str, Any]) -> None:
        hub.publish(f"conv:{cid}", {"type": "handoff", "handoff": info})

    async def require_agent(request: Request):
        agent = await asyncio.to_thread(current_agent, request)
        if agent is None:
            return None, response.json({"error": "请先登录"}, status=401)
        return agent, None

    async def require_supervisor(request: Request):
        agent, err = await require_agent(request)
        if err is None and agent.role != "supervisor":
            return None, response.json({"error": "仅值班长可查看"}, status=403)
        return agent, err

    # ---------------------------------------------------------------- hand-off API (services)
    @app.post("/api/handoff")
    async def create_handoff(request: Request):
        if not service_authorized(request, settings.service_token):
            return response.json({"error": "unauthorized"}, status=401)
        body = request.json if isinstance(request.json, dict) else {}
        cid = body.get("conversation_id")
        if not isinstance(cid, str) or not cid or len(cid) > 64:
            return response.json({"error": "conversation_id is required"}, status=400)
        queue = body.get("queue") if body.get("queue") in QUEUES else "综合"
        channel = body.get("channel") if body.get("channel") in ("web", "phone") else "web"
        duty = on_duty(settings.desk_hours, settings.desk_days, dt.datetime.now())
        raw_slots = body.get("slots") if isinstance(body.get("slots"), dict) else {}
        # the citizen's name, when a service sends it unmasked, is masked wherever it appears
        names = tuple(str(v) for k, v in raw_slots.items() if k == "person_name" and v and "*" not in str(v))
        reason = mask_text(str(body.get("reason") or ""), names)[:200]
        priority = 1 if ("投诉" in reason or "不满" in reason) else 0
        transcript = body.get("transcript") if isinstance(body.get("transcript"), list) else []

        def create(s: Session) -> dict:
            conv = Store.ensure_conversation(s, cid, channel)
            for line in transcript[-200:]:  # phone calls bring their transcript along
                if isinstance(line, dict) and line.get("text"):
                    role = "citizen" if line.get("role") in ("caller", "citizen", "user") else "bot"
                    Store.add_message(s, cid, role, mask_text(str(line["text"]), names)[:2000], {"source": "phone"}, channel)
            h = open_handoff(s, cid)
            if not duty:
                conv.mode = "message"
                return {"id": None, "status": "offhours", "position": None, "queue": queue}
            if h is None:
                h = Handoff(conversation_id=cid, channel=channel, queue=queue, priority=priority, reason=reason,
                            summary=mask_text(str(body.get("summary") or ""), names)[:500],
                            slots=mask_slots({str(k)[:64]: str(v) for k, v in raw_slots.items()}))
                s.add(h)
                s.flush()
            conv.mode = "human"
            return {"id": h.id, "status": h.status, "position": queue_position(s, h), "queue": h.queue}

        info = await store.run_once_more_on_conflict(create)  # two requests at once: one hand-off, both answered
        if info["status"] == "offhours":
            info["message"] = (f"现在不是人工服务时间（{settings.desk_hours}）。您可以直接留言，说明要办的事和联系电话，"
                               "我们会登记为工单，上班后尽快处理；也可以拨打 12345 热线。")
        else:
            info["message"] = f"正在为您转接{info['queue']}专家坐席，您前面还有 {info['position'] - 1} 位，请稍候。"
            if channel == "web":
                info["message"] += "等待期间可以随时说“回到机器人”。"
            notify_desk("queue_changed", queue=info["queue"])
        return response.json(info)

    @app.get("/api/handoff/<cid:str>")
    async def handoff_status(request: Request, cid: str):
        """The open hand-off of a conversation (for the voice gateway and other services)."""
        if not service_authorized(request, settings.service_token):
            return response.json({"error": "unauthorized"}, status=401)

        def read(s: Session):
            h = s.scalars(select(Handoff).where(Handoff.conversation_id == cid).order_by(Handoff.id.desc())).first()
            return (handoff_dict(h) | {"position": queue_position(s, h) if h.status == "queued" else None}) if h else None
        h = await store.run(read)
        return response.json(h or {"status": "none"}, status=200 if h else 404)

    # ---------------------------------------------------------------- citizen-side hooks
    async def on_human_message(cid: str, text: str) -> None:
        def read(s: Session):
            conv = s.get(Conversation, cid)
            if conv and conv.mode == "message":  # off-hours message becomes a work order
                deadline = now() + dt.timedelta(days=3)
                w = WorkOrder(conversation_id=cid, category="留言", title=mask_text(text)[:60], detail=mask_text(text), status="open",
                              deadline=deadline, created_by="citizen")
                s.add(w)
                conv.mode = "bot"
                s.flush()
                return ("workorder", w.id)
            h = open_handoff(s, cid)
            return ("handoff", handoff_dict(h) | {"position": queue_position(s, h)} if h else None)
        kind, data = await store.run(read)
        if kind == "workorder":
            await chat.record(cid, "system", f"您的留言已登记为工单（编号 {data}），工作人员上班后会尽快处理。", {"workorder": data})
            notify_desk("workorders_changed")
        elif data:
            notify_desk("citizen_message", handoff_id=data["id"], conversation_id=cid, text=text,
                        queue=data["queue"], agent=data.get("agent"))
            if data["status"] == "queued":
                await push_citizen_handoff(cid, {"status": "queued", "position": data["position"], "queue": data["queue"]})

    async def on_rating_reply(cid: str, text: str) -> bool:
        m = re.match(r"^/rate_satisfaction(\{.*\})?$", text)
        score, comment = None, ""
        if m and m.group(1):
            try:
                data = json.loads(m.group(1))
                score, comment = data.get("rating"), str(data.get("comment") or "")[:500]
            except ValueError:
                score = None
        elif text.strip() in RATINGS:
            score = text.strip()

        def save(s: Session) -> bool:
            conv = s.get(Conversation, cid)
            conv.awaiting_rating = False
            if score not in RATINGS:
                return False
            h = s.scalars(select(Handoff).where(Handoff.conversation_id == cid, Handoff.status == "resolved")
                          .order_by(Handoff.id.desc())).first()
            s.add(Rating(conversation_id=cid, handoff_id=h.id if h else None, score=score, comment=mask_text(comment)))
            return True
        rated = await store.run(save)
        hub.publish(f"conv:{cid}", {"type": "rating", "show": False})
        if rated:
            await chat.record(cid, "system", "感谢您的评价！还有其他问题可以继续问我。", {"rating": score})
            notify_desk("rating", conversation_id=cid, score=score)
        return rated

    chat.on_human_message = on_human_message
    chat.on_rating_reply = on_rating_reply

    # ---------------------------------------------------------------- desk pages and session
    @app.get("/desk")
    async def desk_page(request: Request):
        if await asyncio.to_thread(current_agent, request) is None:
            return response.redirect("/desk/login")
        return await response.file(STATIC / "desk.html", mime_type="text/html; charset=utf-8")

    @app.get("/desk/login")
    async def login_page(request: Request):
        return await response.file(STATIC / "login.html", mime_type="text/html; charset=utf-8")

    @app.post("/desk/login")
    async def login(request: Request):
        body = request.json if isinstance(request.json, dict) else {k: v[0] for k, v in (request.form or {}).items()}
        username, password = str(body.get("username") or "")[:64], str(body.get("password") or "")[:256]
        address = request.remote_addr or request.ip or ""
        wait = throttle.wait(username, address)
        if wait:
            log.warning("desk login for %s from %s refused: too many failures", mask_text(username), address)
            return response.json({"error": f"登录失败次数过多，请 {max(1, wait // 60)} 分钟后再试"}, status=429,
                                 headers={"Retry-After": str(wait)})
        agent = await store.run(lambda s: s.get(Agent, username))
        ok = await asyncio.to_thread(check_login, agent, password)
        if not ok:
            throttle.failed(username, address)
            log.warning("desk login failed for %s from %s", mask_text(username), address)
            await audit(mask_text(username) or "?", "login_failed", detail=address)  # whatever was typed as a name
            return response.json({"error": "用户名或密码错误"}, status=401)
        throttle.succeeded(username)
        await audit(agent.username, "login", detail=address)
        sid = await store.run(lambda s: open_desk_session(s, agent.username, address))
        r = response.json({"ok": True, "username": agent.username, "role": agent.role})
        r.add_cookie(COOKIE, sign_session(agent.username, str(settings.session_secret), sid=sid), httponly=True,
                     samesite="Strict", max_age=SESSION_SECONDS, path="/", secure=not settings.dev_mode)
        return r

    @app.post("/desk/logout")
    async def logout(request: Request):
        """Ends this session on the server too: a copied cookie stops working at once."""
        claims = read_session_claims(request.cookies.get(COOKIE), str(settings.session_secret))
        if claims and claims.get("s"):
            ended = await store.run(lambda s: end_desk_sessions(s, claims["u"], str(claims["s"])))
            if ended:
                await audit(claims["u"], "logout")
        r = response.json({"ok": True})
        r.delete_cookie(COOKIE, path="/")
        return r

    # ---------------------------------------------------------------- desk API
    @app.get("/desk/api/me")
    async def me(request: Request):
        agent, err = await require_agent(request)
        if err:
            return err
        return response.json({"username": agent.username, "name": agent.display_name, "role": agent.role,
                              "queues": agent.queues, "all_queues": QUEUES})

    @app.get("/desk/api/queues")
    async def queues(request: Request):
        agent, err = await require_agent(request)
        if err:
            return err

        def read(s: Session):
            rows = s.scalars(select(Handoff).where(Handoff.status.in_(OPEN))
                             .order_by(Handoff.priority.desc(), Handoff.id)).all()
            visible = [h for h in rows if can_see(agent, h)]
            by_queue = {q: [handoff_dict(h) for h in visible if h.queue == q and h.status == "queued"]
                        for q in QUEUES if agent.role == "supervisor" or q in agent.queues}
            mine = [handoff_dict(h) for h in visible if h.status == "claimed" and h.agent == agent.username]
            others = [handoff_dict(h) for h in visible if h.status == "claimed" and h.agent != agent.username] \
                if agent.role == "supervisor" else []
            return {"queues": by_queue, "mine": mine, "claimed_by_others": others}
        return response.json(await store.run(read))

    async def load_handoff(agent: Agent, hid: int):
        h = await store.run(lambda s: s.get(Handoff, hid))
        if h is None:
            return None, response.json({"error": "没有这个转人工记录"}, status=404)
        if not can_see(agent, h):
            return None, response.json({"error": "这个会话不属于您的队列"}, status=403)
        return h, None

    @app.get("/desk/api/handoffs/<hid:int>")
    async def handoff_detail(request: Request, hid: int):
        agent, err = await require_agent(request)
        if err:
            return err
        h, err = await load_handoff(agent, hid)
        if err:
            return err
        transcript = await store.run(lambda s: Store.transcript(s, h.conversation_id))
        await audit(agent.username, "open_conversation", h.conversation_id, f"hand-off {h.id}")
        return response.json({"handoff": handoff_dict(h), "transcript": transcript})

    @app.post("/desk/api/handoffs/<hid:int>/claim")
    async def claim(request: Request, hid: int):
        """Serve a queued conversation: of simultaneous claims one wins, the others get 409 (already claimed)."""
        agent, err = await require_agent(request)
        if err:
            return err
        try:
            h = await handoffs.claim(hid, agent)
        except HandoffRefused as r:
            return refused(r)
        await chat.record(h["conversation_id"], "system", f"人工客服（{agent.display_name}）已接入，请讲。",
                          {"handoff": {"status": "claimed"}})
        await push_citizen_handoff(h["conversation_id"], {"status": "claimed"})
        await audit(agent.username, "claim", h["conversation_id"], f"hand-off {h['id']}")
        notify_desk("queue_changed", queue=h["queue"])
        return response.json(h)

    async def own_claimed(request: Request, hid: int):
        agent, err = await require_agent(request)
        if err:
            return None, None, err
        h, err = await load_handoff(agent, hid)
        if err:
            return None, None, err
        if h.status != "claimed" or h.agent != agent.username:
            return None, None, response.json({"error": "请先接入这个会话" if h.status in OPEN else
                                              f"这个会话已结束（{handoff_dict(h)['closed'] or h.status}）"}, status=409)
        return agent, h, None

    @app.post("/desk/api/handoffs/<hid:int>/reply")
    async def reply(request: Request, hid: int):
        agent, h, err = await own_claimed(request, hid)
        if err:
            return err
        text = str((request.json or {}).get("text") or "").strip()
        if not text or len(text) > 2000:
            return response.json({"error": "回复内容不能为空，且不超过 2000 字"}, status=400)
        msg = await chat.record(h.conversation_id, "agent", text, {"agent_name": agent.display_name, "handoff": hid})
        notify_desk("agent_message", handoff_id=hid, conversation_id=h.conversation_id, queue=h.queue, agent=h.agent)
        return response.json(msg)

    @app.post("/desk/api/handoffs/<hid:int>/resolve")
    async def resolve(request: Request, hid: int):
        agent, h, err = await own_claimed(request, hid)
        if err:
            return err
        try:
            await handoffs.resolve(hid, agent)
        except HandoffRefused as r:  # it closed (citizen left or returned to the bot) since it was read
            return refused(r)
        await chat.record(h.conversation_id, "system", "人工服务已结束，请您对本次服务进行评价（满意 / 基本满意 / 不满意）。之后有问题可以继续问智能客服。",
                          {"handoff": {"status": "resolved"}, "rating_prompt": True})
        hub.publish(f"conv:{h.conversation_id}", {"type": "rating", "show": True})
        await push_citizen_handoff(h.conversation_id, {"status": "resolved"})
        notify_desk("queue_changed", queue=h.queue)
        return response.json({"ok": True})

    @app.post("/desk/api/handoffs/<hid:int>/transfer")
    async def transfer(request: Request, hid: int):
        agent, h, err = await own_claimed(request, hid)
        if err:
            return err
        target = (request.json or {}).get("queue")
        if target not in QUEUES:
            return response.json({"error": "请选择要转到的队列"}, status=400)
        try:
            pos = (await handoffs.transfer(hid, agent, target))["position"]
        except HandoffRefused as r:
            return refused(r)
        await chat.record(h.conversation_id, "system", f"已为您转接{target}专家坐席，请稍候。", {"handoff": {"status": "queued"}})
        await push_citizen_handoff(h.conversation_id, {"status": "queued", "position": pos, "queue": target})
        notify_desk("queue_changed", queue=target)
        return response.json({"ok": True, "queue": target, "position": pos})

    @app.get("/desk/api/kb/search")
    async def kb_search(request: Request):
        agent, err = await require_agent(request)
        if err:
            return err
        q = (request.args.get("q") or "").strip()[:200]
        if not q:
            return response.json({"results": []})
        kb = await app.ctx.desk_kb()
        hits = await asyncio.to_thread(kb.search, q, 5)
        return response.json({"results": [{"id": h.entry.id, "question": h.entry.question, "answer": h.entry.answer,
                                           "local_review": h.entry.local_review, "score": round(h.score, 3)} for h in hits]})

    @app.post("/desk/api/workorders")
    async def create_workorder(request: Request):
        agent, err = await require_agent(request)
        if err:
            return err
        body = request.json if isinstance(request.json, dict) else {}
        title = str(body.get("title") or "").strip()
        try:
            days = int(body.get("deadline_days") or 3)
        except (TypeError, ValueError):
            days = 0
        if not title or not 1 <= days <= 60:
            return response.json({"error": "请填写工单标题，限时办结天数为 1–60 天"}, status=400)
        linked = body.get("conversation_id") or None
        if linked is not None and not (isinstance(linked, str) and valid_cid(linked)):
            return response.json({"error": "关联的会话标识无效"}, status=400)

        def do(s: Session):
            w = WorkOrder(conversation_id=linked, category=mask_text(str(body.get("category") or "综合"))[:32],
                          title=mask_text(title)[:200], detail=mask_text(str(body.get("detail") or ""))[:4000],
                          contact=mask_contact(str(body.get("contact") or ""))[:64],
                          deadline=now() + dt.timedelta(days=days), created_by=agent.username)
            s.add(w)
            s.flush()
            return workorder_dict(w)
        w = await store.run(do)
        notify_desk("workorders_changed")
        return response.json(w)

    @app.get("/desk/api/workorders")
    async def list_workorders(request: Request):
        agent, err = await require_agent(request)
        if err:
            return err
        status = request.args.get("status")

        def read(s: Session):
            q = select(WorkOrder).order_by(WorkOrder.deadline)
            if status:
                q = q.where(WorkOrder.status == status)
            elif agent.role != "supervisor":
                q = q.where(WorkOrder.status != "closed")
            return [workorder_dict(w) for w in s.scalars(q.limit(2000)).all() if can_see_workorder(agent, w)][:500]
        return response.json({"workorders": await store.run(read)})

    @app.post("/desk/api/workorders/<wid:int>")
    async def update_workorder(request: Request, wid: int):
        agent, err = await require_agent(request)
        if err:
            return err
        body = request.json if isinstance(request.json, dict) else {}
        status, expected = body.get("status"), body.get("expected_status")
        if status not in WORKORDER_STATES or expected not in (None, *WORKORDER_STATES):
            return response.json({"error": "状态只能是 open / in_progress / closed"}, status=400)
        try:  # taken (in_progress) or closed by one agent only: the change applies if the status is still the one seen
            w = await handoffs.update_workorder(wid, lambda w: can_see_workorder(agent, w), status,
                                                str(body.get("resolution") or ""), expected)
        except HandoffRefused as r:
            return refused(r)
        await audit(agent.username, "update_workorder", w["id"], status)
        notify_desk("workorders_changed")
        return response.json(w)

    @app.get("/desk/api/stats")
    async def stats(request: Request):
        _, err = await require_supervisor(request)
        if err:
            return err

        def read(s: Session):
            t = now()
            queued = s.scalars(select(Handoff).where(Handoff.status == "queued")).all()
            per_queue = {q: {"waiting": 0, "longest_wait_seconds": 0} for q in QUEUES}
            for h in queued:
                d = per_queue.setdefault(h.queue, {"waiting": 0, "longest_wait_seconds": 0})
                d["waiting"] += 1
                d["longest_wait_seconds"] = max(d["longest_wait_seconds"], int((t - h.created_at).total_seconds()))
            ratings = s.scalars(select(Rating)).all()
            return {"queues": per_queue,
                    "claimed": Store.count(s, Handoff, Handoff.status == "claimed"),
                    "open_workorders": Store.count(s, WorkOrder, WorkOrder.status != "closed"),
                    "overdue_workorders": Store.count(s, WorkOrder, WorkOrder.status != "closed", WorkOrder.deadline < t),
                    "ratings": {r: sum(1 for x in ratings if x.score == r) for r in RATINGS}}
        return response.json(await store.run(read))

    @app.get("/desk/api/audit")
    async def audit_log(request: Request):
        """The latest desk actions (supervisors): who opened, claimed or changed what, and when."""
        _, err = await require_supervisor(request)
        if err:
            return err
        who = request.args.get("agent")

        def read(s: Session):
            q = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(500)
            if who:
                q = q.where(AuditEvent.agent == who)
            return [{"at": e.at, "agent": e.agent, "action": e.action, "target": e.target, "detail": e.detail}
                    for e in s.scalars(q).all()]
        return response.json({"events": await store.run(read)})

    @app.websocket("/desk/ws")
    async def desk_ws(request: Request, ws: Websocket):
        agent = await asyncio.to_thread(current_agent, request)
        if agent is None:
            await ws.send(json.dumps({"type": "error", "text": "请先登录"}, ensure_ascii=False))
            return
        q = hub.subscribe("desk")
        try:
            await ws.send(dumps({"type": "hello", "agent": agent.username}))
            while True:
                try:
                    event = await asyncio.wait_for(q.get(), timeout=WS_SESSION_CHECK_SECONDS)
                except asyncio.TimeoutError:
                    event = None
                # the session is checked again before anything is sent, and while idle: a logout, a password
                # change or a disabled account closes the live feed too
                agent = await asyncio.to_thread(current_agent, request)
                if agent is None:
                    await ws.send(dumps({"type": "error", "text": "登录已失效，请重新登录"}))
                    await ws.close()
                    return
                if event is not None and sees_event(agent, event):
                    await ws.send(dumps(event))
        finally:
            hub.unsubscribe("desk", q)

    # the desk's knowledge search: lexical retrieval (no model in the web app), loaded on first use
    _kb_lock = asyncio.Lock()

    async def desk_kb():
        async with _kb_lock:
            if getattr(app.ctx, "_desk_kb", None) is None:
                from knowledge.retriever import KnowledgeBase
                from knowledge.schema import load_entries

                app.ctx._desk_kb = await asyncio.to_thread(lambda: KnowledgeBase(load_entries()))
            return app.ctx._desk_kb
    app.ctx.desk_kb = desk_kb
