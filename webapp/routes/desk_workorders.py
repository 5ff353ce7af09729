"""The desk's work-order routes: file one, list the agent's, take or close one (webapp/workorders.py)."""
from __future__ import annotations

from sanic import Request, Sanic, response

from webapp.chat import valid_cid
from webapp.refusals import Refused
from webapp.routes.guards import json_body, notify_desk, refused, require_agent
from webapp.workorders import WORKORDER_STATES, visible_to


async def create_workorder(request: Request):
    """File a work order (title, category, detail, contact, deadline in days, linked conversation)."""
    agent, err = await require_agent(request)
    if err:
        return err
    body = json_body(request)
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
    w = await request.app.ctx.workorders.create(agent, title, days, category=str(body.get("category") or "综合"),
                                                detail=str(body.get("detail") or ""),
                                                contact=str(body.get("contact") or ""), conversation_id=linked)
    notify_desk(request, "workorders_changed")
    return response.json(w)


async def list_workorders(request: Request):
    """The work orders the agent may see (?status=open|in_progress|closed)."""
    agent, err = await require_agent(request)
    if err:
        return err
    return response.json({"workorders": await request.app.ctx.workorders.listing(agent, request.args.get("status"))})


async def update_workorder(request: Request, wid: int):
    """Move a work order to a status, if it is still in the one the agent saw (expected_status)."""
    ctx = request.app.ctx
    agent, err = await require_agent(request)
    if err:
        return err
    body = json_body(request)
    status, expected = body.get("status"), body.get("expected_status")
    if status not in WORKORDER_STATES or expected not in (None, *WORKORDER_STATES):
        return response.json({"error": "状态只能是 open / in_progress / closed"}, status=400)
    try:  # taken (in_progress) or closed by one agent only: the change applies if the status is still the one seen
        w = await ctx.workorders.update(wid, lambda w: visible_to(agent, w), status,
                                        str(body.get("resolution") or ""), expected)
    except Refused as r:
        return refused(r)
    await ctx.audit.record(agent.username, "update_workorder", w["id"], status)
    notify_desk(request, "workorders_changed")
    return response.json(w)


def register(app: Sanic) -> None:
    """Add the routes to the web app."""
    app.add_route(create_workorder, "/desk/api/workorders", methods=["POST"])
    app.add_route(list_workorders, "/desk/api/workorders", methods=["GET"])
    app.add_route(update_workorder, "/desk/api/workorders/<wid:int>", methods=["POST"])
