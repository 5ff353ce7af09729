"""Card-service form validation with CollectingDispatcher: slots hold masked values, raw ones wait server-side."""
import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import card_service as cs


def tracker(text: str, sender: str = "unit-card") -> Tracker:
    return Tracker(sender, {}, {"text": text, "intent": {"name": "inform"}, "entities": []}, [], False, None,
                   {"name": "verify_identity_form"}, "action_listen")


@pytest.fixture(autouse=True)
def clean():
    cs.pending.drop("unit-card")
    yield
    cs.pending.drop("unit-card")


async def test_spoken_id_number_is_normalised_masked_and_kept_server_side():
    d = CollectingDispatcher()
    out = await cs.ValidateVerifyIdentityForm().validate_id_number("三七零幺九零幺九七八零幺幺幺零零三八", d, tracker("三七零幺九零幺九七八零幺幺幺零零三八"), {})
    assert out == {"id_number": "身份证尾号0038"}
    assert cs.pending.get("unit-card")["id_number"] == "370190197801110038"
    assert d.messages == []


async def test_invalid_check_digit_is_explained():
    d = CollectingDispatcher()
    out = await cs.ValidateVerifyIdentityForm().validate_id_number("370190197801110039", d, tracker("370190197801110039"), {})
    assert out == {"id_number": None}
    assert "校验位" in d.messages[0]["text"]
    assert "id_number" not in cs.pending.get("unit-card")


@pytest.mark.parametrize("said,name", [("我叫张三", "张三"), ("王样例", "王样例"), ("俺叫 李四。", "李四")])
async def test_name_is_extracted_and_masked(said, name):
    d = CollectingDispatcher()
    out = await cs.ValidateVerifyIdentityForm().validate_person_name(said, d, tracker(said), {})
    assert out["person_name"] != name and out["person_name"].startswith(name[0])
    assert cs.pending.get("unit-card")["person_name"] == name


async def test_gibberish_name_is_refused():
    d = CollectingDispatcher()
    out = await cs.ValidateVerifyIdentityForm().validate_person_name("asdf123", d, tracker("asdf123"), {})
    assert out == {"person_name": None} and d.messages


async def test_last4_spoken():
    d = CollectingDispatcher()
    out = await cs.ValidateVerifyIdentityForm().validate_phone_last4("尾号是六六八八", d, tracker("尾号是六六八八"), {})
    assert out == {"phone_last4": "****"} and cs.pending.get("unit-card")["phone_last4"] == "6688"


def test_pending_answers_expire():
    p = cs.PendingIdentity(ttl=0.0)
    p.put("x", "id_number", "1")
    assert p.get("x") == {}


async def test_card_data_needs_verification_in_this_conversation():
    d = CollectingDispatcher()
    t = Tracker("unit-card", {"verified_ref": None}, {"text": "/query_card_progress"}, [], False, None, None, "action_listen")
    events = await cs.ActionCardProgress().run(d, t, {})
    assert any(e.get("name") == "verify_identity_form" for e in events)
    assert "核验" in d.messages[0]["text"]
