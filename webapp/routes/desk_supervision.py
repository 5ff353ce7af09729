"""The supervisor's routes: /desk/api/stats (queues, waiting, work orders, ratings), /desk/api/audit,
/desk/api/alerts (hot-issue alerts) and /desk/api/reports (the monthly reports to open and download)."""
from __future__ import annotations

import asyncio

from sanic import Request, Sanic, response

from webapp.routes.guards import require_supervisor
from webapp.stats import desk_stats
from webapp.supervision import REPORT_TYPES, BadReportName

# a report is our own page, but it is opened from the desk's origin: no scripts, nothing fetched, no cache
REPORT_HEADERS = {"Content-Security-Policy": "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'",
                  "X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store"}


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


async def alerts(request: Request):
    """Hot-issue alerts from the analytics store, newest first (?open=1: only those still open)."""
    _, err = await require_supervisor(request)
    if err:
        return err
    open_only = request.args.get("open", "") in ("1", "true")
    return response.json({"alerts": await asyncio.to_thread(request.app.ctx.supervision.alerts, open_only)})


async def reports(request: Request):
    """The months with a monthly report and the formats written for each."""
    _, err = await require_supervisor(request)
    if err:
        return err
    return response.json({"reports": await asyncio.to_thread(request.app.ctx.supervision.reports)})


async def report_file(request: Request, name: str):
    """One report, YYYY-MM.html (opened in the browser), .pdf or .xlsx (downloaded)."""
    _, err = await require_supervisor(request)
    if err:
        return err
    try:
        found = await asyncio.to_thread(request.app.ctx.supervision.report_file, name)
    except BadReportName:
        return response.json({"error": "报告名称应为 年-月.html、.pdf 或 .xlsx，例如 2026-10.pdf"}, status=400)
    if found is None:
        return response.json({"error": "该月报告尚未生成"}, status=404)
    path, fmt = found
    return await response.file(path, mime_type=REPORT_TYPES[fmt], headers=dict(REPORT_HEADERS),
                               filename=None if fmt == "html" else path.name)


def register(app: Sanic) -> None:
    """Add the routes to the web app."""
    app.add_route(stats, "/desk/api/stats", methods=["GET"])
    app.add_route(audit_log, "/desk/api/audit", methods=["GET"])
    app.add_route(alerts, "/desk/api/alerts", methods=["GET"])
    app.add_route(reports, "/desk/api/reports", methods=["GET"])
    app.add_route(report_file, "/desk/api/reports/<name>", methods=["GET"])
