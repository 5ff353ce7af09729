"""The action server answers only Rasa (X-Action-Token) and never echoes a tracker in its errors."""
from __future__ import annotations

import pytest
from sanic import Sanic

from actions.server import create_app

TOKEN = "test-action-token-0123456789"


@pytest.fixture(scope="module")
def app():
    Sanic.test_mode = True
    return create_app(TOKEN)


def call(action: str, text: str = "你好") -> dict:
    return {"next_action": action, "sender_id": "c-forged", "version": "3.6.21",
            "tracker": {"sender_id": "c-forged", "slots": {}, "events": [], "latest_action_name": "action_listen",
                        "latest_message": {"text": text, "intent": {"name": "request_human"}, "entities": []}},
            "domain": {}}


@pytest.mark.parametrize("headers", [{}, {"X-Action-Token": ""}, {"X-Action-Token": "wrong"},
                                     {"X-Action-Token": TOKEN + "x"}, {"Authorization": f"Bearer {TOKEN}"}])
async def test_forged_action_calls_are_refused(app, headers):
    _, r = await app.asgi_client.post("/webhook", json=call("action_handoff"), headers=headers)
    assert r.status == 401
    _, r = await app.asgi_client.get("/actions", headers=headers)
    assert r.status == 401


async def test_rasa_with_the_token_is_served_and_health_is_open(app):
    _, r = await app.asgi_client.get("/actions", headers={"X-Action-Token": TOKEN})
    assert r.status == 200 and any(a["name"] == "action_session_start" for a in r.json)
    _, r = await app.asgi_client.get("/health")
    assert r.status == 200


async def test_an_error_reply_does_not_echo_the_citizens_words(app):
    body = call("action_verify_identity")
    body["tracker"]["latest_message"] = "我的身份证370102199003071238"  # not a mapping: the action fails
    _, r = await app.asgi_client.post("/webhook", json=body, headers={"X-Action-Token": TOKEN})
    assert r.status >= 400
    assert "370102" not in r.text and "request_body" not in r.text
