"""The citizen's HTTP doors: GET /api/chat/state and POST /api/chat/message (the WebSocket's fallback).

The conversation is the one of the signed chat cookie, never one named by the request; the chat's
rules are webapp/chat.py's.
"""
from __future__ import annotations

from sanic import HTTPResponse, Request, Sanic, response
from sqlalchemy.exc import SQLAlchemyError

from webapp.auth import CHAT_COOKIE, CHAT_COOKIE_SECONDS, new_chat_id, read_chat, sign_chat
from webapp.chat import BUSY_TEXT, ChatBusy, ChatError
from webapp.routes.guards import json_body

NOT_YOURS = "这个会话不属于当前浏览器，请刷新页面。"


def client_source(request: Request) -> str:
    """web:<client address> for the card system's per-source limits.

    The address is the TCP peer's, or what a trusted reverse proxy says (Sanic reads X-Forwarded-For only
    when SANIC_PROXIES_COUNT / SANIC_REAL_IP_HEADER / SANIC_FORWARDED_SECRET are set): a client cannot choose it.
    """
    address = (request.remote_addr or request.ip or "").strip()
    return f"web:{address}" if address else ""


def conversation(request: Request, claimed: object = None) -> tuple[str | None, bool]:
    """(conversation id, newly issued) from the signed cookie; a new one when there is none.

    A request naming another conversation than its cookie's gets (None, False): ids are never
    taken from the request, so knowing or guessing one gives nothing.
    """
    cid = read_chat(request.cookies.get(CHAT_COOKIE), request.app.ctx.settings.session_secret.reveal())
    if cid is None:
        return new_chat_id(), True
    if claimed not in (None, "", cid):
        return None, False
    return cid, False


def with_cookie(request: Request, resp: HTTPResponse, cid: str, issued: bool) -> HTTPResponse:
    """The answer, with the conversation's signed cookie when it was just issued."""
    settings = request.app.ctx.settings
    if issued:
        resp.add_cookie(CHAT_COOKIE, sign_chat(cid, settings.session_secret.reveal()), httponly=True, samesite="Lax",
                        path="/", max_age=CHAT_COOKIE_SECONDS, secure=not settings.dev_mode)
    return resp


async def chat_state(request: Request):
    """The citizen's own conversation (created with its cookie on the first visit)."""
    cid, issued = conversation(request, request.args.get("cid"))
    if cid is None:
        return response.json({"error": NOT_YOURS}, status=403)
    return with_cookie(request, response.json({"cid": cid, **(await request.app.ctx.chat.state(cid))}), cid, issued)


async def chat_message(request: Request):
    """HTTP fallback of the WebSocket: send one line, get the conversation's new lines back."""
    chat = request.app.ctx.chat
    body = json_body(request)
    cid, issued = conversation(request, body.get("cid"))
    if cid is None:
        return response.json({"error": NOT_YOURS}, status=403)
    try:
        before = await chat.state(cid)
        last = before["messages"][-1]["id"] if before["messages"] else 0
        await chat.citizen_message(cid, body.get("text"), body.get("display"), source=client_source(request),
                                   client_id=body.get("client_id"))
        after = await chat.state(cid)
    except ChatError as exc:
        return with_cookie(request, response.json({"error": str(exc)}, status=400), cid, issued)
    except (ChatBusy, SQLAlchemyError):  # nothing lost: send the same line (and client_id) again
        return with_cookie(request, response.json({"error": BUSY_TEXT, "retry": True}, status=503,
                                                  headers={"Retry-After": "2"}), cid, issued)
    return with_cookie(request, response.json({"cid": cid, "mode": after["mode"],
                                               "messages": [m for m in after["messages"] if m["id"] > last]}), cid, issued)


def register(app: Sanic) -> None:
    """Add the routes to the web app."""
    app.add_route(chat_state, "/api/chat/state", methods=["GET"])
    app.add_route(chat_message, "/api/chat/message", methods=["POST"])
