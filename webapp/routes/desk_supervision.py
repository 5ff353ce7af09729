"""The supervisor's routes: /desk/api/stats (queues, waiting, work orders, ratings) and /desk/api/audit."""
from __future__ import annotations

from sanic import Request, Sanic, response

from webapp.routes.guards import require_supervisor
from webapp.stats import desk_stats


async def stats(request: Request):
    """The figures at this moment."""
    _, err = await require_supervisor(request)
    if err:
        return err
    return response.json(await request.app.ctx.store.run(desk_stats))


async def audit_log(request: Request):
    """The latest desk actions (supervisors): who opened, claimed or changed what, and when."""
    _, err = await require_supervisor(request)
    if err:
        return err
    return response.json({"events": await request.app.ctx.audit.latest(request.args.get("agent"))})


def register(app: Sanic) -> None:
    """Add the routes to the web app."""
    app.add_route(stats, "/desk/api/stats", methods=["GET"])
    app.add_route(audit_log, "/desk/api/audit", methods=["GET"])
