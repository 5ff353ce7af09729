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


# --- one verification per conversation and identity (issue: a second citizen saw the first one's card) ---
def _card_tracker(sender: str, text: str, slots: dict | None = None) -> Tracker:
    return Tracker(sender, dict(slots or {}), {"text": text, "intent": {"name": "query_card_progress"}, "entities": []},
                   [], False, None, None, "action_listen")


@pytest.fixture
def real_cards(tmp_path, monkeypatch):
    """The actions against a real (SQLite) card system with the demo citizens."""
    from cardsys.adapter import SqlCardSystem
    from cardsys.seed import seed
    from cardsys.sms import LogSmsGateway, OneTimeCodes
    from cardsys.store import CardStore

    store = CardStore(f"sqlite:///{tmp_path / 'cards.db'}")
    seed(store, count=0)
    system = SqlCardSystem(store, sms=LogSmsGateway(), codes=OneTimeCodes(resend_after_seconds=0))
    monkeypatch.setattr(cs, "_card_system", system)
    monkeypatch.setattr(cs.kb_service, "get", lambda: None)
    yield system
    for sender in ("terminal", "other"):
        cs.handles.pop(sender)
        cs.pending.drop(sender)


async def _verify(sender: str, person: tuple[str, str, str], slots: dict) -> list[dict]:
    for key, value in zip(cs.SPOKEN_IDENTITY, person, strict=True):
        cs.pending.put(sender, key, value)
    return await cs.ActionVerifyIdentity().run(CollectingDispatcher(), _card_tracker(sender, person[2], slots), {})


async def _progress(sender: str, slots: dict) -> str:
    d = CollectingDispatcher()
    await cs.ActionCardProgress().run(d, _card_tracker(sender, "/query_card_progress", slots), {})
    return "\n".join(m["text"] or "" for m in d.messages)


def _slots(events: list[dict]) -> dict:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


ZHANG = ("37019019850315001X", "张示范", "6688")
LI = ("370190199207080023", "李演示", "2468")


async def test_the_next_citizen_on_a_shared_terminal_sees_only_their_own_card(real_cards):
    slots = {"card_goal": "progress"}
    events = await _verify("terminal", ZHANG, slots)
    slots.update(_slots(events))
    assert "正常" in await _progress("terminal", slots)
    first_handle = cs.handles.get("terminal")
    assert slots["verified_ref"] == "身份证尾号001X"  # a masked marker: the tracker holds no credential
    # the next person asks again in the same conversation: a new verification starts, the old one is revoked
    entry = await cs.ActionCardProgressEntry().run(CollectingDispatcher(), _card_tracker("terminal", "我的卡办到哪了", slots), {})
    slots.update(_slots(entry))
    assert slots["verified_ref"] is None and slots["id_number"] is None and cs.handles.get("terminal") is None
    with pytest.raises(cs.VerificationRequired):
        real_cards.card_status(first_handle)
    assert "正常" not in await _progress("terminal", slots)  # nothing without a new verification
    slots.update(_slots(await _verify("terminal", LI, slots)))
    reply = await _progress("terminal", slots)
    assert "制作中" in reply and "正常" not in reply


async def test_cancel_revokes_the_verification(real_cards):
    slots = {"card_goal": "progress"}
    slots.update(_slots(await _verify("terminal", ZHANG, slots)))
    handle = cs.handles.get("terminal")
    events = await cs.ActionCancelCardService().run(CollectingDispatcher(), _card_tracker("terminal", "取消", slots), {})
    assert _slots(events)["verified_ref"] is None and cs.handles.get("terminal") is None
    with pytest.raises(cs.VerificationRequired):
        real_cards.application_progress(handle)


async def test_a_verification_never_opens_another_conversation(real_cards):
    slots = {"card_goal": "progress"}
    slots.update(_slots(await _verify("terminal", ZHANG, slots)))
    # a client that copies the marker into another conversation gets nothing
    assert "正常" not in await _progress("other", slots)


async def test_a_new_session_revokes_the_verification_and_carries_nothing_personal(real_cards):
    from actions.session import ActionSessionStart

    slots = {"card_goal": "progress", "kb_last_entry": "card-0501"}
    slots.update(_slots(await _verify("terminal", ZHANG, slots)))
    handle = cs.handles.get("terminal")
    events = await ActionSessionStart().run(CollectingDispatcher(), _card_tracker("terminal", "/session_start", slots), {})
    assert events[0]["event"] == "session_started" and events[-1]["name"] == "action_listen"
    carried = _slots(events)
    assert carried["kb_last_entry"] == "card-0501" and carried["verified_ref"] is None and carried["id_number"] is None
    with pytest.raises(cs.VerificationRequired):
        real_cards.card_status(handle)


async def _report(sender: str, code_text: str, slots: dict) -> tuple[list[dict], str]:
    """The citizen types the code: the form validates it, then the report runs."""
    d = CollectingDispatcher()
    t = Tracker(sender, dict(slots), {"text": code_text, "intent": {"name": "inform"}, "entities": []}, [], False, None,
                {"name": "loss_code_form"}, "action_listen")
    checked = await cs.ValidateLossCodeForm().validate_loss_code(code_text, d, t, {})
    if checked["loss_code"] is None:  # the form keeps asking
        return [{"event": "form_continues"}], "\n".join(m["text"] or "" for m in d.messages)
    events = await cs.ActionCardReportLoss().run(d, t, {})
    return events, "\n".join(m["text"] or "" for m in d.messages)


async def test_a_loss_report_needs_the_code_from_the_registered_phone(real_cards):
    import re

    slots = {"card_goal": "loss"}
    slots.update(_slots(await _verify("terminal", ZHANG, slots)))
    d = CollectingDispatcher()
    events = await cs.ActionCardLossSendCode().run(d, _card_tracker("terminal", "/affirm", slots), {})
    assert "尾号6688" in d.messages[0]["text"] and d.messages[0]["custom"]["voice"]["expect"] == "code"
    assert any(e.get("name") == "loss_code_form" for e in events)
    code = re.search(r"验证码(\d{6})", real_cards.sms.outbox[-1].text).group(1)
    # not six digits: asked again, nothing changes
    events, said = await _report("terminal", "12345", slots)
    assert "6 位" in said and real_cards.card_status(cs.handles.get("terminal")).status == "正常"
    # a wrong code: asked again
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    events, said = await _report("terminal", wrong, slots)
    assert "验证码不对" in said and events == [{"event": "form_continues"}]
    # the right one, spoken digit by digit: the card is under temporary loss
    spoken = "".join("零幺二三四五六七八九"[int(c)] for c in code)
    events, said = await _report("terminal", spoken, slots)
    assert "已经为您办理临时挂失" in said
    assert real_cards.card_status(cs.handles.get("terminal")).status == "临时挂失"
    assert "loss_code" not in str(slots) or slots.get("loss_code") in (None, "******")


async def test_no_sms_service_means_no_loss_report_by_the_bot(real_cards, monkeypatch):
    monkeypatch.setattr(real_cards, "sms", None)
    slots = {"card_goal": "loss"}
    slots.update(_slots(await _verify("terminal", ZHANG, slots)))
    d = CollectingDispatcher()
    events = await cs.ActionCardLossSendCode().run(d, _card_tracker("terminal", "/affirm", slots), {})
    assert "人工" in d.messages[0]["text"] and d.messages[0]["buttons"][0]["payload"] == "/request_human"
    assert not any(e.get("name") == "loss_code_form" for e in events)


async def test_a_slowed_down_citizen_is_told_to_wait_or_ask_a_person_not_asked_again(real_cards, monkeypatch):
    monkeypatch.setattr(real_cards, "max_failures_per_citizen", 1)
    slots = {"card_goal": "progress"}
    await _verify("other", (ZHANG[0], ZHANG[1], "0000"), slots)  # a stranger's wrong guess
    d = CollectingDispatcher()
    for key, value in zip(cs.SPOKEN_IDENTITY, ZHANG, strict=True):
        cs.pending.put("terminal", key, value)
    events = await cs.ActionVerifyIdentity().run(d, _card_tracker("terminal", ZHANG[2], slots), {})
    assert "分钟后再试" in d.messages[0]["text"] and d.messages[0]["buttons"][0]["payload"] == "/request_human"
    assert not any(e.get("event") == "followup" for e in events) and cs.handles.get("terminal") is None


async def test_the_source_our_front_end_reports_limits_failures_across_conversations(real_cards, monkeypatch):
    monkeypatch.setattr(real_cards, "max_failures_per_source", 2)

    async def attempt(sender: str, person, source: str | None) -> CollectingDispatcher:
        for key, value in zip(cs.SPOKEN_IDENTITY, person, strict=True):
            cs.pending.put(sender, key, value)
        metadata = {"source": source} if source is not None else {}
        t = Tracker(sender, {"card_goal": "progress"}, {"text": person[2], "intent": {"name": "inform"}, "entities": [],
                                                         "metadata": metadata}, [], False, None, None, "action_listen")
        d = CollectingDispatcher()
        await cs.ActionVerifyIdentity().run(d, t, {})
        return d

    # one address, two wrong guesses in two conversations (each within its own conversation's limit)
    for sender in ("terminal", "other"):
        await attempt(sender, (LI[0], LI[1], "0000"), "web:203.0.113.9")
        cs.pending.drop(sender)
    # the third try from that address waits, even with a new conversation and right data
    d = await attempt("terminal", ZHANG, "web:203.0.113.9")
    assert "从您这里" in d.messages[0]["text"] and cs.handles.get("terminal") is None
    # the citizen at another address, or a message whose source is malformed (ignored), is not held up
    d = await attempt("other", ZHANG, "web:198.51.100.7")
    assert "核验通过" in d.messages[0]["text"]
    assert cs.source_of(Tracker("x", {}, {"metadata": {"source": "web:1.2.3.4; DROP"}}, [], False, None, None, "")) == ""
    assert cs.source_of(Tracker("x", {}, {"metadata": {"source": "phone:+8613800000000"}}, [], False, None, None,
                                "")) == "phone:+8613800000000"


def _phone_tracker(sender: str, text: str, slots: dict, metadata: dict) -> Tracker:
    """A phone turn inside the identity form, with the gateway's metadata."""
    events = [{"event": "user", "text": text, "input_channel": "phone", "metadata": metadata,
               "parse_data": {"text": text, "intent": {"name": "inform"}, "entities": []}}]
    return Tracker(sender, dict(slots), {"text": text, "intent": {"name": "inform"}, "entities": [], "metadata": metadata},
                   events, False, None, {"name": "verify_identity_form"}, "action_listen")


async def test_keypad_only_callers_are_asked_for_keys_only_and_web_citizens_for_the_name():
    form, d = cs.ValidateVerifyIdentityForm(), CollectingDispatcher()
    domain_slots = ["id_number", "person_name", "phone_last4", "identity_code"]  # as domain.yml lists them
    keypad = _phone_tracker("k", "1", {}, {"input": "keypad", "speech": False})
    assert await form.required_slots(domain_slots, d, keypad, {}) == ["id_number", "phone_last4", "identity_code"]
    speaking = _phone_tracker("k", "1", {}, {"input": "keypad"})  # a phone with speech: keys and the spoken name
    assert await form.required_slots(domain_slots, d, speaking, {}) == ["id_number", "person_name", "phone_last4"]
    web = Tracker("w", {}, {"text": "1", "intent": {"name": "inform"}, "entities": [], "metadata": {"speech": False}},
                  [], False, None, {"name": "verify_identity_form"}, "action_listen")
    assert await form.required_slots(domain_slots, d, web, {}) == ["id_number", "person_name", "phone_last4"]  # ignored off the phone


async def test_a_keypad_caller_verifies_with_the_last_four_digits_and_a_code_sent_to_the_registered_phone(real_cards):
    import re

    meta = {"input": "keypad", "speech": False}
    slots = {"card_goal": "progress"}
    sender = "terminal"
    form = cs.ValidateVerifyIdentityForm()
    for slot, keys in (("id_number", ZHANG[0].replace("X", "*")), ("phone_last4", ZHANG[2])):
        got = await getattr(form, f"validate_{slot}")(keys, CollectingDispatcher(), _phone_tracker(sender, keys, slots, meta), {})
        slots.update(got)
    assert slots["phone_last4"] == "****" and "001X" in slots["id_number"]
    d = CollectingDispatcher()
    await cs.ActionAskIdentityCode().run(d, _phone_tracker(sender, ZHANG[2], slots, meta), {})
    assert d.messages[0]["custom"]["voice"]["expect"] == "code" and "验证码" in d.messages[0]["text"]
    assert len(real_cards.sms.outbox) == 1  # sent once to the registered phone ...
    d = CollectingDispatcher()
    await cs.ActionAskIdentityCode().run(d, _phone_tracker(sender, "", slots, meta), {})
    assert len(real_cards.sms.outbox) == 1 and "6 位" in d.messages[0]["text"]  # ... asking again does not resend
    code = re.search(r"验证码是(\d{6})", real_cards.sms.outbox[-1].text).group(1)
    d = CollectingDispatcher()
    assert (await form.validate_identity_code("12", d, _phone_tracker(sender, "12", slots, meta), {})) == {"identity_code": None}
    slots.update(await form.validate_identity_code(code, CollectingDispatcher(), _phone_tracker(sender, code, slots, meta), {}))
    assert slots["identity_code"] == "******"  # the tracker never holds the code
    events = await cs.ActionVerifyIdentity().run(CollectingDispatcher(), _phone_tracker(sender, code, slots, meta), {})
    slots.update(_slots(events))
    assert slots["verified_ref"] == "身份证尾号001X"
    assert "正常" in await _progress(sender, slots)


async def test_a_keypad_caller_with_the_wrong_last_four_digits_gets_no_code_and_no_card(real_cards):
    meta = {"input": "keypad", "speech": False}
    sender = "other"
    cs.pending.put(sender, "id_number", ZHANG[0])
    cs.pending.put(sender, "phone_last4", "1111")
    d = CollectingDispatcher()
    await cs.ActionAskIdentityCode().run(d, _phone_tracker(sender, "1111", {}, meta), {})
    assert "验证码" in d.messages[0]["text"] and real_cards.sms.outbox == []  # the same words, nothing sent
    cs.pending.put(sender, "identity_code", "123456")  # a guess
    d = CollectingDispatcher()
    events = await cs.ActionVerifyIdentity().run(d, _phone_tracker(sender, "123456", {}, meta), {})
    assert cs.handles.get(sender) is None and not _slots(events).get("verified_ref")
    assert "验证码" in d.messages[0]["text"]
