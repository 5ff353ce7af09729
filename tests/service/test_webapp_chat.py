"""The web app's chat API in-process: transcript, bad input, Rasa down, hand-off API access."""
from __future__ import annotations

import pytest

from webapp.app import create_app
from webapp.rasa_client import RasaClient, RasaUnavailable
from webapp.settings import Settings


async def browser(app) -> tuple[str, dict]:
    """A citizen's browser on its first visit: the conversation id and the signed cookie the server set."""
    app.asgi_client.cookies.clear()
    _, r = await app.asgi_client.get("/api/chat/state")
    assert r.status == 200
    app.asgi_client.cookies.clear()  # each request names its browser explicitly
    return r.json["cid"], {"cookie": f"chat_session={r.cookies['chat_session']}"}


@pytest.fixture()
def app(tmp_path, monkeypatch):
    replies: list = []

    async def fake_send(self, sender, text, metadata=None, channel="web"):
        if replies and replies[0] == "down":
            raise RasaUnavailable("connection refused")
        return replies.pop(0) if replies else [{"recipient_id": sender, "text": "您好！"}]

    monkeypatch.setattr(RasaClient, "send", fake_send)
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/w.db", rasa_url="http://127.0.0.1:9"),
                     name=f"t{abs(hash(tmp_path)) % 10**8}")
    app.ctx.replies = replies
    return app


async def test_message_is_answered_and_kept_in_the_transcript(app):
    cid, cookie = await browser(app)
    _, r = await app.asgi_client.post("/api/chat/message", headers=cookie, json={"text": "你好"})
    assert r.status == 200 and r.json["cid"] == cid
    assert [m["role"] for m in r.json["messages"]] == ["citizen", "bot"]
    _, s = await app.asgi_client.get("/api/chat/state", headers=cookie)
    assert [m["text"] for m in s.json["messages"]] == ["你好", "您好！"]


async def test_the_server_chooses_the_conversation_and_signs_it_in_an_httponly_cookie(app):
    _, first = await app.asgi_client.get("/api/chat/state?cid=chosen-by-the-client-0001")
    app.asgi_client.cookies.clear()
    _, second = await app.asgi_client.get("/api/chat/state")
    assert first.json["cid"] != "chosen-by-the-client-0001" and first.json["cid"] != second.json["cid"]
    assert len(first.json["cid"]) >= 32
    header = first.headers["set-cookie"].lower()
    assert "httponly" in header and "samesite=lax" in header


async def test_another_citizens_conversation_cannot_be_read_or_written(app):
    victim, victim_cookie = await browser(app)
    await app.asgi_client.post("/api/chat/message", headers=victim_cookie, json={"text": "我叫张三 电话13812345678"})
    _, attacker_cookie = await browser(app)
    # naming the victim's conversation with one's own cookie is refused
    _, r = await app.asgi_client.get(f"/api/chat/state?cid={victim}", headers=attacker_cookie)
    assert r.status == 403 and "messages" not in r.json
    _, r = await app.asgi_client.post("/api/chat/message", headers=attacker_cookie, json={"cid": victim, "text": "转人工"})
    assert r.status == 403
    # without a cookie, or with a forged one, the claimed id is ignored: a new, empty conversation
    for headers in ({}, {"cookie": f"chat_session={victim}.{'0' * 40}"}):
        app.asgi_client.cookies.clear()
        _, r = await app.asgi_client.get(f"/api/chat/state?cid={victim}", headers=headers)
        assert r.status == 200 and r.json["cid"] != victim and r.json["messages"] == []
    _, s = await app.asgi_client.get("/api/chat/state", headers=victim_cookie)
    assert [m["role"] for m in s.json["messages"]] == ["citizen", "bot"]


async def test_personal_data_is_masked_in_the_transcript(app):
    _, cookie = await browser(app)
    await app.asgi_client.post("/api/chat/message", headers=cookie, json={"text": "我的身份证号370102199003071234"})
    _, s = await app.asgi_client.get("/api/chat/state", headers=cookie)
    assert "370102199003071234" not in s.json["messages"][0]["text"]


async def test_buttons_and_custom_payload_reach_the_page(app):
    app.ctx.replies.append([{"text": "答案", "buttons": [{"title": "有帮助", "payload": "/feedback_helpful"}],
                             "custom": {"kb": {"id": "card-0001", "score": 0.97}}}])
    _, cookie = await browser(app)
    _, r = await app.asgi_client.post("/api/chat/message", headers=cookie, json={"text": "社保卡丢了"})
    bot = r.json["messages"][-1]
    assert bot["payload"]["buttons"][0]["title"] == "有帮助"
    assert bot["payload"]["custom"]["kb"]["id"] == "card-0001"


@pytest.mark.parametrize("text,status", [("", 400), ("   ", 400), ("长" * 501, 400), (None, 400), (123, 400)])
async def test_bad_messages_get_a_clear_error(app, text, status):
    _, cookie = await browser(app)
    _, r = await app.asgi_client.post("/api/chat/message", headers=cookie, json={"text": text})
    assert r.status == status and r.json["error"]


async def test_a_conversation_id_in_the_request_other_than_the_cookies_is_refused(app):
    _, cookie = await browser(app)
    _, r = await app.asgi_client.post("/api/chat/message", headers=cookie, json={"cid": "../../etc", "text": "你好"})
    assert r.status == 403


async def test_rasa_down_gives_a_clear_message_and_keeps_the_citizen_line(app):
    app.ctx.replies.append("down")
    _, cookie = await browser(app)
    _, r = await app.asgi_client.post("/api/chat/message", headers=cookie, json={"text": "社保卡怎么办"})
    roles = [m["role"] for m in r.json["messages"]]
    assert roles == ["citizen", "system"]
    assert "暂时无法连接" in r.json["messages"][1]["text"]


async def test_health(app):
    _, r = await app.asgi_client.get("/health")
    assert r.json["status"] == "ok" and r.json["rasa"] == "unreachable"


async def test_handoff_api_needs_the_service_token(app):
    _, r = await app.asgi_client.post("/api/handoff", json={"conversation_id": "c" + "x" * 31})
    assert r.status == 401


async def test_chat_page_is_served(app):
    _, r = await app.asgi_client.get("/")
    assert r.status == 200 and "济南社保智能客服" in r.text
