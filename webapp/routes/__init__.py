"""The web app's HTTP and WebSocket routes, one module per door; each only checks, calls a service, answers.

    citizen page ── pages.py (/), chat_api.py (/api/chat/*), chat_live.py (/ws/chat) ──▶ webapp/chat.py
    softphone    ── phone_page.py (/phone, /phone/ws) ──────────────────────────────▶ webapp/softphone.py ─▶ voice gateway
    bot, phone   ── handoff_api.py (/api/handoff*) ─────────────────────────────────▶ webapp/handoffs.py
    agent page   ── desk_auth.py (/desk, login, logout, me)                           webapp/auth.py
                    desk_handoffs.py (queues, claim, reply, resolve, transfer) ────▶ webapp/handoffs.py, chat.py
                    desk_workorders.py (/desk/api/workorders*) ─────────────────────▶ webapp/workorders.py
                    desk_kb.py (/desk/api/kb/search) ───────────────────────────────▶ knowledge/
                    desk_supervision.py (stats, audit, alerts, reports) ────────────▶ webapp/stats.py, audit.py, supervision.py
                    desk_live.py (/desk/ws: the events of the agent's queues)

The guards every route uses (service token, desk session, role) are in guards.py.
"""
from __future__ import annotations

from sanic import Sanic

from webapp.routes import (
    chat_api,
    chat_live,
    desk_auth,
    desk_handoffs,
    desk_kb,
    desk_live,
    desk_supervision,
    desk_workorders,
    handoff_api,
    pages,
    phone_page,
)

MODULES = (pages, phone_page, chat_api, chat_live, handoff_api, desk_auth, desk_handoffs, desk_workorders, desk_kb,
           desk_supervision, desk_live)


def register_all(app: Sanic) -> None:
    """Add every route to the web app (its services must be on app.ctx)."""
    for module in MODULES:
        module.register(app)
