"""The citizen's chat page, the API description (/openapi.json) and /health."""
from __future__ import annotations

from pathlib import Path

import yaml
from sanic import Request, Sanic, response

from webapp.store import dumps

WEBAPP = Path(__file__).resolve().parent.parent
STATIC = WEBAPP / "static"


async def chat_page(request: Request):
    """The citizen chat."""
    return await response.file(STATIC / "chat.html", mime_type="text/html; charset=utf-8")


async def openapi_document(request: Request):
    """The description of these HTTP APIs (webapp/openapi.yaml)."""
    return response.json(request.app.ctx.openapi, dumps=dumps)


async def health(request: Request):
    """The web app answers; whether Rasa does."""
    rasa_ok = await request.app.ctx.rasa.healthy()
    return response.json({"status": "ok", "service": "webapp", "rasa": "ok" if rasa_ok else "unreachable"})


def register(app: Sanic) -> None:
    """Add the routes (and the static files) to the web app."""
    app.ctx.openapi = yaml.safe_load((WEBAPP / "openapi.yaml").read_text(encoding="utf-8"))
    app.static("/static", STATIC, name="static")
    app.add_route(chat_page, "/", methods=["GET"])
    app.add_route(openapi_document, "/openapi.json", methods=["GET"])
    app.add_route(health, "/health", methods=["GET"])
