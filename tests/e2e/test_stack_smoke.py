"""Smoke test of the real stack: Rasa server, action server and web app exchange messages over HTTP."""
from __future__ import annotations

import re

import httpx
import pytest

from tests.e2e.conftest import browser, chat, conversation_id

pytestmark = pytest.mark.stack
CHINESE = re.compile(r"[\u4e00-\u9fff]")


def test_every_service_is_healthy(stack):
    assert httpx.get(stack["webapp"] + "/health").json()["rasa"] == "ok"
    status = httpx.get(stack["rasa"] + "/status", params={"token": stack["rasa_token"]}).json()
    assert status["model_file"]


def test_greeting_gets_a_chinese_reply(stack, cid):
    lines = chat(stack, cid, "你好")
    bot = [m for m in lines if m["role"] == "bot"]
    assert bot and CHINESE.search(bot[0]["text"])


def test_rest_channel_answers_the_holder_of_the_channel_token(stack, cid):
    r = httpx.post(stack["rasa"] + "/webhooks/rest/webhook", json={"sender": cid, "message": "你好"},
                   headers={"X-Channel-Token": stack["channel_token"]}, timeout=60)
    assert r.status_code == 200 and CHINESE.search(r.json()[0]["text"])


@pytest.mark.parametrize("channel", ["rest", "web", "phone"])
@pytest.mark.parametrize("token", [None, "", "dev-channel-tokeN", "wrong"])
def test_no_rasa_channel_takes_a_message_without_the_channel_token(stack, cid, channel, token):
    headers = {} if token is None else {"X-Channel-Token": token}
    r = httpx.post(f"{stack['rasa']}/webhooks/{channel}/webhook", json={"sender": cid, "message": "转人工"},
                   headers=headers, timeout=60)
    assert r.status_code == 401
    tracker = httpx.get(f"{stack['rasa']}/conversations/{cid}/tracker", params={"token": stack["rasa_token"]}).json()
    assert [e for e in tracker["events"] if e["event"] == "user"] == []


def test_rasa_socketio_channel_is_not_open(stack):
    r = httpx.get(stack["rasa"] + "/socket.io/", params={"EIO": "4", "transport": "polling"}, timeout=10)
    assert r.status_code == 404


def test_phone_channel_records_input_channel_phone(stack, cid):
    r = httpx.post(stack["rasa"] + "/webhooks/phone/webhook", json={"sender": cid, "message": "你好"},
                   headers={"X-Channel-Token": stack["channel_token"]}, timeout=60)
    assert r.status_code == 200 and r.json()
    tracker = httpx.get(f"{stack['rasa']}/conversations/{cid}/tracker", params={"token": stack["rasa_token"]}).json()
    assert [e["input_channel"] for e in tracker["events"] if e["event"] == "user"] == ["phone"]


def test_knowledge_question_is_answered_with_entry_id(stack, cid):
    bot = [m for m in chat(stack, cid, "社保卡丢了咋办") if m["role"] == "bot"]
    kb = bot[0]["payload"]["custom"]["kb"]
    assert kb["id"].startswith("card-") and "挂失" in bot[0]["text"]


def test_weather_is_not_answered_from_the_knowledge_base(stack, cid):
    bot = [m for m in chat(stack, cid, "明天天气怎么样") if m["role"] == "bot"]
    custom = bot[0]["payload"].get("custom") or {}
    assert "id" not in custom.get("kb", {})


def test_gibberish_does_not_crash_and_gets_an_answer(stack, cid):
    bot = [m for m in chat(stack, cid, "的了是我不 asdkjh ？？？") if m["role"] in ("bot", "system")]
    assert bot and CHINESE.search(bot[0]["text"])


def test_personal_data_never_reaches_the_databases(stack, cid):
    import os
    import sqlite3

    raw_id, raw_phone = "370102199003071238", "13912345678"
    chat(stack, cid, f"我叫张伟 身份证号{raw_id} 电话{raw_phone}")
    conversation = conversation_id(stack, cid)
    for var in ("TRACKER_STORE_URL", "WEBAPP_DATABASE_URL"):
        url = os.environ.get(var, "")
        if not url.startswith("sqlite:///"):
            pytest.fail(f"{var} must point at the test stack's SQLite file")
        con = sqlite3.connect(url.removeprefix("sqlite:///"))
        dump = "\n".join(con.iterdump())
        con.close()
        assert conversation in dump, f"{var}: the conversation was not stored"
        assert raw_id not in dump and raw_phone not in dump, f"{var} holds raw personal data"


BUSINESS = {"ask_question", "report_card_loss", "query_card_progress", "request_human", "complain", "inform"}


@pytest.mark.parametrize("text", ["zxcvbnm", "哈哈哈哈嗝", "？？？！！", "qwe rty uio", "的的的的的", "lorem ipsum dolor sit",
                                  "🙂🙂🙂", "今天股市大涨了", "帮我订一张去北京的高铁票", "你们食堂几点开饭"])
def test_gibberish_and_off_topic_are_not_confident_business_intents(stack, text):
    r = httpx.post(stack["rasa"] + "/model/parse", params={"token": stack["rasa_token"]}, json={"text": text}, timeout=30)
    intent = r.json()["intent"]
    # the FallbackClassifier turns anything under its threshold into nlu_fallback (then: "not in the knowledge base")
    assert intent["name"] not in BUSINESS, intent


async def test_the_chat_websocket_serves_only_the_conversation_of_its_cookie(stack, cid):
    import json

    import websockets

    chat(stack, cid, "你好")
    client, conversation = browser(stack, cid)
    ws_url = stack["webapp"].replace("http", "ws", 1) + "/ws/chat"
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    # the citizen's own browser: the transcript
    async with websockets.connect(ws_url, additional_headers={"Cookie": cookie}) as ws:
        first = json.loads(await ws.recv())
    assert first["type"] == "state" and [m["text"] for m in first["messages"]][:1] == ["你好"]
    # someone who knows (or guessed) the conversation id but has not the cookie: nothing
    for headers in ({}, {"Cookie": f"chat_session={conversation}.{'0' * 40}"}):
        async with websockets.connect(f"{ws_url}?cid={conversation}", additional_headers=headers) as ws:
            reply = json.loads(await ws.recv())
        assert reply["type"] == "error" and reply.get("code") == "session" and "messages" not in reply
