"""/desk/ws: the agents' live feed (queue changes, citizens' lines, work orders), each event only to its queue's agents."""
from __future__ import annotations

import asyncio
import json
from typing import Any

from sanic import Request, Sanic, Websocket

from webapp.routes.guards import current_agent
from webapp.store import Agent, dumps

WS_SESSION_CHECK_SECONDS = 15.0  # an idle live feed re-checks its session this often


def sees_event(agent: Agent, event: dict[str, Any]) -> bool:
    """Live desk events go to the agents of the event's queue (and supervisors) only."""
    if agent.role == "supervisor":
        return True
    if event.get("type") == "rating":
        return False
    queue = event.get("queue")
    return queue is None or queue in (agent.queues or []) or event.get("agent") == agent.username


async def desk_ws(request: Request, ws: Websocket):
    """Send the agent the desk events it may see, for as long as its session lasts."""
    hub = request.app.ctx.hub
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


def register(app: Sanic) -> None:
    """Add the route to the web app."""
    app.add_websocket_route(desk_ws, "/desk/ws")
