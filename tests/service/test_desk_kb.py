"""The desk's knowledge editor over HTTP, in-process, on SQLite and PostgreSQL (docs/knowledge_desk.md).

Access control (citizens nothing, agents propose, supervisors publish), the whole life of a change, a
stale edit refused with the current revision, validation on save, YAML export and import, the agents'
answer search following a publication, and every change in the audit log.
"""
from __future__ import annotations

import asyncio

import pytest
import yaml

from knowledge import editorial
from tests.service.test_desk import login
from webapp.app import create_app
from webapp.settings import Settings

ENTRY = "ecard-0001"


@pytest.fixture()
def kb_app(database_url, tmp_path):
    from sqlalchemy import create_engine
    engine = create_engine(database_url)
    editorial.EditorialBase.metadata.drop_all(engine)  # an empty database on PostgreSQL too
    engine.dispose()
    return create_app(Settings(database_url=database_url), name=f"kb{abs(hash(tmp_path)) % 10**8}")


async def get(app, path, cookie=None):
    _, r = await app.asgi_client.get(path, headers=cookie or {})
    return r


async def post(app, path, cookie=None, body=None, **kw):
    _, r = await app.asgi_client.post(path, headers=cookie or {}, json=body, **kw)
    return r


ROUTES = [("get", "/desk/api/kb/entries"), ("get", f"/desk/api/kb/entries/{ENTRY}"), ("post", "/desk/api/kb/check"),
          ("post", "/desk/api/kb/entries"), ("post", f"/desk/api/kb/entries/{ENTRY}/revisions"),
          ("post", "/desk/api/kb/revisions/1/review"), ("post", "/desk/api/kb/revisions/1/publish"),
          ("post", "/desk/api/kb/revisions/1/reject"), ("post", "/desk/api/kb/revisions/1/withdraw"),
          ("post", f"/desk/api/kb/entries/{ENTRY}/retire"), ("post", f"/desk/api/kb/entries/{ENTRY}/restore"),
          ("get", "/desk/api/kb/diff?from=1&to=2"), ("get", "/desk/api/kb/queue"), ("get", "/desk/api/kb/export"),
          ("post", "/desk/api/kb/import"), ("get", "/desk/api/kb/search?q=挂失")]


async def test_citizens_reach_nothing_and_agents_cannot_publish(kb_app):
    app = kb_app
    for method, path in ROUTES:  # no login: nothing, not even reading
        _, r = await getattr(app.asgi_client, method)(path)
        assert r.status == 401, (method, path)
    agent = await login(app, "agent1", "agent1-demo")
    data = (await get(app, f"/desk/api/kb/entries/{ENTRY}", agent)).json["published"]
    r = await post(app, f"/desk/api/kb/entries/{ENTRY}/revisions", agent,
                   {"base": 1, "data": {**data, "answer": data["answer"] + "（坐席建议补充）"}, "note": "补充"})
    assert r.status == 201 and r.json["revision"]["state"] == "draft"
    rev = r.json["revision"]["rev"]
    for action in ("review", "publish", "reject"):
        assert (await post(app, f"/desk/api/kb/revisions/{rev}/{action}", agent)).status == 403
    assert (await post(app, f"/desk/api/kb/entries/{ENTRY}/retire", agent)).status == 403
    assert (await get(app, "/desk/api/kb/export", agent)).status == 403
    assert (await post(app, "/desk/api/kb/import", agent, data="area: ecard\nentries: []\n")).status == 403
    entry = (await get(app, f"/desk/api/kb/entries/{ENTRY}", agent)).json
    assert entry["published"]["answer"] == data["answer"] and entry["entry"]["state"] == "pending"
    queue = (await get(app, "/desk/api/kb/queue", agent)).json
    assert [(q["rev"], q["author"]) for q in queue["review"]] == [(rev, "agent1")]


async def test_a_supervisor_edits_reviews_and_publishes_and_the_search_follows(kb_app):
    app = kb_app
    sup = await login(app, "supervisor", "supervisor-demo")
    listing = (await get(app, "/desk/api/kb/entries?q=电子社保卡", sup)).json
    assert ENTRY in [e["id"] for e in listing["entries"]] and listing["categories"]
    entry = (await get(app, f"/desk/api/kb/entries/{ENTRY}", sup)).json
    head = entry["entry"]["head"]
    marker = "（本条已由值班长于桌面更新：可在爱山东APP申领）"
    r = await post(app, f"/desk/api/kb/entries/{ENTRY}/revisions", sup,
                   {"base": head, "data": {**entry["published"], "answer": entry["published"]["answer"] + marker}})
    assert r.status == 201
    rev = r.json["revision"]["rev"]
    assert (await post(app, f"/desk/api/kb/revisions/{rev}/publish", sup)).status == 409  # review first
    assert (await post(app, f"/desk/api/kb/revisions/{rev}/review", sup)).json["state"] == "reviewed"
    out = (await post(app, f"/desk/api/kb/revisions/{rev}/publish", sup)).json
    assert out["state"] == "published" and out["published_by"] == "supervisor"
    after = (await get(app, f"/desk/api/kb/entries/{ENTRY}", sup)).json
    assert after["published"]["answer"].endswith(marker)
    assert [r["state"] for r in after["revisions"][:2]] == ["published", "superseded"]
    hits = (await get(app, "/desk/api/kb/search?q=电子社保卡是什么", sup)).json["results"]
    assert hits[0]["id"] == ENTRY and hits[0]["answer"].endswith(marker)
    diff = (await get(app, f"/desk/api/kb/diff?from={after['revisions'][1]['rev']}&to={rev}", sup)).json
    assert diff["fields"][0]["field"] == "answer" and ["insert", marker] in diff["fields"][0]["ops"]
    _, audit = await app.asgi_client.get("/desk/api/audit", headers=sup)
    assert [(e["action"], e["target"]) for e in audit.json["events"]][:3] == [
        ("kb_publish", ENTRY), ("kb_review", ENTRY), ("kb_propose", ENTRY)]


async def test_two_editors_of_one_entry_do_not_overwrite_each_other(kb_app):
    app = kb_app
    a = await login(app, "agent1", "agent1-demo")
    b = await login(app, "agent2", "agent2-demo")
    entry = (await get(app, f"/desk/api/kb/entries/{ENTRY}", a)).json
    head, data = entry["entry"]["head"], entry["published"]
    results = await asyncio.gather(*(post(app, f"/desk/api/kb/entries/{ENTRY}/revisions", who,
                                          {"base": head, "data": {**data, "answer": f"{name}的修改。"}})
                                     for who, name in ((a, "甲"), (b, "乙"))))
    statuses = sorted(r.status for r in results)
    assert statuses == [201, 409]
    loser = next(r for r in results if r.status == 409)
    assert "已被他人修改" in loser.json["error"] and loser.json["current"]["number"] == head + 1
    revisions = (await get(app, f"/desk/api/kb/entries/{ENTRY}", a)).json["revisions"]
    assert len([r for r in revisions if r["state"] == "draft"]) == 1


async def test_invalid_content_and_duplicates_are_refused_with_reasons(kb_app):
    app = kb_app
    sup = await login(app, "supervisor", "supervisor-demo")
    data = (await get(app, f"/desk/api/kb/entries/{ENTRY}", sup)).json["published"]
    r = await post(app, f"/desk/api/kb/entries/{ENTRY}/revisions", sup,
                   {"base": 1, "data": {**data, "voice_answer": "长" * 90}})
    assert r.status == 422 and any("80" in e for e in r.json["errors"])
    r = await post(app, "/desk/api/kb/entries", sup, {"area": "ecard", "data": {**data, "paraphrases": ["一", "二", "三",
                                                                                                       "四", "五"]}})
    assert r.status == 422 and r.json["duplicates"][0]["id"] == ENTRY
    r = await post(app, "/desk/api/kb/check", sup, {"data": {**data, "question": "电子社保卡是什么东西？"}})
    assert r.status == 200 and r.json["errors"] and r.json["duplicates"][0]["id"] == ENTRY
    assert (await post(app, f"/desk/api/kb/entries/{ENTRY}/revisions", sup, {"base": "x", "data": data})).status == 400
    assert (await get(app, "/desk/api/kb/entries/not-an-id", sup)).status == 404
    assert (await get(app, "/desk/api/kb/entries/ecard-9999", sup)).status == 404
    assert (await get(app, "/desk/api/kb/entries/ecard-0001", sup)).json["entry"]["head"] == 1  # nothing was saved


async def test_export_then_import_round_trips_and_publishes(kb_app):
    app = kb_app
    sup = await login(app, "supervisor", "supervisor-demo")
    r = await get(app, "/desk/api/kb/export?area=ecard", sup)
    assert r.status == 200 and "attachment" in r.headers["content-disposition"]
    doc = yaml.safe_load(r.text)
    assert doc["area"] == "ecard" and doc["entries"][0]["id"] == ENTRY
    doc["entries"][0]["answer"] = "导入后的答复：电子社保卡可在多个渠道申领。"
    body = yaml.safe_dump(doc, allow_unicode=True).encode()
    r = await post(app, "/desk/api/kb/import?publish=1", sup, data=body, body=None)
    assert r.status == 200 and r.json["changed"] == [ENTRY] and r.json["errors"] == []
    assert (await get(app, f"/desk/api/kb/entries/{ENTRY}", sup)).json["published"]["answer"].startswith("导入后的答复")
    r = await post(app, "/desk/api/kb/import", sup, data=b"area: ecard\nentries: [oops", body=None)
    assert r.status == 422 and "YAML" in r.json["error"]
    r = await get(app, "/desk/api/kb/export", sup)
    assert r.status == 200 and r.headers["content-type"] == "application/zip" and r.body[:2] == b"PK"


async def test_per_entry_figures_and_the_worst_entries_first(kb_app):
    """Each entry carries its figures (from the analytics store; here a stand-in source of the same shape) and
    sort=worst lists the entries with the most 没帮助 and hand-offs after the answer first."""
    app = kb_app
    figures = {"card-0002": {"answers": 40, "unhelpful": 9, "handoff_after": 6, "unhelpful_rate": 0.225,
                             "handoff_after_rate": 0.15},
               "ecard-0001": {"answers": 120, "unhelpful": 2, "handoff_after": 1, "unhelpful_rate": 0.017,
                              "handoff_after_rate": 0.008}}
    app.ctx.kb_editor._figures_source = lambda days: figures
    sup = await login(app, "supervisor", "supervisor-demo")
    worst = (await get(app, "/desk/api/kb/entries?sort=worst", sup)).json
    assert [e["id"] for e in worst["entries"][:2]] == ["card-0002", "ecard-0001"]
    assert worst["entries"][0]["figures"]["unhelpful"] == 9 and worst["total"] > 500
    assert (await get(app, "/desk/api/kb/entries/card-0002", sup)).json["figures"]["handoff_after"] == 6
    assert (await get(app, "/desk/api/kb/entries?sort=worst&page=2", sup)).json["entries"][0]["figures"] == {}
