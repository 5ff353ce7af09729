"""When the bot cannot act, the chat keeps its promises (docs/reliability.md, "When a part of the bot is down"):
"转人工" reaches a person even with the action server or Rasa down, and a line sent while Rasa was down is
answered, in order, as soon as Rasa is back. The real web app in-process; Rasa's answers are scripted."""
from __future__ import annotations

import secrets

import pytest
from sqlalchemy import select

from tests.service.test_desk import browser, login
from webapp.app import create_app
from webapp.chat import Unanswered
from webapp.rasa_client import RasaClient, RasaUnavailable
from webapp.settings import Settings
from webapp.store import Handoff, Message

ID_NUMBER = "370102199003071234"


class FakeRasa:
    """Rasa as the web app meets it: up or down, with what it received."""

    def __init__(self) -> None:
        self.down = False
        self.received: list[str] = []
        self.answer = lambda text: [{"text": "机器人回答：" + text}]

    async def send(self, sender, text, metadata=None, channel="web"):
        if self.down:
            raise RasaUnavailable("connection refused")
        self.received.append(text)
        return self.answer(text)

    async def healthy(self) -> bool:
        return not self.down


@pytest.fixture()
def app(database_url, monkeypatch):
    rasa = FakeRasa()
    monkeypatch.setattr(RasaClient, "send", lambda self, *a, **k: rasa.send(*a, **k))
    monkeypatch.setattr(RasaClient, "healthy", lambda self: rasa.healthy())
    app = create_app(Settings(database_url=database_url), name=f"t{secrets.token_hex(4)}")
    app.ctx.rasa_double = rasa
    return app


async def say(app, citizen: dict, text: str) -> list[dict]:
    _, r = await app.asgi_client.post("/api/chat/message", headers=citizen, json={"text": text})
    assert r.status == 200, r.text
    return r.json["messages"]


def handoffs_of(app, cid: str) -> list[Handoff]:
    return app.ctx.store.call(lambda s: list(s.scalars(select(Handoff).where(Handoff.conversation_id == cid))))


def transcript(app, cid: str) -> list[tuple[str, str]]:
    return app.ctx.store.call(lambda s: [(m.role, m.text) for m in s.scalars(
        select(Message).where(Message.conversation_id == cid).order_by(Message.id))])


async def test_with_the_action_server_down_a_request_for_a_person_still_reaches_the_desk(app):
    # the action server is down: Rasa runs its hand-off action, fails, and answers nothing
    app.ctx.rasa_double.answer = lambda text: []
    cid, citizen = await browser(app)
    lines = await say(app, citizen, "转人工")
    bot = lines[-1]
    assert bot["role"] == "bot" and "正在为您转接" in bot["text"]
    assert bot["payload"]["custom"]["handoff"]["status"] == "queued"
    [h] = handoffs_of(app, cid)
    assert h.status == "queued" and h.queue == "综合" and "网页直接转人工" in h.reason
    agent = await login(app, "agent1", "agent1-demo")  # a 综合 agent sees it on the desk
    _, board = await app.asgi_client.get("/desk/api/queues", headers=agent)
    assert h.id in [row["id"] for row in board.json["queues"]["综合"]]


async def test_with_rasa_down_a_complaint_reaches_the_desk_first_in_the_queue_of_the_last_answer(app):
    rasa = app.ctx.rasa_double
    rasa.answer = lambda text: [{"text": "社保卡丢了可以挂失。", "custom": {"kb": {"id": "card-0501", "band": "confident"}}}]
    cid, citizen = await browser(app)
    await say(app, citizen, "社保卡丢了咋办")
    rasa.down = True
    lines = await say(app, citizen, "问了好几次没人管 我要投诉")
    assert "正在为您转接社保卡专家坐席" in lines[-1]["text"]
    [h] = handoffs_of(app, cid)
    assert h.queue == "社保卡" and h.priority == 1 and h.reason.startswith("市民投诉")


@pytest.mark.parametrize("status", ["queued", "claimed"])
async def test_a_handoff_the_bot_opened_is_not_opened_twice(app, status):
    app.ctx.rasa_double.answer = lambda text: [{"text": "正在为您转接人工客服，请稍候。",
                                                "custom": {"handoff": {"status": status, "queue": "养老"}}}]
    cid, citizen = await browser(app)
    lines = await say(app, citizen, "转人工")
    assert lines[-1]["text"] == "正在为您转接人工客服，请稍候。"
    assert handoffs_of(app, cid) == []  # the bot's action opened it through /api/handoff (not scripted here)


async def test_when_the_bots_action_could_not_reach_the_desk_the_web_app_opens_the_handoff(app):
    app.ctx.rasa_double.answer = lambda text: [{"text": "抱歉，人工客服系统暂时连接不上。",
                                                "custom": {"handoff": {"status": "unavailable"}}}]
    cid, citizen = await browser(app)
    lines = await say(app, citizen, "我要找真人")
    assert "正在为您转接" in lines[-1]["text"] and "连接不上" not in [m["text"] for m in lines]
    assert len(handoffs_of(app, cid)) == 1


async def test_lines_sent_while_rasa_was_down_are_answered_in_order_when_it_is_back(app):
    rasa = app.ctx.rasa_double
    rasa.down = True
    cid, citizen = await browser(app)
    first = await say(app, citizen, f"我的身份证{ID_NUMBER}社保卡办到哪了")
    assert first[-1]["role"] == "system" and "恢复后会自动回复您" in first[-1]["text"]
    await say(app, citizen, "失业金能领几个月")
    await app.ctx.chat.resume_after_outage()  # still down: nothing happens
    assert rasa.received == []
    rasa.down = False
    await app.ctx.chat.resume_after_outage()
    # Rasa got the citizen's own words (the ID number it needs), in order; the database only the masked line
    assert rasa.received == [f"我的身份证{ID_NUMBER}社保卡办到哪了", "失业金能领几个月"]
    lines = transcript(app, cid)
    assert all(ID_NUMBER not in text for role, text in lines if role != "bot")  # the double echoes it back
    answers = [text for role, text in lines if role == "bot"]
    assert answers[0].startswith("机器人回答：我的身份证") and answers[1] == "机器人回答：失业金能领几个月"
    assert sum("智能客服已恢复" in text for _, text in lines) == 2
    await app.ctx.chat.resume_after_outage()  # answered once, not again
    assert len(rasa.received) == 2


async def test_the_next_line_after_an_outage_comes_after_the_missed_one(app):
    rasa = app.ctx.rasa_double
    rasa.down = True
    _, citizen = await browser(app)
    await say(app, citizen, "养老保险交了几年了怎么查")
    rasa.down = False
    lines = await say(app, citizen, "还有医保")  # before the clock's round: the missed line is answered first
    assert rasa.received == ["养老保险交了几年了怎么查", "还有医保"]
    assert [m["text"] for m in lines if m["role"] == "bot"][-2:] == ["机器人回答：养老保险交了几年了怎么查", "机器人回答：还有医保"]


async def test_a_missed_line_is_dropped_once_a_person_serves_the_conversation(app):
    rasa = app.ctx.rasa_double
    rasa.down = True
    cid, citizen = await browser(app)
    await say(app, citizen, "社保卡密码忘了")
    await say(app, citizen, "转人工")  # Rasa is down: the web app opens the hand-off
    rasa.down = False
    await app.ctx.chat.resume_after_outage()
    assert rasa.received == [] and len(handoffs_of(app, cid)) == 1


def test_the_missed_lines_are_bounded():
    unanswered = Unanswered(per_conversation=2, conversations=2)
    assert unanswered.add("a", "1", "1", "") and unanswered.add("a", "2", "2", "")
    assert not unanswered.add("a", "3", "3", "")
    assert unanswered.add("b", "1", "1", "") and not unanswered.add("c", "1", "1", "")
    assert len(unanswered) == 3 and unanswered.conversations_waiting() == ["a", "b"]
    lines = unanswered.take("a")
    unanswered.add("a", "4", "4", "")
    unanswered.put_back("a", lines[1:])
    assert [text for text, _, _ in unanswered.take("a")] == ["2", "4"]


async def test_a_line_stored_by_a_web_app_that_then_died_is_answered_when_the_page_sends_it_again(app):
    from webapp.chat import record_citizen_line

    rasa = app.ctx.rasa_double
    cid, citizen = await browser(app)
    # the web app stored the line and was killed before it asked Rasa (found by scripts/faults.py)
    app.ctx.store.call(lambda s: record_citizen_line(s, cid, "工伤认定需要什么材料", None, "line0001"))
    for _ in range(2):  # the page sends it again, and once more
        _, r = await app.asgi_client.post("/api/chat/message", headers=citizen,
                                          json={"text": "工伤认定需要什么材料", "client_id": "line0001"})
        assert r.status == 200
    assert rasa.received == ["工伤认定需要什么材料"]  # answered once
    assert [role for role, _ in transcript(app, cid)] == ["citizen", "bot"]
