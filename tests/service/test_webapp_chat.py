"""The web app's chat API in-process: transcript, bad input, Rasa down, hand-off API access."""
from __future__ import annotations

import pytest

from webapp.app import create_app
from webapp.rasa_client import RasaClient, RasaUnavailable
from webapp.settings import Settings

CID = "test-conversation-0001"


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
    _, r = await app.asgi_client.post("/api/chat/message", json={"cid": CID, "text": "你好"})
    assert r.status == 200
    assert [m["role"] for m in r.json["messages"]] == ["citizen", "bot"]
    _, s = await app.asgi_client.get(f"/api/chat/state?cid={CID}")
    assert [m["text"] for m in s.json["messages"]] == ["你好", "您好！"]


async def test_personal_data_is_masked_in_the_transcript(app):
    await app.asgi_client.post("/api/chat/message", json={"cid": CID, "text": "我的身份证号370102199003071234"})
    _, s = await app.asgi_client.get(f"/api/chat/state?cid={CID}")
    assert "370102199003071234" not in s.json["messages"][0]["text"]


async def test_buttons_and_custom_payload_reach_the_page(app):
    app.ctx.replies.append([{"text": "答案", "buttons": [{"title": "有帮助", "payload": "/feedback_helpful"}],
                             "custom": {"kb": {"id": "card-0001", "score": 0.97}}}])
    _, r = await app.asgi_client.post("/api/chat/message", json={"cid": CID, "text": "社保卡丢了"})
    bot = r.json["messages"][-1]
    assert bot["payload"]["buttons"][0]["title"] == "有帮助"
    assert bot["payload"]["custom"]["kb"]["id"] == "card-0001"


@pytest.mark.parametrize("text,status", [("", 400), ("   ", 400), ("长" * 501, 400), (None, 400), (123, 400)])
async def test_bad_messages_get_a_clear_error(app, text, status):
    _, r = await app.asgi_client.post("/api/chat/message", json={"cid": CID, "text": text})
    assert r.status == status and r.json["error"]


async def test_invalid_conversation_id_is_refused(app):
    _, r = await app.asgi_client.post("/api/chat/message", json={"cid": "../../etc", "text": "你好"})
    assert r.status == 400


async def test_rasa_down_gives_a_clear_message_and_keeps_the_citizen_line(app):
    app.ctx.replies.append("down")
    _, r = await app.asgi_client.post("/api/chat/message", json={"cid": CID, "text": "社保卡怎么办"})
    roles = [m["role"] for m in r.json["messages"]]
    assert roles == ["citizen", "system"]
    assert "暂时无法连接" in r.json["messages"][1]["text"]


async def test_health(app):
    _, r = await app.asgi_client.get("/health")
    assert r.json["status"] == "ok" and r.json["rasa"] == "unreachable"


async def test_handoff_api_needs_the_service_token(app):
    _, r = await app.asgi_client.post("/api/handoff", json={"conversation_id": CID})
    assert r.status == 401


async def test_chat_page_is_served(app):
    _, r = await app.asgi_client.get("/")
    assert r.status == 200 and "济南社保智能客服" in r.text
