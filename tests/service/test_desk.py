"""Agent desk in-process: access control, the hand-off life cycle, work orders, ratings, off-hours messages."""
from __future__ import annotations

import pytest

from webapp.app import create_app
from webapp.auth import COOKIE
from webapp.rasa_client import RasaClient
from webapp.settings import Settings

TOKEN = {"Authorization": "Bearer dev-service-token"}


async def login(app, user, password):
    client = app.asgi_client
    _, r = await client.post("/desk/login", json={"username": user, "password": password})
    assert r.status == 200, r.text
    client.cookies.clear()  # each test request names its agent explicitly
    return {"Cookie": f"{COOKIE}={r.cookies[COOKIE]}"}


async def browser(app) -> tuple[str, dict]:
    """A citizen's browser: the conversation the server chose and its signed cookie."""
    app.asgi_client.cookies.clear()
    _, r = await app.asgi_client.get("/api/chat/state")
    app.asgi_client.cookies.clear()
    return r.json["cid"], {"Cookie": f"chat_session={r.cookies['chat_session']}"}


async def handoff(app, cid, queue="社保卡", reason="市民要求人工", **extra):
    _, r = await app.asgi_client.post("/api/handoff", headers=TOKEN,
                                      json={"conversation_id": cid, "channel": "web", "queue": queue, "reason": reason,
                                            "summary": "身份证370102199003071238 社保卡丢了", "slots": {"phone": "139****5678"}, **extra})
    assert r.status == 200
    return r.json


@pytest.mark.parametrize("path", ["/desk/api/me", "/desk/api/queues", "/desk/api/workorders", "/desk/api/handoffs/1",
                                  "/desk/api/kb/search?q=挂失", "/desk/api/stats"])
async def test_no_desk_api_without_login(app, path):
    _, r = await app.asgi_client.get(path)
    assert r.status == 401


async def test_desk_page_redirects_to_login(app):
    _, r = await app.asgi_client.get("/desk", follow_redirects=False)
    assert r.status in (302, 303) and "/desk/login" in r.headers["location"]


async def test_wrong_password_and_forged_cookie_are_refused(app):
    _, r = await app.asgi_client.post("/desk/login", json={"username": "agent1", "password": "wrong"})
    assert r.status == 401
    _, r = await app.asgi_client.get("/desk/api/me", headers={"Cookie": f"{COOKIE}=eyJ1IjoiYWdlbnQxIn0.deadbeef"})
    assert r.status == 401


async def test_full_handoff_cycle(app):
    cid, citizen = await browser(app)
    info = await handoff(app, cid)
    assert info["position"] == 1 and "社保卡" in info["message"]
    # while queued, the bot stays silent and the line reaches the desk
    _, r = await app.asgi_client.post("/api/chat/message", headers=citizen, json={"text": "有人吗"})
    assert [m["role"] for m in r.json["messages"]] == ["citizen"]
    c = await login(app, "agent1", "agent1-demo")
    _, q = await app.asgi_client.get("/desk/api/queues", headers=c)
    waiting = q.json["queues"]["社保卡"]
    assert [h["conversation_id"] for h in waiting] == [cid]
    assert "370102199003071238" not in waiting[0]["summary"]
    hid = waiting[0]["id"]
    _, r = await app.asgi_client.post(f"/desk/api/handoffs/{hid}/claim", headers=c)
    assert r.status == 200
    _, r = await app.asgi_client.post(f"/desk/api/handoffs/{hid}/reply", headers=c, json={"text": "您好，我是坐席，请讲"})
    assert r.status == 200
    _, s = await app.asgi_client.get("/api/chat/state", headers=citizen)
    assert s.json["messages"][-1]["role"] == "agent" and s.json["handoff"]["status"] == "claimed"
    _, r = await app.asgi_client.post(f"/desk/api/handoffs/{hid}/resolve", headers=c)
    assert r.status == 200
    _, s = await app.asgi_client.get("/api/chat/state", headers=citizen)
    assert s.json["mode"] == "bot" and s.json["awaiting_rating"] is True
    _, r = await app.asgi_client.post("/api/chat/message", headers=citizen, json={"text": '/rate_satisfaction{"rating": "满意", "comment": "很快"}', "display": "满意"})
    assert r.json["messages"][-1]["payload"]["rating"] == "满意"
    # the bot answers again
    _, r = await app.asgi_client.post("/api/chat/message", headers=citizen, json={"text": "电子社保卡怎么领"})
    assert r.json["messages"][-1]["text"].startswith("机器人回答")
    sup = await login(app, "supervisor", "supervisor-demo")
    _, st = await app.asgi_client.get("/desk/api/stats", headers=sup)
    assert st.json["ratings"]["满意"] == 1


async def test_agent_cannot_act_on_another_queue_unless_transferred(app):
    info = await handoff(app, "desk-queue-0002", queue="养老")
    c1 = await login(app, "agent1", "agent1-demo")  # serves 社保卡 and 综合
    _, r = await app.asgi_client.post(f"/desk/api/handoffs/{info['id']}/claim", headers=c1)
    assert r.status == 403
    _, r = await app.asgi_client.get(f"/desk/api/handoffs/{info['id']}", headers=c1)
    assert r.status == 403
    c2 = await login(app, "agent2", "agent2-demo")  # serves 养老
    _, r = await app.asgi_client.post(f"/desk/api/handoffs/{info['id']}/claim", headers=c2)
    assert r.status == 200
    _, r = await app.asgi_client.post(f"/desk/api/handoffs/{info['id']}/reply", headers=c1, json={"text": "插话"})
    assert r.status == 403
    _, r = await app.asgi_client.post(f"/desk/api/handoffs/{info['id']}/transfer", headers=c2, json={"queue": "社保卡"})
    assert r.status == 200
    _, r = await app.asgi_client.post(f"/desk/api/handoffs/{info['id']}/claim", headers=c1)
    assert r.status == 200


async def test_second_claim_is_refused(app):
    info = await handoff(app, "desk-race-0003")
    c1 = await login(app, "agent1", "agent1-demo")
    sup = await login(app, "supervisor", "supervisor-demo")
    _, r = await app.asgi_client.post(f"/desk/api/handoffs/{info['id']}/claim", headers=c1)
    assert r.status == 200
    _, r = await app.asgi_client.post(f"/desk/api/handoffs/{info['id']}/claim", headers=sup)
    assert r.status == 409


async def test_complaints_jump_the_queue(app):
    await handoff(app, "desk-prio-0001")
    info = await handoff(app, "desk-prio-0002", reason="市民投诉/情绪不满")
    assert info["position"] == 1


async def test_work_order_lifecycle(app):
    c = await login(app, "agent1", "agent1-demo")
    _, r = await app.asgi_client.post("/desk/api/workorders", headers=c, json={"category": "社保卡", "title": "制卡失败需回访",
                                                                              "detail": "电话13912345678", "deadline_days": 3})
    assert r.status == 200 and "13912345678" not in r.json["detail"]
    wid = r.json["id"]
    _, r = await app.asgi_client.post(f"/desk/api/workorders/{wid}", headers=c, json={"status": "closed", "resolution": "已回访"})
    assert r.json["status"] == "closed" and r.json["closed_at"]
    _, r = await app.asgi_client.post("/desk/api/workorders", headers=c, json={"title": "", "deadline_days": 3})
    assert r.status == 400


async def test_off_hours_message_becomes_a_work_order(tmp_path, monkeypatch):
    async def fake_send(self, sender, text, metadata=None, channel="web"):
        return [{"text": "bot"}]

    monkeypatch.setattr(RasaClient, "send", fake_send)
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/o.db", desk_hours="00:00-00:01", desk_days="8"), name="offhours")
    cid, citizen = await browser(app)
    info = await handoff(app, cid)
    assert info["status"] == "offhours" and "留言" in info["message"]
    _, r = await app.asgi_client.post("/api/chat/message", headers=citizen, json={"text": "社保卡一直没寄到 请回电"})
    assert "工单" in r.json["messages"][-1]["text"]
    c = await login(app, "agent1", "agent1-demo")
    _, w = await app.asgi_client.get("/desk/api/workorders", headers=c)
    assert w.json["workorders"][0]["category"] == "留言"


async def test_state_survives_a_restart(tmp_path, monkeypatch):
    async def fake_send(self, sender, text, metadata=None, channel="web"):
        return [{"text": "bot"}]

    monkeypatch.setattr(RasaClient, "send", fake_send)
    db = f"sqlite:///{tmp_path}/r.db"
    first = create_app(Settings(database_url=db), name="restart1")
    await handoff(first, "desk-restart-01")
    first.ctx.store.engine.dispose()
    second = create_app(Settings(database_url=db), name="restart2")
    c = await login(second, "agent1", "agent1-demo")
    _, q = await second.asgi_client.get("/desk/api/queues", headers=c)
    assert [h["conversation_id"] for h in q.json["queues"]["社保卡"]] == ["desk-restart-01"]


async def test_a_complaint_sees_the_same_queue_position_live_and_after_a_reload(database_url, tmp_path, monkeypatch):
    """One queue-position rule (webapp/handoffs.queue_position) for the bot's answer, the chat page live and after
    a reload, and the desk's list: a complaint waits ahead of the citizens who came before, everywhere."""
    async def fake_send(self, sender, text, metadata=None, channel="web"):
        return [{"recipient_id": sender, "text": "机器人回答：" + text}]

    monkeypatch.setattr(RasaClient, "send", fake_send)
    app = create_app(Settings(database_url=database_url), name=f"q{abs(hash(tmp_path)) % 10**8}")

    async def live(cid: str, cookie: dict) -> int:
        """The position pushed to the open chat page when the waiting citizen writes."""
        events = app.ctx.hub.subscribe(f"conv:{cid}")
        _, r = await app.asgi_client.post("/api/chat/message", headers=cookie, json={"text": "还要等多久"})
        app.ctx.hub.unsubscribe(f"conv:{cid}", events)
        assert r.status == 200
        pushed = []
        while not events.empty():
            event = events.get_nowait()
            pushed += [event["handoff"]["position"]] if event["type"] == "handoff" else []
        assert pushed, "the waiting citizen was not told their place"
        return pushed[-1]

    async def after_reload(cookie: dict) -> int:
        _, s = await app.asgi_client.get("/api/chat/state", headers=cookie)
        return s.json["handoff"]["position"]

    earlier, earlier_cookie = await browser(app)
    assert (await handoff(app, earlier))["position"] == 1
    assert (await handoff(app, "desk-order-0002"))["position"] == 2
    complaint, complaint_cookie = await browser(app)
    answer = await handoff(app, complaint, reason="市民投诉/情绪不满")
    assert answer["position"] == 1 and "前面还有 0 位" in answer["message"]
    assert await live(complaint, complaint_cookie) == await after_reload(complaint_cookie) == 1
    assert await live(earlier, earlier_cookie) == await after_reload(earlier_cookie) == 2
    agent = await login(app, "agent1", "agent1-demo")
    _, q = await app.asgi_client.get("/desk/api/queues", headers=agent)
    assert [h["conversation_id"] for h in q.json["queues"]["社保卡"]] == [complaint, earlier, "desk-order-0002"]
    app.ctx.store.engine.dispose()
