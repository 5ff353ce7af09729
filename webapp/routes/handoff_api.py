"""POST /api/handoff and GET /api/handoff/<cid>: the bot's and the voice gateway's door to the expert seat.

The body and answer are the contract in common/handoff.py; the rules (priority, off hours, one open
hand-off per conversation) are webapp/handoffs.py's.
"""
from __future__ import annotations

from sanic import Request, Sanic, response

from common.handoff import HANDOFF_PATH, HandoffRequest, HandoffRequestError
from webapp.routes.guards import notify_desk, service_authorized


async def create_handoff(request: Request):
    """Queue a conversation for a person (or, off hours, take a message)."""
    if not service_authorized(request):
        return response.json({"error": "unauthorized"}, status=401)
    try:
        asked = HandoffRequest.from_json(request.json)
    except HandoffRequestError as exc:
        return response.json({"error": str(exc)}, status=400)
    reply = await request.app.ctx.handoffs.open(asked)
    if reply.status != "offhours":
        notify_desk(request, "queue_changed", queue=reply.queue)
    return response.json(reply.to_json())


async def handoff_status(request: Request, cid: str):
    """The latest hand-off of a conversation (for the voice gateway and other services)."""
    if not service_authorized(request):
        return response.json({"error": "unauthorized"}, status=401)
    h = await request.app.ctx.handoffs.latest(cid)
    return response.json(h or {"status": "none"}, status=200 if h else 404)


def register(app: Sanic) -> None:
    """Add the routes to the web app."""
    app.add_route(create_handoff, HANDOFF_PATH, methods=["POST"])
    app.add_route(handoff_status, HANDOFF_PATH + "/<cid:str>", methods=["GET"])
