"""GET /desk/api/kb/search: the agents search the knowledge base to insert an answer.

Lexical retrieval only (no model in the web app), loaded on first use.
"""
from __future__ import annotations

import asyncio

from sanic import Request, Sanic, response

from webapp.routes.guards import require_agent


async def kb_search(request: Request):
    """The five best entries for ?q=."""
    agent, err = await require_agent(request)
    if err:
        return err
    q = (request.args.get("q") or "").strip()[:200]
    if not q:
        return response.json({"results": []})
    kb = await request.app.ctx.desk_kb()
    hits = await asyncio.to_thread(kb.search, q, 5)
    return response.json({"results": [{"id": h.entry.id, "question": h.entry.question, "answer": h.entry.answer,
                                       "local_review": h.entry.local_review, "score": round(h.score, 3)} for h in hits]})


def register(app: Sanic) -> None:
    """Add the route, and app.ctx.desk_kb(): the knowledge base, loaded once on first use."""
    lock = asyncio.Lock()

    async def desk_kb():
        async with lock:
            if getattr(app.ctx, "_desk_kb", None) is None:
                from knowledge.retriever import KnowledgeBase
                from knowledge.schema import load_entries

                app.ctx._desk_kb = await asyncio.to_thread(lambda: KnowledgeBase(load_entries()))
            return app.ctx._desk_kb
    app.ctx.desk_kb = desk_kb
    app.add_route(kb_search, "/desk/api/kb/search", methods=["GET"])
