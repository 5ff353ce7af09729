"""The browser softphone: the /phone page and its WebSocket /phone/ws, relayed by webapp/softphone.py."""
from __future__ import annotations

from sanic import Request, Sanic, Websocket, response

from webapp.routes.pages import STATIC


async def phone_page(request: Request):
    """The softphone page: call button, keypad, transcript."""
    return await response.file(STATIC / "phone.html", mime_type="text/html; charset=utf-8")


async def phone_ws(request: Request, ws: Websocket):
    """Page <-> web app <-> voice gateway for one call (same-origin pages only: webapp/app.py WEBSOCKETS)."""
    address = (request.remote_addr or request.ip or "").strip()
    await request.app.ctx.softphone.call(ws, address)


def register(app: Sanic) -> None:
    """Add the routes to the web app (its softphone must be on app.ctx)."""
    app.add_route(phone_page, "/phone", methods=["GET"])
    app.add_websocket_route(phone_ws, "/phone/ws")
