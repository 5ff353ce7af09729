"""The card information system as the bot sees it: `CardSystem`, and `SqlCardSystem` over `CardStore`.

Privacy by construction: a citizen's card data is only reachable through a `VerifiedCitizen`
handle, which `verify()` / `verify_code()` issue after the ID number, the name and a second
factor (phone last four digits or a one-time code) all match. The handle is bound to the
conversation it was issued in and expires. Every call writes a masked audit entry.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import math
import re
import secrets
import threading
import unicodedata
from collections.abc import Callable, Iterator
from typing import Protocol

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session

from cardsys import texts
from cardsys.idnumber import explain_invalid, normalize_id
from cardsys.models import AuditEntry, Card, CardState, Citizen, SourceFailure, VerifiedSession, utcnow
from cardsys.numbers import normalize_digits
from cardsys.results import (
    ApplicationProgress,
    CardStatus,
    CitizenLookup,
    CodeSent,
    LossResult,
    VerificationRequired,
    VerificationResult,
    VerifiedCitizen,
    beijing,
    cn_date,
)
from cardsys.settings import Settings, load_settings
from cardsys.sms import CodeCheck, HttpSmsGateway, LogSmsGateway, OneTimeCodes, SmsGateway
from cardsys.store import CardStore
from common.privacy import mask_digits, mask_id_number, mask_name, mask_text


class CardSystem(Protocol):
    """What the bot may ask of the card information system."""

    def find_citizen(self, id_number: str, *, channel: str, conversation_id: str, source: str = "") -> CitizenLookup:
        """Whether an ID number is valid and known (counts as a failure when it is not known)."""

    def verify(self, id_number: str, name: str, phone_last4: str, *, channel: str, conversation_id: str, source: str = "") -> VerificationResult:
        """Check ID number, name and the last four digits of the registered phone; never says which one was wrong."""

    def send_code(self, id_number: str, name: str = "", *, phone_last4: str = "", channel: str, conversation_id: str,
                  source: str = "") -> CodeSent:
        """Send a one-time code to the registered phone if the ID number and the name (or, for keypad callers, the
        phone's last four digits) match (same answer either way)."""

    def verify_code(self, id_number: str, code: str, *, channel: str, conversation_id: str, source: str = "") -> VerificationResult:
        """Check a one-time code sent by `send_code` in this conversation."""

    def card_status(self, citizen: VerifiedCitizen) -> CardStatus:
        """The verified citizen's current card."""

    def application_progress(self, citizen: VerifiedCitizen) -> ApplicationProgress:
        """Stage, outlet, expected collection and what to bring for the verified citizen's card."""

    def send_change_code(self, citizen: VerifiedCitizen) -> CodeSent:
        """Send a one-time code to the verified citizen's registered phone, to confirm a change."""

    def report_temporary_loss(self, citizen: VerifiedCitizen, code: str) -> LossResult:
        """Put the verified citizen's card under temporary loss, with the code `send_change_code` sent (idempotent)."""

    def end_verification(self, citizen: VerifiedCitizen) -> None:
        """Revoke the handle (the citizen cancelled, or the conversation ended)."""


SLOW_DOWN_FIRST = dt.timedelta(minutes=1)  # the wait after the citizen's max_failures_per_citizen-th failure
SLOW_DOWN_LONGEST = dt.timedelta(hours=1)
SOURCE_WINDOW = dt.timedelta(hours=1)  # failures from one source counted over this window
VERIFY_ACTIONS = ("find_citizen", "verify", "send_code", "verify_code")
FAILED = ("mismatch", "not_found")
_DOTS = re.compile(r"[·・•‧∙⋅．.\s]")


def name_key(name: str) -> str:
    """A name in the form used for matching: NFKC, no spaces or middle dots (阿依古丽·买买提), case-folded."""
    return _DOTS.sub("", unicodedata.normalize("NFKC", name or "")).casefold()


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SqlCardSystem:
    """`CardSystem` over the SQL store (SQLite in development and tests, PostgreSQL in production)."""

    def __init__(self, store: CardStore, *, sms: SmsGateway | None = None, codes: OneTimeCodes | None = None,
                 verified_minutes: int = 30, max_failures: int = 3, max_failures_per_citizen: int = 10,
                 max_failures_per_source: int = 20, actor: str = "bot",
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.store, self.sms, self.actor, self.clock = store, sms, actor, clock
        self.codes = codes or OneTimeCodes()
        self.verified_for = dt.timedelta(minutes=verified_minutes)
        self.max_failures, self.max_failures_per_citizen = max_failures, max_failures_per_citizen
        self.max_failures_per_source = max_failures_per_source
        self._attempt_lock = threading.RLock()

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> SqlCardSystem:
        """Build from CARDSYS_* settings (raises ValueError naming the setting to fix)."""
        s = settings or load_settings()
        sms: SmsGateway | None = (LogSmsGateway(s.sms_log) if s.sms_gateway == "log" else
                                  HttpSmsGateway(s.sms_url, s.sms_token.reveal()) if s.sms_gateway == "http" else None)
        return cls(CardStore(s.database_url), sms=sms, codes=OneTimeCodes(s.otp_ttl_seconds, s.otp_max_attempts),
                   verified_minutes=s.verified_minutes, max_failures=s.max_failures,
                   max_failures_per_citizen=s.max_failures_per_citizen, max_failures_per_source=s.max_failures_per_source)

    # --- identity ----------------------------------------------------------------------------
    def find_citizen(self, id_number: str, *, channel: str, conversation_id: str, source: str = "") -> CitizenLookup:
        """Whether an ID number is valid and known (counts as a failure when it is not known)."""
        id_number = normalize_id(id_number)
        masked = mask_id_number(id_number)
        early = self._precheck(id_number, masked, channel, conversation_id, "find_citizen", source=source)
        if early:
            return CitizenLookup(found=False, valid_id=early.code != "invalid_id", masked_id=masked, reason=early.message,
                                 locked=early.code == "locked")
        with self.store.session() as s:
            row = self._citizen(s, id_number)
            self._audit(s, channel, conversation_id, "find_citizen", "ok" if row else "not_found", row, masked)
            if row is None:
                self._source_failed(s, source)
        return CitizenLookup(found=row is not None, valid_id=True, masked_id=masked)

    def verify(self, id_number: str, name: str, phone_last4: str, *, channel: str, conversation_id: str, source: str = "") -> VerificationResult:
        """Check ID number, name and the last four digits of the registered phone; never says which one was wrong."""
        id_number, last4 = normalize_id(id_number), normalize_digits(phone_last4 or "")
        masked = mask_id_number(id_number)
        if not (name or "").strip() and not explain_invalid(id_number):
            return VerificationResult(False, "invalid_input", texts.NAME_MISSING, masked_id=masked, attempts_left=self._left(conversation_id))
        if not re.fullmatch(r"\d{4}", last4) and not explain_invalid(id_number):
            return VerificationResult(False, "invalid_input", texts.LAST4_INVALID, masked_id=masked, attempts_left=self._left(conversation_id))
        with self._attempt(conversation_id, id_number, source) as s:
            early = self._precheck(id_number, masked, channel, conversation_id, "verify", s, source)
            if early:
                return early
            row = self._citizen(s, id_number)
            # compare both fields even when the first is wrong, and against dummies when the ID is unknown
            name_ok = _same(name_key(row.name if row else "\x00"), name_key(name))
            phone_ok = _same(row.phone[-4:] if row else "\x00\x00\x00\x00", last4)
            if row and name_ok and phone_ok:
                return self._pass(s, row, channel, conversation_id, "verify")
            wrong = "身份证号未登记" if row is None else "、".join(w for w, ok in (("姓名", name_ok), ("手机尾号", phone_ok)) if not ok)
            return self._fail(s, row, masked, channel, conversation_id, "verify", f"不一致：{wrong}", texts.VERIFY_MISMATCH,
                              source)

    def send_code(self, id_number: str, name: str = "", *, phone_last4: str = "", channel: str, conversation_id: str,
                  source: str = "") -> CodeSent:
        """Send a one-time code to the registered phone if the ID number and the name match (same answer either way).

        Keypad callers cannot say a name: they give the registered phone's last four digits instead, and the code,
        which only the registered phone receives, stands in for the name (`verify_code` checks it).
        """
        id_number, last4 = normalize_id(id_number), normalize_digits(phone_last4 or "")
        masked = mask_id_number(id_number)
        by_name = bool((name or "").strip())
        if not by_name and not re.fullmatch(r"\d{4}", last4):
            return CodeSent(False, "invalid_input", texts.NAME_MISSING if not last4 else texts.LAST4_INVALID, masked)
        if self.sms is None:
            return CodeSent(False, "unavailable", texts.CODE_UNAVAILABLE, masked)
        early = self._precheck(id_number, masked, channel, conversation_id, "send_code", source=source)
        if early:
            return CodeSent(False, early.code, early.message, masked)
        with self.store.session() as s:
            row = self._citizen(s, id_number)
            if by_name:
                matched = row is not None and _same(name_key(row.name), name_key(name))
            else:
                matched = row is not None and _same(row.phone[-4:], last4)
            # a decoy code under another key keeps the answer (and the resend pause) the same for wrong data
            code = self.codes.issue(self._code_key(conversation_id, id_number, decoy=not matched))
            if code is None:
                return CodeSent(False, "too_soon", texts.CODE_TOO_SOON, masked)
            minutes = max(1, self.codes.ttl // 60)
            if matched and row is not None:
                try:
                    self.sms.send(row.phone, f"【济南社保】您的验证码是{code}，{minutes}分钟内有效。工作人员不会向您索要验证码，请勿告诉他人。")
                except Exception as e:  # any gateway failure: the citizen can still use the phone's last four digits
                    self._audit(s, channel, conversation_id, "send_code", "sms_failed", row, f"{masked} {type(e).__name__}")
                    return CodeSent(False, "unavailable", texts.CODE_UNAVAILABLE, masked)
                self._audit(s, channel, conversation_id, "send_code", "ok", row, f"{masked} 验证码已发送")
            else:
                self._audit(s, channel, conversation_id, "send_code", "mismatch", row,
                            f"{masked} 未发送：{'身份证号未登记' if row is None else ('姓名不一致' if by_name else '手机尾号不一致')}")
                self._source_failed(s, source)
        return CodeSent(True, "sent", texts.CODE_SENT.format(minutes=minutes), masked)

    def verify_code(self, id_number: str, code: str, *, channel: str, conversation_id: str, source: str = "") -> VerificationResult:
        """Check a one-time code sent by `send_code` in this conversation."""
        id_number = normalize_id(id_number)
        masked = mask_id_number(id_number)
        with self._attempt(conversation_id, id_number, source) as s:
            early = self._precheck(id_number, masked, channel, conversation_id, "verify_code", s, source)
            if early:
                return early
            check = self.codes.check(self._code_key(conversation_id, id_number), normalize_digits(code or ""))
            row = self._citizen(s, id_number)
            if check is CodeCheck.OK and row is not None:
                return self._pass(s, row, channel, conversation_id, "verify_code")
            return self._fail(s, row, masked, channel, conversation_id, "verify_code", f"验证码{check.value}", texts.CODE_WRONG,
                              source)

    def end_verification(self, citizen: VerifiedCitizen) -> None:
        """Revoke the handle (the citizen cancelled, or the conversation ended)."""
        with self.store.session() as s:
            row = s.get(VerifiedSession, _token_hash(citizen.token))
            if row is not None and row.revoked_at is None and _same(row.conversation_id, citizen.conversation_id):
                row.revoked_at = self.clock()
                self._audit(s, row.channel, citizen.conversation_id, "end_verification", "ok", row.citizen_id, "")

    # --- lookups and transactions --------------------------------------------------------------
    def card_status(self, citizen: VerifiedCitizen) -> CardStatus:
        """The verified citizen's current card."""
        citizen_id, channel = self._open(citizen, "card_status")
        with self.store.session() as s:
            person = s.get(Citizen, citizen_id)
            assert person is not None
            masked = mask_id_number(person.id_number)
            card = _current_card(person.cards)
            if card is None:
                self._audit(s, channel, citizen.conversation_id, "card_status", "no_card", person, masked)
                return CardStatus(False, texts.NO_CARD, masked_id=masked)
            self._audit(s, channel, citizen.conversation_id, "card_status", "ok", person,
                        f"{masked} 卡号{mask_digits(card.card_number)} 状态{card.status}")
            state_text = texts.STATE_TEXT[card.status]
            return CardStatus(
                has_card=True,
                message=f"您尾号{card.card_number[-4:]}的社保卡：{state_text}" + (f"发卡银行：{card.bank}。" if card.bank else ""),
                status=card.status, status_text=state_text, masked_card_number=mask_digits(card.card_number),
                bank=card.bank, outlet=card.outlet, expires_on=card.expires_at,
                loss_reported_at=beijing(card.loss_reported_at),
                can_report_loss=card.status in texts.LOSS_ALLOWED, masked_id=masked,
            )

    def application_progress(self, citizen: VerifiedCitizen) -> ApplicationProgress:
        """Stage, outlet, expected collection and what to bring for the verified citizen's card."""
        citizen_id, channel = self._open(citizen, "application_progress")
        with self.store.session() as s:
            person = s.get(Citizen, citizen_id)
            assert person is not None
            masked = mask_id_number(person.id_number)
            card = _current_card(person.cards)
            if card is None:
                self._audit(s, channel, citizen.conversation_id, "application_progress", "no_card", person, masked)
                return ApplicationProgress(False, texts.NO_CARD)
            self._audit(s, channel, citizen.conversation_id, "application_progress", "ok", person,
                        f"{masked} 卡号{mask_digits(card.card_number)} 状态{card.status}")
            on_path = card.status in texts.PROGRESS_PATH
            ready = card.status == CardState.READY.value
            expected = texts.EXPECTED.get(card.status, "")
            next_step = texts.NEXT_STEP[card.status].format(outlet=card.outlet or "领卡网点")
            bring = texts.WHAT_TO_BRING if card.status in (CardState.SHIPPED.value, CardState.READY.value) else ()
            if on_path:
                where = f"领卡网点：{card.outlet}。" if card.outlet else ""
                message = f"您{cn_date(card.applied_at)}申请的社保卡：{texts.STATE_TEXT[card.status]}{where}{expected}"
            else:
                message = f"您的社保卡已经办好，现在的状态是“{card.status}”：{texts.STATE_TEXT[card.status]}"
            return ApplicationProgress(
                has_application=True, message=message, stage=card.status,
                step=texts.PROGRESS_PATH.index(card.status) + 1 if on_path else 0,
                total_steps=len(texts.PROGRESS_PATH), outlet=card.outlet,
                applied_on=beijing(card.applied_at).date() if card.applied_at else None,  # type: ignore[union-attr]
                ready_to_collect=ready, expected=expected, what_to_bring=bring, next_step=next_step,
                masked_card_number=mask_digits(card.card_number),
            )

    def send_change_code(self, citizen: VerifiedCitizen) -> CodeSent:
        """Send a one-time code to the verified citizen's registered phone, to confirm a change.

        Reading a card's status needs the verification only; changing it (the loss report) also needs
        this code: the phone's last four digits are known to relatives and guessable, the phone is not.
        """
        citizen_id, channel = self._open(citizen, "send_change_code")
        with self.store.session() as s:
            person = s.get(Citizen, citizen_id)
            assert person is not None
            masked = mask_id_number(person.id_number)
            if self.sms is None:
                self._audit(s, channel, citizen.conversation_id, "send_change_code", "unavailable", person, masked)
                return CodeSent(False, "unavailable", texts.CHANGE_CODE_UNAVAILABLE, masked)
            code = self.codes.issue(self._change_key(citizen, citizen_id))
            if code is None:
                return CodeSent(False, "too_soon", texts.CODE_TOO_SOON, masked)
            minutes = max(1, self.codes.ttl // 60)
            try:
                self.sms.send(person.phone, texts.CHANGE_CODE_SMS.format(code=code, minutes=minutes))
            except Exception as e:  # any gateway failure: no change without the code; a person can help
                self._audit(s, channel, citizen.conversation_id, "send_change_code", "sms_failed", person,
                            f"{masked} {type(e).__name__}")
                return CodeSent(False, "unavailable", texts.CHANGE_CODE_UNAVAILABLE, masked)
            self._audit(s, channel, citizen.conversation_id, "send_change_code", "ok", person, f"{masked} 验证码已发送")
            return CodeSent(True, "sent", texts.CHANGE_CODE_SENT.format(last4=person.phone[-4:], minutes=minutes), masked)

    def report_temporary_loss(self, citizen: VerifiedCitizen, code: str) -> LossResult:
        """Put the verified citizen's card under temporary loss (idempotent), with the code `send_change_code` sent."""
        citizen_id, channel = self._open(citizen, "temporary_loss")
        cid = citizen.conversation_id
        check = self.codes.check(self._change_key(citizen, citizen_id), normalize_digits(code or ""))
        with self.store.session() as s:
            person = s.get(Citizen, citizen_id)
            assert person is not None
            masked = mask_id_number(person.id_number)
            if check is not CodeCheck.OK:
                self._audit(s, channel, cid, "temporary_loss", f"code_{check.value}", person, f"{masked} 验证码{check.value}")
                return LossResult(False, f"code_{check.value}",
                                  texts.CHANGE_CODE_WRONG if check is CodeCheck.WRONG else texts.CHANGE_CODE_GONE)
            target = _loss_target(person.cards)
            if target is None:
                current = _current_card(person.cards)
                if current is None:
                    self._audit(s, channel, cid, "temporary_loss", "no_card", person, masked)
                    return LossResult(False, "no_card", texts.NO_CARD)
                reason = texts.LOSS_REFUSED.get(current.status, texts.STATE_TEXT[current.status])
                self._audit(s, channel, cid, "temporary_loss", "refused", person,
                            f"{masked} 卡号{mask_digits(current.card_number)} 状态{current.status}，不能临时挂失")
                return LossResult(False, "refused", reason, current.status, current.status, mask_digits(current.card_number))
            before, now = target.status, self.clock()
            if before != CardState.TEMP_LOSS.value:
                # conditional update: of two simultaneous reports exactly one changes the card
                changed = s.execute(
                    update(Card).where(Card.id == target.id, Card.status == before)
                    .values(status=CardState.TEMP_LOSS.value, loss_reported_at=now, updated_at=now)
                    .execution_options(synchronize_session=False)
                ).rowcount
                s.refresh(target)
                if not changed and target.status != CardState.TEMP_LOSS.value:
                    self._audit(s, channel, cid, "temporary_loss", "refused", person,
                                f"{masked} 卡号{mask_digits(target.card_number)} 状态已变为{target.status}")
                    return LossResult(False, "refused", texts.LOSS_REFUSED.get(target.status, texts.STATE_TEXT[target.status]),
                                      before, target.status, mask_digits(target.card_number))
            else:
                changed = 0
            code = "reported" if changed else "already_reported"
            reported_at = beijing(target.loss_reported_at)
            self._audit(s, channel, cid, "temporary_loss", code, person,
                        f"{masked} 卡号{mask_digits(target.card_number)} {before}→{CardState.TEMP_LOSS.value}")
            when = f"{reported_at:%Y-%m-%d %H:%M}" if reported_at else ""
            message = (f"已经为您办理临时挂失：尾号{target.card_number[-4:]}的社保卡，挂失时间{when}。" if changed else
                       f"尾号{target.card_number[-4:]}的社保卡已经在{when}临时挂失了，不用重复办理。")
            return LossResult(True, code, message, before, CardState.TEMP_LOSS.value, mask_digits(target.card_number),
                              reported_at, texts.loss_next_steps(target.bank))

    # --- helpers ----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _attempt(self, conversation_id: str, id_number: str, source: str = "") -> Iterator[Session]:
        """One verification attempt: check the limits, compare and record the outcome as one step.

        Attempts on the same conversation, the same ID number or from the same source are serialised (a lock in this
        process; PostgreSQL advisory locks across processes, held to the end of the transaction), so
        simultaneous guesses cannot all pass the limit check before any failure is recorded.
        """
        with self._attempt_lock, self.store.session() as s:
            if s.get_bind().dialect.name == "postgresql":
                keys = {f"conv:{conversation_id}", f"id:{id_number}"} | ({f"src:{_source_hash(source)}"} if source else set())
                for key in sorted(keys):
                    s.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": key})
            yield s

    @staticmethod
    def _citizen(s: Session, id_number: str) -> Citizen | None:
        return s.scalar(select(Citizen).where(Citizen.id_number == id_number))

    @staticmethod
    def _change_key(citizen: VerifiedCitizen, citizen_id: int) -> str:
        """One change code per verification (a new verification needs a new code)."""
        return f"change\x00{citizen.conversation_id}\x00{citizen_id}\x00{_token_hash(citizen.token)}"

    @staticmethod
    def _code_key(conversation_id: str, id_number: str, decoy: bool = False) -> str:
        return f"{conversation_id}\x00{id_number}" + ("\x00decoy" if decoy else "")

    def _failures(self, s: Session, conversation_id: str, citizen_id: int | None = None) -> int:
        q = select(func.count()).select_from(AuditEntry).where(AuditEntry.action.in_(VERIFY_ACTIONS), AuditEntry.outcome.in_(FAILED))
        if citizen_id is None:
            q = q.where(AuditEntry.conversation_id == conversation_id)
        else:
            q = q.where(AuditEntry.citizen_id == citizen_id, AuditEntry.at >= self.clock() - dt.timedelta(hours=24))
        return int(s.scalar(q) or 0)

    def _left(self, conversation_id: str) -> int:
        with self.store.session() as s:
            return max(0, self.max_failures - self._failures(s, conversation_id))

    def _precheck(self, id_number: str, masked: str, channel: str, conversation_id: str, action: str,
                  session: Session | None = None, source: str = "") -> VerificationResult | None:
        """Refuse early: a malformed ID number (not counted as a failure), a locked conversation, a source
        (client address, caller number) or a citizen whose remote verification is slowed down after repeated failures."""
        reason = explain_invalid(id_number)
        with (contextlib.nullcontext(session) if session is not None else self.store.session()) as s:
            left = max(0, self.max_failures - self._failures(s, conversation_id))
            if reason:
                self._audit(s, channel, conversation_id, action, "invalid_id", None, masked)
                return VerificationResult(False, "invalid_id", reason, masked_id=masked, attempts_left=left)
            row = self._citizen(s, id_number)
            if left == 0:
                self._audit(s, channel, conversation_id, action, "locked", row, masked)
                return VerificationResult(False, "locked", texts.VERIFY_LOCKED, masked_id=masked)
            wait = self._source_wait(s, source)
            if wait > dt.timedelta(0):  # one source trying many ID numbers or conversations: slow it down
                minutes = max(1, math.ceil(wait.total_seconds() / 60))
                self._audit(s, channel, conversation_id, action, "source_slowed", row, f"{masked} 来源需等待{minutes}分钟")
                return VerificationResult(False, "slow_down", texts.VERIFY_SOURCE_SLOW_DOWN.format(minutes=minutes),
                                          masked_id=masked, attempts_left=left)
            wait = self._citizen_wait(s, row.id) if row is not None else dt.timedelta(0)
            if wait > dt.timedelta(0):
                minutes = max(1, math.ceil(wait.total_seconds() / 60))
                self._audit(s, channel, conversation_id, action, "slowed", row, f"{masked} 需等待{minutes}分钟")
                return VerificationResult(False, "slow_down", texts.VERIFY_SLOW_DOWN.format(minutes=minutes), masked_id=masked,
                                          attempts_left=left)
        return None

    def _citizen_wait(self, s: Session, citizen_id: int) -> dt.timedelta:
        """How long the citizen's next remote verification must wait.

        Failures for one citizen across conversations (24 hours) never lock the citizen out: a stranger
        who knows an ID number could otherwise shut its owner out of self-service. From
        `max_failures_per_citizen` on, each further failure doubles the wait (1 minute, 2, 4 … at most
        an hour), which makes guessing the phone's last four digits hopeless and costs the owner at
        most an hour, with a person always on offer.
        """
        since = self.clock() - dt.timedelta(hours=24)
        n, last = s.execute(
            select(func.count(), func.max(AuditEntry.at)).select_from(AuditEntry).where(
                AuditEntry.citizen_id == citizen_id, AuditEntry.action.in_(VERIFY_ACTIONS),
                AuditEntry.outcome.in_(FAILED), AuditEntry.at >= since)).one()
        return self._backoff(n, self.max_failures_per_citizen, last)

    def _backoff(self, failures: int | None, free: int, last: dt.datetime | None) -> dt.timedelta:
        """The wait left after `failures` recent failures, the last at `last`: none below `free`, then
        SLOW_DOWN_FIRST doubling with each further failure, at most SLOW_DOWN_LONGEST."""
        if not failures or failures < free or last is None:
            return dt.timedelta(0)
        wait = min(SLOW_DOWN_FIRST * 2 ** (failures - free), SLOW_DOWN_LONGEST)
        if last.tzinfo is None and self.clock().tzinfo is not None:
            last = last.replace(tzinfo=self.clock().tzinfo)
        return max(dt.timedelta(0), last + wait - self.clock())

    def _source_wait(self, s: Session, source: str) -> dt.timedelta:
        """How long the next verification from this source must wait.

        The per-conversation limit alone lets a source open new conversations; the per-citizen limit lets it
        try many ID numbers. From `max_failures_per_source` failures within an hour on, each further failure
        from the source doubles its wait (1 minute … an hour). Only that source waits: the citizens it tried
        can still verify from their own phone or browser. No source (a PBX peer that does not pass the
        caller's number): no per-source limit, the other two still hold.
        """
        if not source:
            return dt.timedelta(0)
        n, last = s.execute(select(func.count(), func.max(SourceFailure.at)).where(
            SourceFailure.source_hash == _source_hash(source), SourceFailure.at >= self.clock() - SOURCE_WINDOW)).one()
        return self._backoff(n, self.max_failures_per_source, last)

    def _source_failed(self, s: Session, source: str) -> None:
        """Count a failure against its source (hashed; rows older than a day are dropped)."""
        if not source:
            return
        now = self.clock()
        s.add(SourceFailure(source_hash=_source_hash(source), at=now))
        s.execute(delete(SourceFailure).where(SourceFailure.at < now - dt.timedelta(days=1)))

    def _pass(self, s: Session, row: Citizen, channel: str, conversation_id: str, action: str) -> VerificationResult:
        token, now = secrets.token_urlsafe(32), self.clock()
        s.add(VerifiedSession(token_hash=_token_hash(token), citizen_id=row.id, conversation_id=conversation_id,
                              channel=channel, created_at=now, expires_at=now + self.verified_for))
        masked = mask_id_number(row.id_number)
        self._audit(s, channel, conversation_id, action, "ok", row, f"{masked} {mask_name(row.name)} 核验通过")
        return VerificationResult(True, "ok", texts.VERIFY_OK, VerifiedCitizen(token, conversation_id), masked,
                                  mask_name(row.name), max(0, self.max_failures - self._failures(s, conversation_id)))

    def _fail(self, s: Session, row: Citizen | None, masked: str, channel: str, conversation_id: str, action: str,
              detail: str, message: str, source: str = "") -> VerificationResult:
        self._audit(s, channel, conversation_id, action, "mismatch", row, f"{masked} {detail}")
        self._source_failed(s, source)
        s.flush()
        left = max(0, self.max_failures - self._failures(s, conversation_id))
        if left == 0:
            return VerificationResult(False, "locked", texts.VERIFY_LOCKED, masked_id=masked)
        return VerificationResult(False, "mismatch", message, masked_id=masked, attempts_left=left)

    def _open(self, citizen: VerifiedCitizen, action: str) -> tuple[int, str]:
        """The citizen id behind a live handle of this conversation; else audit and raise VerificationRequired."""
        if not isinstance(citizen, VerifiedCitizen):
            raise VerificationRequired()
        with self.store.session() as s:
            row = s.get(VerifiedSession, _token_hash(citizen.token or ""))
            live = (row is not None and row.revoked_at is None and row.expires_at > self.clock()
                    and _same(row.conversation_id, citizen.conversation_id))
            if live and row is not None:
                return row.citizen_id, row.channel
            self._audit(s, row.channel if row else "", citizen.conversation_id, action, "not_verified", None,
                        "无效或过期的核验凭证")
        raise VerificationRequired()

    def _audit(self, s: Session, channel: str, conversation_id: str, action: str, outcome: str,
               citizen: Citizen | int | None, detail: str) -> None:
        names = (citizen.name,) if isinstance(citizen, Citizen) else ()
        citizen_id = citizen.id if isinstance(citizen, Citizen) else citizen
        s.add(AuditEntry(at=self.clock(), actor=self.actor, channel=(channel or "")[:16], conversation_id=(conversation_id or "")[:128],
                         action=action, citizen_id=citizen_id, detail=mask_text(detail, names), outcome=outcome))


def _source_hash(source: str) -> str:
    return hashlib.sha256(f"cardsys-source\x00{source}".encode()).hexdigest()


def _newest_first(cards: list[Card]) -> list[Card]:
    return sorted(cards, key=lambda c: (c.applied_at, c.id), reverse=True)


def _current_card(cards: list[Card]) -> Card | None:
    """The newest card that is not cancelled, else the newest card."""
    ordered = _newest_first(cards)
    return next((c for c in ordered if c.status != CardState.CANCELLED.value), ordered[0] if ordered else None)


def _loss_target(cards: list[Card]) -> Card | None:
    """The card a loss report is about: one in the citizen's hands first, then one waiting at the outlet."""
    in_hand = {CardState.ACTIVE.value, CardState.COLLECTED.value, CardState.TEMP_LOSS.value}
    candidates = [c for c in _newest_first(cards) if c.status in in_hand | {CardState.READY.value}]
    candidates.sort(key=lambda c: c.status not in in_hand)  # stable: keeps newest first within each group
    return candidates[0] if candidates else None
