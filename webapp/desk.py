"""The human expert seat: hand-off API used by the bot and the voice gateway (agent desk pages follow)."""
from __future__ import annotations

import hmac

from sanic import Request, Sanic, response
from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.store import Conversation, Handoff, Store


def service_authorized(request: Request, token: str) -> bool:
    """True when the request carries the service token (action server, voice gateway)."""
    auth = request.headers.get("authorization", "")
    return auth.startswith("Bearer ") and hmac.compare_digest(auth[7:], str(token))


def attach_desk(app: Sanic) -> None:
    """Register the hand-off routes on the web app."""
    store: Store = app.ctx.store

    @app.post("/api/handoff")
    async def create_handoff(request: Request):
        if not service_authorized(request, app.ctx.settings.service_token):
            return response.json({"error": "unauthorized"}, status=401)
        body = request.json if isinstance(request.json, dict) else {}
        cid = body.get("conversation_id")
        if not isinstance(cid, str) or not cid:
            return response.json({"error": "conversation_id is required"}, status=400)

        def create(s: Session) -> dict:
            conv = Store.ensure_conversation(s, cid, body.get("channel") or "web")
            open_h = s.scalars(select(Handoff).where(Handoff.conversation_id == cid,
                                                     Handoff.status.in_(("queued", "claimed")))).first()
            if open_h is None:
                open_h = Handoff(conversation_id=cid, channel=body.get("channel") or "web",
                                 queue=body.get("queue") or "综合", reason=body.get("reason") or "",
                                 summary=body.get("summary") or "", slots=body.get("slots") or {})
                s.add(open_h)
                s.flush()
            conv.mode = "human"
            ahead = Store.count(s, Handoff, Handoff.queue == open_h.queue, Handoff.status == "queued",
                                Handoff.id < open_h.id)
            return {"id": open_h.id, "status": open_h.status, "position": ahead + 1, "queue": open_h.queue}

        info = await store.run(create)
        info["message"] = f"正在为您转接{info['queue']}专家坐席，您前面还有 {info['position'] - 1} 位，请稍候。"
        app.ctx.hub.publish("desk", {"type": "queue_changed"})
        return response.json(info)

    _ = Conversation  # the desk pages (next step) read conversations too
