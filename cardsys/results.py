"""What the card system returns to the bot: small immutable results with masked identifiers only.

Citizen-facing fields (`message`, `reason`, `next_steps`…) are short 简体中文 sentences; dates are
Beijing dates. No result ever carries a full ID number, phone number, card number or name.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

BEIJING = dt.timezone(dt.timedelta(hours=8))


def beijing(ts: dt.datetime | None) -> dt.datetime | None:
    """A naive UTC timestamp from the database as an aware Beijing time."""
    return ts.replace(tzinfo=dt.timezone.utc).astimezone(BEIJING) if ts else None


def cn_date(d: dt.date | dt.datetime | None) -> str:
    """2024年3月5日 (Beijing date of a naive UTC timestamp, or the date itself)."""
    if d is None:
        return ""
    if isinstance(d, dt.datetime):
        d = beijing(d).date()  # type: ignore[union-attr]
    return f"{d.year}年{d.month}月{d.day}日"


class VerificationRequired(Exception):
    """The handle is missing, forged, expired, revoked or from another conversation: verify again."""

    message = "为了保护您的信息，需要先核验一下身份。"


@dataclass(frozen=True)
class VerifiedCitizen:
    """Opaque proof of a verification in one conversation; the only way to reach a citizen's card data.

    Keep `token` in the conversation (a Rasa slot) and rebuild the handle with the conversation's
    own id: a token copied into another conversation does not open anything.
    """

    token: str = field(repr=False)
    conversation_id: str

    def to_slot(self) -> str:
        """The value to keep in the conversation (a random token; it reveals nothing by itself)."""
        return self.token

    @classmethod
    def from_slot(cls, token: str | None, conversation_id: str) -> VerifiedCitizen:
        """Rebuild the handle in the conversation that owns it; raises VerificationRequired without a token."""
        if not token or not conversation_id:
            raise VerificationRequired()
        return cls(token=str(token), conversation_id=conversation_id)


@dataclass(frozen=True)
class CitizenLookup:
    """Whether an ID number is known to the card system; nothing else about the person."""

    found: bool
    valid_id: bool
    masked_id: str
    reason: str = ""  # why the ID number is not valid, or that self-service is locked, for the citizen
    locked: bool = False  # too many failed verifications: offer a person


@dataclass(frozen=True)
class VerificationResult:
    """Outcome of an identity check; `citizen` is set only when it passed."""

    ok: bool
    code: str  # ok | invalid_id | invalid_input | mismatch | locked | code_sent | unavailable
    message: str  # what to tell the citizen
    citizen: VerifiedCitizen | None = None
    masked_id: str = ""
    masked_name: str = ""  # from the record, only when ok
    attempts_left: int = 0  # failed attempts the conversation may still make


@dataclass(frozen=True)
class CardStatus:
    """The verified citizen's current card."""

    has_card: bool
    message: str
    status: str = ""
    status_text: str = ""
    masked_card_number: str = ""
    bank: str = ""
    outlet: str = ""
    expires_on: dt.date | None = None
    loss_reported_at: dt.datetime | None = None  # Beijing time
    can_report_loss: bool = False
    masked_id: str = ""


@dataclass(frozen=True)
class ApplicationProgress:
    """Where the verified citizen's card application is, and what to do next."""

    has_application: bool
    message: str
    stage: str = ""
    step: int = 0  # 1..total_steps along 申请受理 → 已领取; 0 when the card is past collection or off the path
    total_steps: int = 5
    outlet: str = ""
    applied_on: dt.date | None = None
    ready_to_collect: bool = False
    expected: str = ""  # when it should be ready, in words
    what_to_bring: tuple[str, ...] = ()
    next_step: str = ""
    masked_card_number: str = ""


@dataclass(frozen=True)
class LossResult:
    """Outcome of a temporary loss report."""

    ok: bool
    code: str  # reported | already_reported | refused | no_card
    message: str
    status_before: str = ""
    status_after: str = ""
    masked_card_number: str = ""
    reported_at: dt.datetime | None = None  # Beijing time
    next_steps: tuple[str, ...] = ()


@dataclass(frozen=True)
class CodeSent:
    """Outcome of asking for a one-time code (the same answer whether or not the data matched)."""

    ok: bool
    code: str  # sent | invalid_id | locked | unavailable | too_soon
    message: str
    masked_id: str = ""
