"""The desk's pages and session: /desk, /desk/login, /desk/logout, /desk/api/me."""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from sanic import Request, Sanic, response

from common.handoff import QUEUES
from common.privacy import mask_text
from webapp.auth import (
    COOKIE,
    SESSION_SECONDS,
    check_login,
    end_desk_sessions,
    open_desk_session,
    read_session_claims,
    sign_session,
)
from webapp.routes.guards import current_agent, require_agent
from webapp.store import Agent

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent.parent / "static"
# The desk's pages run only their own script files and style sheets: no inline script, style or handler, nothing from
# another origin, not framed. Text a citizen typed reaches the desk (transcripts, work orders, alert examples) and is
# written with textContent; should a way around that ever appear, the browser still refuses to run what it injects.
# connect-src 'self' covers the desk's WebSocket (ws/wss to the same host, CSP level 3).
DESK_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
DESK_PAGE_HEADERS = {"Content-Security-Policy": DESK_CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}


async def desk_page(request: Request):
    """The desk for a logged-in agent; the login page otherwise."""
    if await asyncio.to_thread(current_agent, request) is None:
        return response.redirect("/desk/login")
    return await response.file(STATIC / "desk.html", mime_type="text/html; charset=utf-8", headers=dict(DESK_PAGE_HEADERS))


async def login_page(request: Request):
    """The login form."""
    return await response.file(STATIC / "login.html", mime_type="text/html; charset=utf-8", headers=dict(DESK_PAGE_HEADERS))


async def login(request: Request):
    """Open a desk session: throttled per user name and address, as slow for unknown names, audited."""
    ctx = request.app.ctx
    body = request.json if isinstance(request.json, dict) else {k: v[0] for k, v in (request.form or {}).items()}
    username, password = str(body.get("username") or "")[:64], str(body.get("password") or "")[:256]
    address = request.remote_addr or request.ip or ""
    wait = await ctx.login_throttle.wait(username, address)
    if wait:
        log.warning("desk login for %s from %s refused: too many failures", mask_text(username), address)
        return response.json({"error": f"登录失败次数过多，请 {max(1, wait // 60)} 分钟后再试"}, status=429,
                             headers={"Retry-After": str(wait)})
    agent = await ctx.store.run(lambda s: s.get(Agent, username))
    ok = await asyncio.to_thread(check_login, agent, password)
    if not ok:
        await ctx.login_throttle.failed(username, address)
        log.warning("desk login failed for %s from %s", mask_text(username), address)
        await ctx.audit.record(mask_text(username) or "?", "login_failed", detail=address)  # whatever was typed as a name
        return response.json({"error": "用户名或密码错误"}, status=401)
    await ctx.login_throttle.succeeded(username)
    await ctx.audit.record(agent.username, "login", detail=address)
    sid = await ctx.store.run(lambda s: open_desk_session(s, agent.username, address))
    r = response.json({"ok": True, "username": agent.username, "role": agent.role})
    r.add_cookie(COOKIE, sign_session(agent.username, ctx.settings.session_secret.reveal(), sid=sid), httponly=True,
                 samesite="Strict", max_age=SESSION_SECONDS, path="/", secure=not ctx.settings.dev_mode)
    return r


async def logout(request: Request):
    """Ends this session on the server too: a copied cookie stops working at once."""
    ctx = request.app.ctx
    claims = read_session_claims(request.cookies.get(COOKIE), ctx.settings.session_secret.reveal())
    if claims and claims.get("s"):
        ended = await ctx.store.run(lambda s: end_desk_sessions(s, claims["u"], str(claims["s"])))
        if ended:
            await ctx.audit.record(claims["u"], "logout")
    r = response.json({"ok": True})
    r.delete_cookie(COOKIE, path="/")
    return r


async def me(request: Request):
    """The logged-in agent: name, role, its queues and every queue (for transfers)."""
    agent, err = await require_agent(request)
    if err:
        return err
    return response.json({"username": agent.username, "name": agent.display_name, "role": agent.role,
                          "queues": agent.queues, "all_queues": list(QUEUES)})


def register(app: Sanic) -> None:
    """Add the routes to the web app."""
    app.add_route(desk_page, "/desk", methods=["GET"])
    app.add_route(login_page, "/desk/login", methods=["GET"])
    app.add_route(login, "/desk/login", methods=["POST"])
    app.add_route(logout, "/desk/logout", methods=["POST"])
    app.add_route(me, "/desk/api/me", methods=["GET"])
