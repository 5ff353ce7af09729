"""What every route checks before it calls a service: the service token, the agent's session, the agent's role."""
from __future__ import annotations

import asyncio
import hmac
from typing import Any

from sanic import HTTPResponse, Request, response
from sanic.exceptions import BadRequest

from webapp.auth import COOKIE, desk_session_valid, read_session_claims
from webapp.refusals import Refused
from webapp.store import Agent

REFUSED_STATUS = {"not_found": 404, "forbidden": 403, "conflict": 409}


def service_authorized(request: Request) -> bool:
    """True when the request carries the service token (action server, voice gateway)."""
    auth = request.headers.get("authorization", "")
    return auth.startswith("Bearer ") and hmac.compare_digest(auth[7:], request.app.ctx.settings.service_token.reveal())


def current_agent(request: Request) -> Agent | None:
    """The agent of a signed cookie whose server-side session is still open (not logged out, not revoked)."""
    ctx = request.app.ctx
    claims = read_session_claims(request.cookies.get(COOKIE), ctx.settings.session_secret.reveal())
    if not claims:
        return None

    def find(s) -> Agent | None:
        if not desk_session_valid(s, claims["u"], str(claims.get("s") or "")):
            return None
        agent = s.get(Agent, claims["u"])
        return agent if agent and agent.active else None
    return ctx.store.call(find)


async def require_agent(request: Request) -> tuple[Agent | None, HTTPResponse | None]:
    """(agent, None) for a logged-in agent; (None, 401 answer) otherwise."""
    agent = await asyncio.to_thread(current_agent, request)
    if agent is None:
        return None, response.json({"error": "请先登录"}, status=401)
    return agent, None


async def require_supervisor(request: Request) -> tuple[Agent | None, HTTPResponse | None]:
    """(agent, None) for a logged-in supervisor; (None, 401 or 403 answer) otherwise."""
    agent, err = await require_agent(request)
    if err is None and agent.role != "supervisor":
        return None, response.json({"error": "仅值班长可查看"}, status=403)
    return agent, err


def refused(r: Refused) -> HTTPResponse:
    """The desk's answer to a change that did not happen (someone else was first, or it is not the agent's)."""
    return response.json({"error": r.message}, status=REFUSED_STATUS.get(r.kind, 409))


def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object ({} for anything else, a body that is not JSON included)."""
    try:
        body = request.json
    except BadRequest:  # not JSON, or not UTF-8: the route answers as for a missing field (400, in words)
        return {}
    return body if isinstance(body, dict) else {}


class ConnectionLimit:
    """Open connections per client address: at most `per_source` at once from one address.

    One address may be a family or an office behind one router, so the limit is generous; it stops a
    single source from holding thousands of sockets (and the memory of each).
    """

    def __init__(self, per_source: int) -> None:
        self.per_source = per_source
        self.open: dict[str, int] = {}

    def take(self, source: str) -> bool:
        """Count one more connection from `source`; False (nothing counted) when it already has the limit."""
        if self.open.get(source, 0) >= self.per_source:
            return False
        self.open[source] = self.open.get(source, 0) + 1
        return True

    def give_back(self, source: str) -> None:
        """A connection from `source` closed."""
        left = self.open.get(source, 0) - 1
        if left > 0:
            self.open[source] = left
        else:
            self.open.pop(source, None)


def notify_desk(request: Request, kind: str, **data: Any) -> None:
    """A live event for the agents' pages (webapp/routes/desk_live.py decides who sees it)."""
    request.app.ctx.hub.publish("desk", {"type": kind, **data})
