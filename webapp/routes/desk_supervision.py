"""The supervisor's routes: /desk/api/stats (queues, waiting, work orders, ratings), /desk/api/audit,
/desk/api/alerts (hot-issue alerts), /desk/api/reports (the monthly reports to open and download) and
/desk/api/dashboard* (the 统计看板: figures of a period, the records behind each, CSV; webapp/dashboard.py)."""
from __future__ import annotations

import asyncio
from urllib.parse import unquote

from sanic import Request, Sanic, response

from webapp.dashboard import CSV_MAX_ROWS, BadQuery, days_csv, drill_csv, parse_drill, parse_query
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


def _args(request: Request) -> dict[str, str]:
    """The query string, one value a name (the first)."""
    return {k: v[0] for k, v in request.args.items() if v}


def _csv(body: bytes, name: str):
    """A CSV download (UTF-8 with BOM, so Excel shows the Chinese)."""
    return response.raw(body, content_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "private, no-store",
                                 "X-Content-Type-Options": "nosniff"})


async def _period(request: Request):
    """(dashboard, its query, None) for a supervisor's valid ?from&to&channel, else (None, None, the error reply)."""
    _, err = await require_supervisor(request)
    if err:
        return None, None, err
    board = request.app.ctx.supervision.dashboard
    try:
        return board, parse_query(_args(request), board.today()), None
    except BadQuery as e:
        return None, None, response.json({"error": str(e)}, status=400)


async def dashboard(request: Request):
    """The figures of a period (?from=YYYY-MM-DD&to=YYYY-MM-DD&channel=web|phone), every number from analytics.figures."""
    board, query, err = await _period(request)
    if err:
        return err
    return response.json(await asyncio.to_thread(board.figures, query))


async def dashboard_csv(request: Request):
    """The figures per day of the period, and its total, as CSV."""
    board, query, err = await _period(request)
    if err:
        return err
    data = await asyncio.to_thread(board.figures, query)
    name = f"dashboard_{data['from']}_{data['to']}{'_' + query.channel if query.channel else ''}.csv"
    return _csv(days_csv(data), name)


async def dashboard_sessions(request: Request):
    """The records behind one figure (?figure=…&topic&entry&reason&day&hour&limit&after&offset, &format=csv); a page
    answers `next`, the `after` of the page that follows (null on the last)."""
    _, err = await require_supervisor(request)
    if err:
        return err
    board, args = request.app.ctx.supervision.dashboard, _args(request)
    as_csv = args.get("format") == "csv"
    try:
        query = parse_query(args, board.today())
        if as_csv:  # the whole list, not a page
            args = {**args, "limit": str(CSV_MAX_ROWS), "offset": "0", "after": ""}
        drill = parse_drill(args, query, max_limit=CSV_MAX_ROWS if as_csv else None)
        data = await asyncio.to_thread(board.drill, query, drill)  # BadQuery too: a page key of another list
    except BadQuery as e:
        return response.json({"error": str(e)}, status=400)
    if as_csv:
        return _csv(drill_csv(data), f"dashboard_{drill.figure}_{query.period.start.isoformat()}.csv")
    return response.json(data)


async def dashboard_session(request: Request, sid: str):
    """One session of the analytics store with its masked turns."""
    _, err = await require_supervisor(request)
    if err:
        return err
    found = await asyncio.to_thread(request.app.ctx.supervision.dashboard.session, unquote(sid))
    if found is None:
        return response.json({"error": "没有这个会话"}, status=404)
    return response.json(found)


def register(app: Sanic) -> None:
    """Add the routes to the web app."""
    app.add_route(stats, "/desk/api/stats", methods=["GET"])
    app.add_route(audit_log, "/desk/api/audit", methods=["GET"])
    app.add_route(alerts, "/desk/api/alerts", methods=["GET"])
    app.add_route(reports, "/desk/api/reports", methods=["GET"])
    app.add_route(report_file, "/desk/api/reports/<name>", methods=["GET"])
    app.add_route(dashboard, "/desk/api/dashboard", methods=["GET"])
    app.add_route(dashboard_csv, "/desk/api/dashboard.csv", methods=["GET"])
    app.add_route(dashboard_sessions, "/desk/api/dashboard/sessions", methods=["GET"])
    app.add_route(dashboard_session, "/desk/api/dashboard/session/<sid>", methods=["GET"])
