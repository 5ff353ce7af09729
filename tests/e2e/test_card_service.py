"""Card self-service through the real stack (web app -> Rasa -> action server -> card system, seeded).

Demo citizens are synthetic (cardsys/seed.py): 张示范 正常, 李演示 制卡中, 王样例 待领取.
"""
from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine, text

from tests.e2e.conftest import chat
from tests.sms_outbox import latest_code

pytestmark = pytest.mark.stack
ZHANG = ("37019019850315001X", "张示范", "6688")
LI = ("370190199207080023", "李演示", "2468")
WANG = ("370190197801110038", "王样例", "3579")


def said(lines: list[dict]) -> str:
    return "\n".join(m["text"] for m in lines if m["role"] in ("bot", "system"))


def verify(stack, cid, person) -> str:
    out = [said(chat(stack, cid, person[0])), said(chat(stack, cid, person[1])), said(chat(stack, cid, person[2]))]
    return "\n".join(out)


def test_lost_card_is_reported_after_verification_and_confirmation(stack, cid):
    first = said(chat(stack, cid, "我的社保卡丢了"))
    assert "挂失" in first and "身份证" in first
    reply = verify(stack, cid, ZHANG)
    assert "身份核验通过（身份证尾号001X）" in reply
    assert "确认要办理临时挂失吗" in reply and ZHANG[0] not in reply and "张示范" not in reply
    asked = said(chat(stack, cid, "/affirm", display="确认挂失"))
    assert "验证码" in asked and "尾号6688" in asked
    wrong = said(chat(stack, cid, "000000" if latest_code("6688") != "000000" else "111111"))
    assert "验证码不对" in wrong
    done = said(chat(stack, cid, latest_code("6688")))
    assert "已经为您办理临时挂失" in done
    engine = create_engine(os.environ["CARDSYS_DATABASE_URL"])
    with engine.connect() as c:
        status = c.execute(text("SELECT k.status FROM cardsys_cards k JOIN cardsys_citizens c ON k.citizen_id = c.id "
                                "WHERE c.id_number = :i ORDER BY k.id DESC"), {"i": ZHANG[0]}).scalar()
        audit = "\n".join(str(r) for r in c.execute(text("SELECT * FROM cardsys_audit_log")).fetchall())
    assert status == "临时挂失"
    assert "loss" in audit.lower() and ZHANG[0] not in audit and "张示范" not in audit


def test_progress_shows_the_verified_citizens_stage(stack, cid):
    said(chat(stack, cid, "我的卡办到哪了"))
    reply = verify(stack, cid, LI)
    assert "正在制作中" in reply and "转接" not in reply


def test_spoken_digits_are_understood(stack, cid):
    said(chat(stack, cid, "俺的社保卡做好了没"))
    spoken = "三七零幺九零幺九七八零幺幺幺零零三八"
    reply = said(chat(stack, cid, spoken))
    assert "姓名" in reply
    said(chat(stack, cid, WANG[1]))
    assert "可以去领取" in said(chat(stack, cid, "三五七九"))


def test_invalid_id_number_is_refused_politely(stack, cid):
    said(chat(stack, cid, "我的卡办到哪了"))
    reply = said(chat(stack, cid, "370190199207080024"))
    assert "校验位" in reply and "重新输入" in reply


def test_wrong_name_is_refused_without_revealing_anything(stack, cid):
    said(chat(stack, cid, "我的卡办到哪了"))
    reply = verify(stack, cid, (LI[0], "王五", LI[2]))
    assert "不一致" in reply and "制作中" not in reply and "李" not in reply.replace("李演示", "")


def test_three_failures_end_the_attempt_and_offer_a_person(stack, cid):
    said(chat(stack, cid, "我的卡办到哪了"))
    for _ in range(3):
        last = chat(stack, cid, LI[0]) + chat(stack, cid, "赵六") + chat(stack, cid, "0000")
    handoffs = [m for m in last if (m["payload"].get("custom") or {}).get("handoff")]
    assert handoffs, said(last)


def test_topic_switch_mid_verification_and_back(stack, cid):
    said(chat(stack, cid, "我的卡办到哪了"))
    said(chat(stack, cid, LI[0]))
    switched = chat(stack, cid, "电子社保卡咋领 用啥app")
    # the question is answered from the knowledge base (an answer, a question back or suggestions: this
    # test is about the form surviving a topic switch, not about the band)
    kb = [(m["payload"].get("custom") or {}).get("kb", {}) for m in switched]
    offered = [k.get("id", "") for k in kb] + [s for k in kb for s in k.get("suggestions", [])]
    assert any(i.startswith("ecard-") for i in offered), switched
    assert "姓名" in said(switched)  # the form asks again for what it still needs
    said(chat(stack, cid, LI[1]))
    assert "正在制作中" in said(chat(stack, cid, LI[2]))


def test_cancel_stops_and_forgets(stack, cid):
    said(chat(stack, cid, "我的社保卡丢了"))
    said(chat(stack, cid, ZHANG[0]))
    assert "已取消" in said(chat(stack, cid, "取消"))


def test_another_conversation_sees_nothing_without_its_own_verification(stack, cid):
    said(chat(stack, cid, "我的卡办到哪了"))
    assert "可以去领取" in verify(stack, cid, WANG)
    other = cid + "b"
    reply = said(chat(stack, other, "我的卡办到哪了"))
    assert "可以去领取" not in reply and "身份证" in reply
    reply = said(chat(stack, other, "/query_card_progress"))
    assert "可以去领取" not in reply and "槐荫区" not in reply


def test_the_next_citizen_on_a_shared_terminal_must_verify_and_sees_only_their_own_card(stack, cid):
    said(chat(stack, cid, "我的卡办到哪了"))
    first = verify(stack, cid, WANG)
    assert "可以去领取" in first
    # the next person, same conversation: asked who they are, not shown the previous card
    again = said(chat(stack, cid, "我的卡办到哪了"))
    assert "身份证" in again and "可以去领取" not in again
    second = verify(stack, cid, LI)
    assert "正在制作中" in second and "可以去领取" not in second
    # and the first citizen's card cannot be reported lost from here any more
    reply = said(chat(stack, cid, "/report_card_loss"))
    assert "确认要办理临时挂失吗" not in reply and "身份证" in reply


def test_a_loss_report_without_the_code_changes_nothing(stack, cid):
    said(chat(stack, cid, "我的社保卡丢了"))
    verify(stack, cid, WANG)
    asked = said(chat(stack, cid, "/affirm", display="确认挂失"))
    assert "验证码" in asked
    assert "已取消" in said(chat(stack, cid, "取消"))
    engine = create_engine(os.environ["CARDSYS_DATABASE_URL"])
    with engine.connect() as c:
        status = c.execute(text("SELECT k.status FROM cardsys_cards k JOIN cardsys_citizens c ON k.citizen_id = c.id "
                                "WHERE c.id_number = :i ORDER BY k.id DESC"), {"i": WANG[0]}).scalar()
    assert status == "待领取"
