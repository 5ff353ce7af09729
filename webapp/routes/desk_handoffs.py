"""The desk's hand-off routes: the queues, one conversation, claim, reply, resolve, transfer.

The rules are webapp/handoffs.py's; what the citizen is told is webapp/chat.py's.
"""
from __future__ import annotations

from sanic import Request, Sanic, response

from common.handoff import QUEUES
from webapp.handoffs import handoff_dict
from webapp.refusals import Refused
from webapp.routes.guards import json_body, notify_desk, refused, require_agent
from webapp.store import Store


async def queues(request: Request):
    """The waiting hand-offs of the agent's queues (next served first), its own, and (supervisors) the others'."""
    agent, err = await require_agent(request)
    if err:
        return err
    return response.json(await request.app.ctx.handoffs.board(agent))


async def handoff_detail(request: Request, hid: int):
    """A hand-off and its conversation's transcript; opening it is audited."""
    ctx = request.app.ctx
    agent, err = await require_agent(request)
    if err:
        return err
    try:
        h = await ctx.handoffs.get(hid, agent)
    except Refused as r:
        return refused(r)
    transcript = await ctx.store.run(lambda s: Store.transcript(s, h.conversation_id))
    await ctx.audit.record(agent.username, "open_conversation", h.conversation_id, f"hand-off {h.id}")
    return response.json({"handoff": handoff_dict(h), "transcript": transcript})


async def claim(request: Request, hid: int):
    """Serve a queued conversation: of simultaneous claims one wins, the others get 409 (already claimed)."""
    ctx = request.app.ctx
    agent, err = await require_agent(request)
    if err:
        return err
    try:
        h = await ctx.handoffs.claim(hid, agent)
    except Refused as r:
        return refused(r)
    await ctx.chat.agent_joined(h["conversation_id"], agent.display_name)
    await ctx.audit.record(agent.username, "claim", h["conversation_id"], f"hand-off {h['id']}")
    notify_desk(request, "queue_changed", queue=h["queue"])
    return response.json(h)


async def _serving(request: Request, hid: int):
    """(agent, the hand-off it serves, None), or (None, None, the refusal) when not logged in or not serving it."""
    agent, err = await require_agent(request)
    if err:
        return None, None, err
    try:
        return agent, await request.app.ctx.handoffs.served_by(hid, agent), None
    except Refused as r:
        return None, None, refused(r)


async def reply(request: Request, hid: int):
    """The serving agent writes to the citizen."""
    ctx = request.app.ctx
    agent, h, err = await _serving(request, hid)
    if err:
        return err
    text = str(json_body(request).get("text") or "").strip()
    if not text or len(text) > 2000:
        return response.json({"error": "回复内容不能为空，且不超过 2000 字"}, status=400)
    msg = await ctx.chat.agent_says(h.conversation_id, hid, agent.display_name, text)
    notify_desk(request, "agent_message", handoff_id=hid, conversation_id=h.conversation_id, queue=h.queue, agent=h.agent)
    return response.json(msg)


async def resolve(request: Request, hid: int):
    """The serving agent ends the service; the citizen is asked for a rating."""
    ctx = request.app.ctx
    agent, h, err = await _serving(request, hid)
    if err:
        return err
    try:
        await ctx.handoffs.resolve(hid, agent)
    except Refused as r:  # e.g. it closed (citizen left or returned to the bot) since it was read
        return refused(r)
    await ctx.chat.service_ended(h.conversation_id)
    notify_desk(request, "queue_changed", queue=h.queue)
    return response.json({"ok": True})


async def transfer(request: Request, hid: int):
    """The serving agent puts the conversation into another queue."""
    ctx = request.app.ctx
    agent, h, err = await _serving(request, hid)
    if err:
        return err
    target = json_body(request).get("queue")
    if target not in QUEUES:
        return response.json({"error": "请选择要转到的队列"}, status=400)
    try:
        pos = (await ctx.handoffs.transfer(hid, agent, target))["position"]
    except Refused as r:
        return refused(r)
    await ctx.chat.transferred(h.conversation_id, target, pos)
    notify_desk(request, "queue_changed", queue=target)
    return response.json({"ok": True, "queue": target, "position": pos})


def register(app: Sanic) -> None:
    """Add the routes to the web app."""
    app.add_route(queues, "/desk/api/queues", methods=["GET"])
    app.add_route(handoff_detail, "/desk/api/handoffs/<hid:int>", methods=["GET"])
    app.add_route(claim, "/desk/api/handoffs/<hid:int>/claim", methods=["POST"])
    app.add_route(reply, "/desk/api/handoffs/<hid:int>/reply", methods=["POST"])
    app.add_route(resolve, "/desk/api/handoffs/<hid:int>/resolve", methods=["POST"])
    app.add_route(transfer, "/desk/api/handoffs/<hid:int>/transfer", methods=["POST"])
