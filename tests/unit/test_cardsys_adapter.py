"""The SQL card system against SQLite: verification, lookups, temporary loss, audit, and data isolation.

`CardSystemContract` holds the behaviour; tests/service/test_cardsys_postgres.py runs the same
contract against PostgreSQL by providing its own `store` fixture.
"""
from __future__ import annotations

import datetime as dt
import inspect
import itertools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from cardsys.adapter import CardSystem, SqlCardSystem
from cardsys.idnumber import compose_id
from cardsys.models import AuditEntry, Card, Citizen, SourceFailure, utcnow
from cardsys.results import VerificationRequired, VerifiedCitizen
from cardsys.seed import DEMO_CITIZENS, seed
from cardsys.sms import LogSmsGateway, OneTimeCodes
from cardsys.store import CardStore

ZHANG, LI, WANG = DEMO_CITIZENS  # 正常, 制卡中, 待领取
_sequence = itertools.count(1)


class Clock:
    """The adapter's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> dt.datetime:
        return self.now


def add_person(store: CardStore, *statuses: str, name: str = "赵测试", phone: str = "19905310000") -> tuple[str, str, str]:
    """A citizen with one card per status (oldest first); returns (name, id_number, phone)."""
    id_number = compose_id("370199", dt.date(1970, 1, 1) + dt.timedelta(days=next(_sequence)), 7)
    now = utcnow()
    with store.session() as s:
        citizen = Citizen(id_number=id_number, name=name, phone=phone)
        s.add(citizen)
        for i, status in enumerate(statuses):
            citizen.cards.append(Card(card_number=f"T{id_number[-7:-1]}{i:02d}", status=status, bank="齐鲁银行",
                                      outlet="历城区齐鲁银行社保卡服务网点", applied_at=now - dt.timedelta(days=100 - i)))
    return name, id_number, phone


def sent_code(sms: LogSmsGateway) -> str:
    """The code in the last SMS sent."""
    return re.search(r"验证码(\d{6})", sms.outbox[-1].text).group(1)


def card_states(store: CardStore, id_number: str) -> list[str]:
    """Statuses of a citizen's cards, oldest first."""
    with store.session() as s:
        citizen = s.scalar(select(Citizen).where(Citizen.id_number == id_number))
        return [c.status for c in citizen.cards]


def audit(store: CardStore) -> list[AuditEntry]:
    """Every audit entry, oldest first."""
    with store.session() as s:
        return list(s.scalars(select(AuditEntry).order_by(AuditEntry.id)))


class CardSystemContract:
    """Behaviour every backend of SqlCardSystem must show; subclasses provide a `store` fixture."""

    @pytest.fixture
    def clock(self) -> Clock:
        return Clock()

    @pytest.fixture
    def sms(self) -> LogSmsGateway:
        return LogSmsGateway()

    @pytest.fixture
    def cards(self, store: CardStore, clock: Clock, sms: LogSmsGateway) -> SqlCardSystem:
        seed(store, count=0)  # the three demo citizens
        return SqlCardSystem(store, sms=sms, codes=OneTimeCodes(resend_after_seconds=0), clock=clock)

    def login(self, cards: SqlCardSystem, person=ZHANG, conversation: str = "conv-1") -> VerifiedCitizen:
        result = cards.verify(person.id_number, person.name, person.phone[-4:], channel="web", conversation_id=conversation)
        assert result.ok, result
        assert result.citizen is not None
        return result.citizen

    def lose(self, cards: SqlCardSystem, citizen: VerifiedCitizen):
        """The loss report as the citizen does it: a code to the registered phone, then the report with it."""
        sent = cards.send_change_code(citizen)
        assert sent.ok, sent
        return cards.report_temporary_loss(citizen, sent_code(cards.sms))

    # --- verification ---------------------------------------------------------------------------
    def test_right_data_passes_and_is_read_back_masked(self, cards: SqlCardSystem) -> None:
        result = cards.verify(ZHANG.id_number, "张示范", "6688", channel="web", conversation_id="c")
        assert (result.ok, result.code, result.masked_id, result.masked_name) == (True, "ok", "身份证尾号001X", "张*范")
        assert ZHANG.id_number not in repr(result) and result.citizen.token not in repr(result)

    def test_typed_and_spoken_forms_of_the_same_data_pass(self, cards: SqlCardSystem) -> None:
        result = cards.verify(ZHANG.id_number.lower(), " 张 示范 ", "六六八八", channel="phone", conversation_id="c")
        assert result.ok

    def test_wrong_name_wrong_last4_and_unknown_id_get_the_same_polite_answer(self, cards: SqlCardSystem) -> None:
        unknown = compose_id("370198", dt.date(1990, 1, 1), 5)
        answers = [
            cards.verify(ZHANG.id_number, "张示", "6688", channel="web", conversation_id="a"),
            cards.verify(ZHANG.id_number, "张示范", "6689", channel="web", conversation_id="b"),
            cards.verify(unknown, "张示范", "6688", channel="web", conversation_id="c"),
        ]
        assert {(r.ok, r.code, r.message, r.attempts_left) for r in answers} == {(False, "mismatch", answers[0].message, 2)}
        assert "不一致" in answers[0].message
        assert all(r.citizen is None and r.masked_name == "" for r in answers)

    def test_an_invalid_id_number_is_explained_and_not_counted(self, cards: SqlCardSystem) -> None:
        wrong_check = ZHANG.id_number[:17] + "0"
        result = cards.verify(wrong_check, "张示范", "6688", channel="web", conversation_id="c")
        assert (result.ok, result.code) == (False, "invalid_id")
        assert "校验位不对" in result.message
        assert result.attempts_left == 3
        assert cards.verify(ZHANG.id_number, "张示范", "六六八", channel="web", conversation_id="c").code == "invalid_input"
        assert self.login(cards, conversation="c")

    def test_three_failures_end_self_service_in_that_conversation(self, cards: SqlCardSystem, store: CardStore) -> None:
        codes = [cards.verify(ZHANG.id_number, "李四", "0000", channel="web", conversation_id="c").code for _ in range(3)]
        assert codes == ["mismatch", "mismatch", "locked"]
        late = cards.verify(ZHANG.id_number, "张示范", "6688", channel="web", conversation_id="c")
        assert (late.ok, late.code) == (False, "locked")
        assert "人工" in late.message
        assert self.login(cards, conversation="another")  # a new conversation may try again
        assert [e.outcome for e in audit(store) if e.conversation_id == "c"][-1] == "locked"

    def test_repeated_failures_across_conversations_slow_the_citizen_down_but_never_lock_them_out(
            self, cards: SqlCardSystem, store: CardStore, clock: Clock) -> None:
        strict = SqlCardSystem(store, max_failures_per_citizen=2, clock=clock)
        for conversation in ("a", "b"):  # a stranger who knows the ID number guesses in new conversations
            assert strict.verify(ZHANG.id_number, "张示范", "0000", channel="web", conversation_id=conversation).code == "mismatch"
        slowed = strict.verify(ZHANG.id_number, "张示范", "6688", channel="web", conversation_id="c")
        assert (slowed.code, "1分钟" in slowed.message, "人工" in slowed.message) == ("slow_down", True, True)
        assert strict.verify(LI.id_number, "李演示", "2468", channel="web", conversation_id="d").ok  # others unaffected
        clock.now += dt.timedelta(seconds=61)  # the owner, a minute later, gets in
        assert strict.verify(ZHANG.id_number, "张示范", "6688", channel="web", conversation_id="e").ok
        # each further failure doubles the wait, up to an hour
        for i, conversation in enumerate("fghijklmn"):
            clock.now += dt.timedelta(hours=2)
            assert strict.verify(ZHANG.id_number, "张示范", "0000", channel="web", conversation_id=conversation).code == "mismatch"
            wait = strict.verify(ZHANG.id_number, "张示范", "6688", channel="web", conversation_id=conversation + "2")
            assert wait.code == "slow_down" and f"{min(2 ** (i + 1), 60)}分钟" in wait.message, (i, wait.message)
        clock.now += dt.timedelta(minutes=61)
        assert strict.verify(ZHANG.id_number, "张示范", "6688", channel="web", conversation_id="z").ok

    def test_one_source_trying_many_conversations_and_id_numbers_is_slowed_down_not_the_citizens(
            self, cards: SqlCardSystem, clock: Clock) -> None:
        attacker, owner = "web:203.0.113.9", "web:198.51.100.7"
        # 20 wrong guesses from one address, each in a new conversation, spread over the three demo citizens
        # (so neither the conversation's nor any citizen's limit is reached)
        for i in range(cards.max_failures_per_source):
            person = DEMO_CITIZENS[i % 3]
            r = cards.verify(person.id_number, person.name, "0000", channel="web", conversation_id=f"probe-{i}", source=attacker)
            assert r.code == "mismatch", (i, r)
        # the next try from that address waits, whatever it tries, even the right data
        slowed = cards.verify(ZHANG.id_number, ZHANG.name, ZHANG.phone[-4:], channel="web", conversation_id="probe-x",
                              source=attacker)
        assert (slowed.code, "从您这里" in slowed.message, "人工" in slowed.message) == ("slow_down", True, True)
        assert cards.send_code(ZHANG.id_number, ZHANG.name, channel="web", conversation_id="probe-y",
                               source=attacker).code == "slow_down"
        # the citizens themselves, from their own address (or a phone line without a number), are not held up
        assert cards.verify(ZHANG.id_number, ZHANG.name, ZHANG.phone[-4:], channel="web", conversation_id="own",
                            source=owner).ok
        assert cards.verify(ZHANG.id_number, ZHANG.name, ZHANG.phone[-4:], channel="phone", conversation_id="call").ok
        # the wait doubles with each further failure and then lapses; the store keeps only the source's hash
        clock.now += dt.timedelta(minutes=2)
        assert cards.verify(ZHANG.id_number, ZHANG.name, "0000", channel="web", conversation_id="probe-z",
                            source=attacker).code == "mismatch"
        again = cards.verify(ZHANG.id_number, ZHANG.name, ZHANG.phone[-4:], channel="web", conversation_id="probe-w",
                             source=attacker)
        assert again.code == "slow_down" and "2分钟" in again.message
        with cards.store.session() as s:
            stored = [r.source_hash for r in s.scalars(select(SourceFailure))]
        assert len(stored) == cards.max_failures_per_source + 1 and all("203.0.113" not in h for h in stored)

    def test_find_citizen_says_only_whether_the_number_is_known(self, cards: SqlCardSystem) -> None:
        found = cards.find_citizen(ZHANG.id_number, channel="web", conversation_id="c")
        assert (found.found, found.valid_id, found.masked_id) == (True, True, "身份证尾号001X")
        unknown = cards.find_citizen(compose_id("370198", dt.date(1990, 1, 1), 5), channel="web", conversation_id="c")
        assert not unknown.found and unknown.valid_id
        invalid = cards.find_citizen("123", channel="web", conversation_id="c")
        assert not invalid.valid_id and "长度不对" in invalid.reason
        assert cards.verify(ZHANG.id_number, "x", "0000", channel="web", conversation_id="c").attempts_left == 1
        cards.verify(ZHANG.id_number, "x", "0000", channel="web", conversation_id="c")
        locked = cards.find_citizen(ZHANG.id_number, channel="web", conversation_id="c")  # no probing once locked
        assert (locked.found, locked.locked) == (False, True) and "人工" in locked.reason

    # --- one-time codes ----------------------------------------------------------------------------
    def test_a_one_time_code_sent_to_the_registered_phone_verifies(self, cards: SqlCardSystem, sms: LogSmsGateway) -> None:
        sent = cards.send_code(WANG.id_number, "王样例", channel="phone", conversation_id="c")
        assert (sent.ok, sent.code) == (True, "sent")
        assert [m.masked_phone for m in sms.outbox] == ["199****3579"]
        code = sms.outbox[0].text.split("验证码是")[1][:6]
        assert cards.verify_code(WANG.id_number, "123", channel="phone", conversation_id="other").code == "mismatch"
        result = cards.verify_code(WANG.id_number, code, channel="phone", conversation_id="c")
        assert result.ok and result.masked_name == "王*例"
        assert cards.application_progress(result.citizen).ready_to_collect

    def test_a_code_is_never_sent_for_a_wrong_name_but_the_answer_is_the_same(self, cards: SqlCardSystem,
                                                                             sms: LogSmsGateway, store: CardStore) -> None:
        right = cards.send_code(WANG.id_number, "王样例", channel="phone", conversation_id="a")
        wrong = cards.send_code(WANG.id_number, "王大锤", channel="phone", conversation_id="b")
        assert (wrong.ok, wrong.code, wrong.message) == (right.ok, right.code, right.message)
        assert len(sms.outbox) == 1
        assert cards.verify_code(WANG.id_number, "000000", channel="phone", conversation_id="b").code == "mismatch"
        assert [e.outcome for e in audit(store) if e.conversation_id == "b"] == ["mismatch", "mismatch"]

    def test_keypad_callers_get_a_code_by_the_phones_last_four_digits_instead_of_the_name(
            self, cards: SqlCardSystem, sms: LogSmsGateway, store: CardStore) -> None:
        right = cards.send_code(WANG.id_number, phone_last4="3579", channel="phone", conversation_id="k1")
        wrong = cards.send_code(WANG.id_number, phone_last4="0000", channel="phone", conversation_id="k2")
        assert (right.ok, right.code) == (True, "sent")
        assert (wrong.ok, wrong.code, wrong.message) == (right.ok, right.code, right.message)  # nothing told
        assert [m.masked_phone for m in sms.outbox] == ["199****3579"]  # only the matching request sent one
        assert "手机尾号不一致" in [e for e in audit(store) if e.conversation_id == "k2"][0].detail
        code = sms.outbox[0].text.split("验证码是")[1][:6]
        assert cards.verify_code(WANG.id_number, code, channel="phone", conversation_id="k2").code == "mismatch"
        result = cards.verify_code(WANG.id_number, code, channel="phone", conversation_id="k1")
        assert result.ok and result.masked_name == "王*例"
        # neither a name nor four digits: refused before anything is looked up or sent
        assert cards.send_code(WANG.id_number, phone_last4="35", channel="phone", conversation_id="k3").code == "invalid_input"
        assert cards.send_code(WANG.id_number, channel="phone", conversation_id="k3").code == "invalid_input"
        assert len(sms.outbox) == 1

    def test_without_a_working_gateway_codes_are_unavailable(self, store: CardStore, cards: SqlCardSystem) -> None:
        assert SqlCardSystem(store).send_code(WANG.id_number, "王样例", channel="web", conversation_id="c").code == "unavailable"

        class Broken:
            def send(self, phone: str, text: str) -> None:
                raise ConnectionError("gateway down")

        broken = SqlCardSystem(store, sms=Broken())
        assert broken.send_code(WANG.id_number, "王样例", channel="web", conversation_id="d").code == "unavailable"
        assert [e.outcome for e in audit(store) if e.conversation_id == "d"] == ["sms_failed"]

    # --- lookups ----------------------------------------------------------------------------------
    def test_card_status(self, cards: SqlCardSystem) -> None:
        status = cards.card_status(self.login(cards))
        assert (status.has_card, status.status, status.bank, status.can_report_loss) == (True, "正常", "中国工商银行", True)
        assert status.masked_card_number.startswith("****") and status.masked_card_number[-4:] in status.message
        assert status.expires_on and status.expires_on > dt.date.today()

    def test_progress_of_a_card_being_made(self, cards: SqlCardSystem) -> None:
        progress = cards.application_progress(self.login(cards, LI))
        assert (progress.stage, progress.step, progress.total_steps, progress.ready_to_collect) == ("制卡中", 2, 5, False)
        assert "15到30个工作日" in progress.expected and "市中区" in progress.message
        today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date()
        assert progress.applied_on is not None and 9 <= (today - progress.applied_on).days <= 11  # seeded 10 days ago

    def test_progress_of_a_card_waiting_at_the_outlet(self, cards: SqlCardSystem) -> None:
        progress = cards.application_progress(self.login(cards, WANG))
        assert (progress.stage, progress.step, progress.ready_to_collect) == ("待领取", 4, True)
        assert progress.what_to_bring == ("本人有效身份证件（原件）",)
        assert "槐荫区齐鲁银行社保卡服务网点" in progress.next_step

    @pytest.mark.parametrize("status, step, bring", [("申请受理", 1, False), ("已寄送网点", 3, True), ("已领取", 5, False),
                                                     ("正常", 0, False), ("注销", 0, False)])
    def test_progress_steps(self, cards: SqlCardSystem, store: CardStore, status: str, step: int, bring: bool) -> None:
        name, id_number, phone = add_person(store, status)
        citizen = cards.verify(id_number, name, phone[-4:], channel="web", conversation_id="c").citizen
        progress = cards.application_progress(citizen)
        assert (progress.stage, progress.step, bool(progress.what_to_bring)) == (status, step, bring)

    # --- temporary loss ---------------------------------------------------------------------------
    def test_temporary_loss_is_recorded_once(self, cards: SqlCardSystem, store: CardStore) -> None:
        citizen = self.login(cards)
        first = self.lose(cards, citizen)
        assert (first.ok, first.code, first.status_before, first.status_after) == (True, "reported", "正常", "临时挂失")
        assert first.masked_card_number[-4:] in first.message and "临时挂失" in first.message
        assert any("银行" in step for step in first.next_steps) and any("正式挂失" in step for step in first.next_steps)
        assert card_states(store, ZHANG.id_number) == ["临时挂失"]
        again = self.lose(cards, citizen)
        assert (again.ok, again.code, again.reported_at) == (True, "already_reported", first.reported_at)
        status = cards.card_status(citizen)
        assert (status.status, status.can_report_loss, status.loss_reported_at) == ("临时挂失", False, first.reported_at)

    @pytest.mark.parametrize("status", ["正常", "待领取", "已领取"])
    def test_loss_can_be_reported_from(self, cards: SqlCardSystem, store: CardStore, status: str) -> None:
        name, id_number, phone = add_person(store, status)
        citizen = cards.verify(id_number, name, phone[-4:], channel="web", conversation_id="c").citizen
        assert self.lose(cards, citizen).code == "reported"
        assert card_states(store, id_number) == ["临时挂失"]

    @pytest.mark.parametrize("status, words", [("注销", "注销"), ("正式挂失", "正式挂失"), ("制卡中", "制作中"), ("申请受理", "办理中"),
                                               ("已寄送网点", "寄往网点"), ("锁定", "锁定")])
    def test_loss_is_refused_with_a_reason_for(self, cards: SqlCardSystem, store: CardStore, status: str, words: str) -> None:
        name, id_number, phone = add_person(store, status)
        citizen = cards.verify(id_number, name, phone[-4:], channel="web", conversation_id="c").citizen
        result = self.lose(cards, citizen)
        assert (result.ok, result.code, result.status_after) == (False, "refused", status)
        assert words in result.message
        assert card_states(store, id_number) == [status]

    def test_loss_is_reported_on_the_card_in_the_citizens_hands(self, cards: SqlCardSystem, store: CardStore) -> None:
        name, renewing, phone = add_person(store, "正常", "制卡中")  # old card still in use, new one being made
        citizen = cards.verify(renewing, name, phone[-4:], channel="web", conversation_id="a").citizen
        assert self.lose(cards, citizen).status_before == "正常"
        assert card_states(store, renewing) == ["临时挂失", "制卡中"]
        name, renewed, phone = add_person(store, "注销", "正常")
        citizen = cards.verify(renewed, name, phone[-4:], channel="web", conversation_id="b").citizen
        assert self.lose(cards, citizen).code == "reported"
        assert card_states(store, renewed) == ["注销", "临时挂失"]
        assert cards.card_status(citizen).status == "临时挂失"

    def test_a_loss_report_needs_the_code_sent_to_the_registered_phone(self, cards: SqlCardSystem, store: CardStore,
                                                                       sms: LogSmsGateway) -> None:
        citizen = self.login(cards)
        assert cards.report_temporary_loss(citizen, "").code == "code_none"  # no code asked for: nothing changes
        sent = cards.send_change_code(citizen)
        assert sent.ok and "尾号6688" in sent.message and ZHANG.phone not in sent.message
        assert sms.outbox[-1].masked_phone.endswith("6688") and "挂失" in sms.outbox[-1].text
        code = sent_code(sms)
        wrong = f"{(int(code) + 1) % 10**6:06d}"
        assert cards.report_temporary_loss(citizen, wrong).code == "code_wrong"
        assert card_states(store, ZHANG.id_number) == ["正常"]
        # another verification of the same citizen (another conversation) cannot use this code
        other = self.login(cards, conversation="elsewhere")
        assert cards.report_temporary_loss(other, code).code == "code_none"
        assert cards.report_temporary_loss(citizen, code).code == "reported"
        assert cards.report_temporary_loss(citizen, code).code == "code_none"  # used once

    def test_wrong_codes_use_the_code_up(self, cards: SqlCardSystem, store: CardStore, sms: LogSmsGateway) -> None:
        citizen = self.login(cards)
        cards.send_change_code(citizen)
        code = sent_code(sms)
        wrong = f"{(int(code) + 1) % 10**6:06d}"
        outcomes = [cards.report_temporary_loss(citizen, wrong).code for _ in range(3)]
        assert outcomes[-1] == "code_used_up" and cards.report_temporary_loss(citizen, code).code != "reported"
        assert card_states(store, ZHANG.id_number) == ["正常"]

    def test_without_sms_no_change_can_be_made(self, store: CardStore) -> None:
        seed(store, count=0)
        cards = SqlCardSystem(store, sms=None)
        citizen = cards.verify(ZHANG.id_number, ZHANG.name, ZHANG.phone[-4:], channel="web", conversation_id="c").citizen
        sent = cards.send_change_code(citizen)
        assert (sent.ok, sent.code) == (False, "unavailable") and "人工" in sent.message
        assert cards.report_temporary_loss(citizen, "000000").code == "code_none"
        assert card_states(store, ZHANG.id_number) == ["正常"]

    def test_a_citizen_without_a_card(self, cards: SqlCardSystem, store: CardStore) -> None:
        name, id_number, phone = add_person(store)
        citizen = cards.verify(id_number, name, phone[-4:], channel="web", conversation_id="c").citizen
        assert (cards.card_status(citizen).has_card, cards.application_progress(citizen).has_application) == (False, False)
        assert self.lose(cards, citizen).code == "no_card"

    # --- audit and privacy --------------------------------------------------------------------------
    def test_the_audit_log_records_everything_masked(self, cards: SqlCardSystem, store: CardStore) -> None:
        cards.verify(ZHANG.id_number, "张三", "6688", channel="web", conversation_id="c")
        citizen = self.login(cards, conversation="c")
        results = [cards.card_status(citizen), cards.application_progress(citizen), self.lose(cards, citizen),
                   cards.send_code(ZHANG.id_number, "张示范", channel="web", conversation_id="c")]
        entries = audit(store)
        assert [(e.action, e.outcome) for e in entries if e.conversation_id == "c"] == [
            ("verify", "mismatch"), ("verify", "ok"), ("card_status", "ok"), ("application_progress", "ok"),
            ("send_change_code", "ok"), ("temporary_loss", "reported"), ("send_code", "ok")]
        loss = next(e for e in entries if e.action == "temporary_loss")
        assert (loss.channel, loss.actor) == ("web", "bot") and loss.citizen_id is not None
        assert "身份证尾号001X" in loss.detail and "正常→临时挂失" in loss.detail
        with store.session() as s:
            card_number = s.scalar(select(Card.card_number).join(Citizen).where(Citizen.id_number == ZHANG.id_number))
        secrets_ = (ZHANG.id_number, ZHANG.phone, ZHANG.name, card_number, ZHANG.id_number[:14])
        for entry in entries:
            assert not any(x in entry.detail for x in secrets_), entry.detail
        for result in results:
            assert not any(x in repr(result) for x in secrets_), result

    # --- isolation: no data without that citizen's verification in the same conversation -------------
    def test_card_data_is_reachable_only_through_a_verified_handle(self) -> None:
        for method in ("card_status", "application_progress", "send_change_code", "report_temporary_loss"):
            params = list(inspect.signature(getattr(CardSystem, method)).parameters)
            # no ID number, name or citizen id can be passed; a change also needs the code sent to the phone
            assert params == ["self", "citizen"] + (["code"] if method == "report_temporary_loss" else []), method

    def test_a_handle_shows_only_its_own_citizen(self, cards: SqlCardSystem) -> None:
        zhang, li = self.login(cards, ZHANG, "a"), self.login(cards, LI, "b")
        assert cards.card_status(zhang).masked_id == "身份证尾号001X"
        assert cards.card_status(li).masked_id == f"身份证尾号{LI.id_number[-4:]}"

    def test_a_handle_does_not_work_in_another_conversation(self, cards: SqlCardSystem, store: CardStore) -> None:
        citizen = self.login(cards, conversation="mine")
        stolen = VerifiedCitizen.from_slot(citizen.to_slot(), "someone-else")
        for call in (cards.card_status, cards.application_progress, cards.send_change_code,
                     lambda c: cards.report_temporary_loss(c, "123456")):
            with pytest.raises(VerificationRequired):
                call(stolen)
        assert card_states(store, ZHANG.id_number) == ["正常"]
        assert [e.outcome for e in audit(store) if e.conversation_id == "someone-else"] == ["not_verified"] * 4
        assert cards.card_status(VerifiedCitizen.from_slot(citizen.to_slot(), "mine")).status == "正常"

    def test_forged_expired_and_ended_handles_open_nothing(self, cards: SqlCardSystem, clock: Clock) -> None:
        with pytest.raises(VerificationRequired):
            cards.card_status(VerifiedCitizen("forged-token", "c"))
        with pytest.raises(VerificationRequired):
            VerifiedCitizen.from_slot(None, "c")
        citizen = self.login(cards, conversation="c")
        clock.now += dt.timedelta(minutes=31)
        with pytest.raises(VerificationRequired):
            cards.card_status(citizen)
        clock.now -= dt.timedelta(minutes=31)
        citizen = self.login(cards, conversation="c")
        cards.end_verification(citizen)
        with pytest.raises(VerificationRequired):
            self.lose(cards, citizen)


class TestSqlite(CardSystemContract):
    """The contract against an SQLite file."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[CardStore]:
        store = CardStore(f"sqlite:///{tmp_path / 'cardsys.db'}")
        yield store
        store.close()


def test_the_database_url_names_the_fix_when_it_cannot_be_opened(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="CARDSYS_DATABASE_URL"):
        CardStore("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
