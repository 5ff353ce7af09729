"""/desk/api/kb/…: the desk's knowledge base — agents search, read and propose; supervisors review and publish.

The contract is docs/knowledge_desk.md; the work is webapp/kb_editor.py over knowledge/editorial.py.
"""
from __future__ import annotations

from typing import Any

from sanic import Request, Sanic, response
from sanic.response import HTTPResponse

from knowledge import editorial
from knowledge.schema import ID_PATTERN
from webapp.kb_editor import KbEditor, analytics_figures
from webapp.routes.guards import json_body, notify_desk, require_agent, require_supervisor
from webapp.store import Agent

STATUS = {"invalid": 422, "conflict": 409, "not_found": 404, "forbidden": 403}
MAX_IMPORT_BYTES = 2 * 1024 * 1024
STATE_FILTERS = ("", "published", "pending", "unpublished", "retired")


def _editor(request: Request) -> KbEditor:
    return request.app.ctx.kb_editor


def failed(exc: editorial.EditorialError) -> HTTPResponse:
    """The answer to a change that did not happen, with its reasons (and the current revision on a conflict)."""
    body: dict[str, Any] = {"error": exc.message}
    for key in ("errors", "duplicates", "current"):
        if key in exc.details:
            body[key] = exc.details[key]
    return response.json(body, status=STATUS.get(exc.kind, 400))


def _entry_id(value: str) -> bool:
    return bool(ID_PATTERN.match(value or ""))


def _version(value: Any) -> bool:
    """A version number as the body gives it (an int, not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10 ** 6


def _text(body: dict[str, Any], key: str, limit: int = 500) -> str:
    return str(body.get(key) or "").strip()[:limit]


async def _audit(request: Request, agent: Agent, action: str, target: Any, detail: str = "") -> None:
    await request.app.ctx.audit.record(agent.username, action, str(target), detail[:200])


async def kb_search(request: Request):
    """The five best published entries for ?q= (the agents insert an answer)."""
    agent, err = await require_agent(request)
    if err:
        return err
    q = (request.args.get("q") or "").strip()[:200]
    if not q:
        return response.json({"results": []})
    hits = await _editor(request).search(q, 5)
    return response.json({"results": [{"id": h.entry.id, "question": h.entry.question, "answer": h.entry.answer,
                                       "local_review": h.entry.local_review, "score": round(h.score, 3)} for h in hits]})


async def list_entries(request: Request):
    """Entries by search text, category, state and the local-review flag, 50 a page."""
    agent, err = await require_agent(request)
    if err:
        return err
    a = request.args
    state = a.get("state") or ""
    if state not in STATE_FILTERS:
        return response.json({"error": "state 只能是 published / pending / unpublished / retired"}, status=400)
    try:
        page = max(1, min(int(a.get("page") or 1), 10 ** 6))
    except ValueError:
        return response.json({"error": "page 应为正整数"}, status=400)
    lr = a.get("local_review")
    local_review = None if lr in (None, "") else lr in ("1", "true")
    return response.json(await _editor(request).listing(
        q=(a.get("q") or "")[:100], category=(a.get("category") or "")[:64], state=state,
        local_review=local_review, page=page, sort="worst" if a.get("sort") == "worst" else ""))


async def get_entry(request: Request, entry_id: str):
    """An entry with its published content, its history and its figures."""
    agent, err = await require_agent(request)
    if err:
        return err
    if not _entry_id(entry_id):
        return response.json({"error": "没有这个条目"}, status=404)
    try:
        return response.json(await _editor(request).detail(entry_id))
    except editorial.EditorialError as exc:
        return failed(exc)


async def check_entry(request: Request):
    """Validation and the nearest entries of a content, without saving."""
    agent, err = await require_agent(request)
    if err:
        return err
    body = json_body(request)
    eid = body.get("id") or None
    if eid is not None and not (isinstance(eid, str) and _entry_id(eid)):
        return response.json({"error": "条目编号无效"}, status=400)
    try:
        data = editorial.clean_data(body.get("data"))
        problems, nearest = await _editor(request).run(editorial.check, data, eid, _text(body, "area", 16) or None)
    except editorial.EditorialError as exc:
        return failed(exc)
    return response.json({"errors": problems, "duplicates": nearest})


async def create_entry(request: Request):
    """A new entry (its first revision is a draft)."""
    agent, err = await require_agent(request)
    if err:
        return err
    body = json_body(request)
    try:
        saved = await _editor(request).run(editorial.create, _text(body, "area", 16), body.get("data"),
                                           agent.username, _text(body, "note"))
    except editorial.EditorialError as exc:
        return failed(exc)
    await _audit(request, agent, "kb_create", saved.revision["entry_id"], _text(body, "note", 100))
    notify_desk(request, "kb_changed", entry_id=saved.revision["entry_id"])
    return response.json({"revision": saved.revision, "entry_id": saved.revision["entry_id"],
                          "duplicates": saved.duplicates}, status=201)


async def propose_revision(request: Request, entry_id: str):
    """A change of an entry, made from revision `base` (refused with 409 if someone saved in between)."""
    agent, err = await require_agent(request)
    if err:
        return err
    body = json_body(request)
    base = body.get("base")
    if not _entry_id(entry_id):
        return response.json({"error": "没有这个条目"}, status=404)
    if not _version(base):
        return response.json({"error": "请说明基于第几版修改（base）"}, status=400)
    try:
        saved = await _editor(request).run(editorial.propose, entry_id, base, body.get("data"), agent.username,
                                           _text(body, "note"))
    except editorial.EditorialError as exc:
        return failed(exc)
    await _audit(request, agent, "kb_propose", entry_id, f"第 {saved.revision['number']} 版")
    notify_desk(request, "kb_changed", entry_id=entry_id)
    return response.json({"revision": saved.revision, "duplicates": saved.duplicates}, status=201)


def _revision_action(action: str, supervisor_only: bool = True):
    async def handler(request: Request, rev: int):
        agent, err = await (require_supervisor(request) if supervisor_only else require_agent(request))
        if err:
            return err
        extra = (_text(json_body(request), "note"),) if action == "reject" else ()
        try:
            out = await _editor(request).run(getattr(editorial, action), rev, agent.username, *extra)
        except editorial.EditorialError as exc:
            return failed(exc)
        await _audit(request, agent, f"kb_{action}", out["entry_id"], f"第 {out['number']} 版")
        notify_desk(request, "kb_changed", entry_id=out["entry_id"])
        return response.json(out)
    handler.__name__ = f"kb_{action}_revision"
    handler.__doc__ = f"{action} a revision"
    return handler


async def retire_entry(request: Request, entry_id: str):
    """Take an entry out of the bot's answers."""
    agent, err = await require_supervisor(request)
    if err:
        return err
    if not _entry_id(entry_id):
        return response.json({"error": "没有这个条目"}, status=404)
    body = json_body(request)
    base = body.get("base")
    if base is not None and not _version(base):
        return response.json({"error": "base 应为版本号"}, status=400)
    try:
        out = await _editor(request).run(editorial.retire, entry_id, agent.username, _text(body, "note"), base=base)
    except editorial.EditorialError as exc:
        return failed(exc)
    await _audit(request, agent, "kb_retire", entry_id)
    notify_desk(request, "kb_changed", entry_id=entry_id)
    return response.json(out)


async def restore_entry(request: Request, entry_id: str):
    """A new revision with an old revision's content (reviewed when a supervisor restores it)."""
    agent, err = await require_agent(request)
    if err:
        return err
    body = json_body(request)
    rev, base = body.get("rev"), body.get("base")
    if base is not None and not _version(base):
        return response.json({"error": "base 应为版本号"}, status=400)
    if not _entry_id(entry_id):
        return response.json({"error": "没有这个条目"}, status=404)
    if not (isinstance(rev, int) and not isinstance(rev, bool) and 0 < rev < 2 ** 63):
        return response.json({"error": "请选择要恢复的版本（rev）"}, status=400)
    try:
        saved = await _editor(request).run(editorial.restore, entry_id, rev, agent.username, _text(body, "note"),
                                           reviewed=agent.role == "supervisor", base=base)
    except editorial.EditorialError as exc:
        return failed(exc)
    await _audit(request, agent, "kb_restore", entry_id, f"第 {saved.revision['number']} 版")
    notify_desk(request, "kb_changed", entry_id=entry_id)
    return response.json({"revision": saved.revision, "duplicates": saved.duplicates}, status=201)


async def diff_revisions(request: Request):
    """Field by field, what changed between two revisions of an entry (?from=&to=)."""
    agent, err = await require_agent(request)
    if err:
        return err
    try:
        a, b = int(request.args.get("from") or 0), int(request.args.get("to") or 0)
    except ValueError:
        a = b = 0
    if not (0 < a < 2 ** 63 and 0 < b < 2 ** 63):
        return response.json({"error": "请给出两个版本号（from, to）"}, status=400)
    try:
        return response.json(await _editor(request).run(editorial.diff, a, b))
    except editorial.EditorialError as exc:
        return failed(exc)


async def review_queue(request: Request):
    """Revisions waiting for a supervisor, and entries waiting for local confirmation."""
    agent, err = await require_agent(request)
    if err:
        return err
    return response.json(await _editor(request).run(editorial.queue))


async def export_content(request: Request):
    """The published content in the repository's YAML format: one area (?area=) or every area zipped."""
    agent, err = await require_supervisor(request)
    if err:
        return err
    area = request.args.get("area") or ""
    try:
        if area:
            text = await _editor(request).run(editorial.export_yaml, area)
            return response.text(text, content_type="text/yaml; charset=utf-8",
                                 headers={"Content-Disposition": f'attachment; filename="{area}.yml"'})
        data = await _editor(request).run(editorial.export_zip)
    except editorial.EditorialError as exc:
        return failed(exc)
    await _audit(request, agent, "kb_export", area or "all")
    return response.raw(data, content_type="application/zip",
                        headers={"Content-Disposition": 'attachment; filename="knowledge-content.zip"'})


async def import_content(request: Request):
    """An area file of the repository's format: changed entries become drafts (published at once with ?publish=1)."""
    agent, err = await require_supervisor(request)
    if err:
        return err
    body = request.body or b""
    if len(body) > MAX_IMPORT_BYTES:
        return response.json({"error": "文件太大（最多 2 MB）"}, status=413)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return response.json({"error": "文件应为 UTF-8 编码的 YAML"}, status=400)
    publish_now = request.args.get("publish") in ("1", "true")
    try:
        summary = await _editor(request).run(editorial.import_yaml, text, agent.username, publish_now)
    except editorial.EditorialError as exc:
        return failed(exc)
    await _audit(request, agent, "kb_import", summary["area"],
                 f"新建 {len(summary['created'])}，修改 {len(summary['changed'])}，错误 {len(summary['errors'])}")
    notify_desk(request, "kb_changed")
    return response.json(summary)


def register(app: Sanic) -> None:
    """Add the routes, and app.ctx.kb_editor: the editorial store in the web app's database."""
    settings = app.ctx.settings
    app.ctx.kb_editor = KbEditor(app.ctx.store, settings.kb_content_dir,
                                 figures=analytics_figures(app.ctx.supervision.dashboard))
    app.add_route(kb_search, "/desk/api/kb/search", methods=["GET"])
    app.add_route(list_entries, "/desk/api/kb/entries", methods=["GET"])
    app.add_route(create_entry, "/desk/api/kb/entries", methods=["POST"], name="kb_create_entry")
    app.add_route(get_entry, "/desk/api/kb/entries/<entry_id:str>", methods=["GET"])
    app.add_route(propose_revision, "/desk/api/kb/entries/<entry_id:str>/revisions", methods=["POST"])
    app.add_route(retire_entry, "/desk/api/kb/entries/<entry_id:str>/retire", methods=["POST"])
    app.add_route(restore_entry, "/desk/api/kb/entries/<entry_id:str>/restore", methods=["POST"])
    app.add_route(check_entry, "/desk/api/kb/check", methods=["POST"])
    for action in ("review", "publish", "reject"):
        app.add_route(_revision_action(action), f"/desk/api/kb/revisions/<rev:int>/{action}", methods=["POST"],
                      name=f"kb_{action}_revision")
    app.add_route(_revision_action("withdraw", supervisor_only=False), "/desk/api/kb/revisions/<rev:int>/withdraw",
                  methods=["POST"], name="kb_withdraw_revision")
    app.add_route(diff_revisions, "/desk/api/kb/diff", methods=["GET"])
    app.add_route(review_queue, "/desk/api/kb/queue", methods=["GET"])
    app.add_route(export_content, "/desk/api/kb/export", methods=["GET"])
    app.add_route(import_content, "/desk/api/kb/import", methods=["POST"])
