"""Mask citizens' personal data (ID numbers, phone numbers, card numbers, names) in text.

Used for logs, transcripts shown to the wrong audience, analytics and read-backs.
Read-backs use the forms citizens know from bank SMS: 身份证尾号1234, 138****5678.
One module for the whole system: the chat, the desk, the card service, the Rasa tracker store and
the phone gateway all mask with these functions.
"""
from __future__ import annotations

import logging
import re
from typing import Any

from common.digits import DIGIT_OF

ID_RE = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{8})(\d{3}[\dXx])(?![0-9A-Za-z])")
PHONE_RE = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)")
LONG_DIGITS_RE = re.compile(r"(?<!\d)\d{7,}(?!\d)")
# numbers written in groups (370190 19850315 001X, 138-1234-5678, 6217 0012 3456 7890 123): judged by
# their digit count once the separators are removed; dates (2024-01-15, 8 digits) are left alone
GROUPED_RE = re.compile(r"(?<![0-9A-Za-z])\d{2,}(?:[ \t\u3000\-－—–.·_/]{1,3}\d{2,})+[Xx]?(?![0-9A-Za-z])")
FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９ＸＸｘ", "0123456789XXx")
# digits spoken or typed in Chinese (幺三八…): 7 or more in a row are masked too
CN_DIGITS_RE = re.compile("[" + "".join(c for c in DIGIT_OF if not c.isascii()) + "叉]{7,}")


def mask_id_number(id_number: str) -> str:
    """身份证尾号1234 — the form used when reading an ID number back to a citizen."""
    s = (id_number or "").strip()
    return f"身份证尾号{s[-4:].upper()}" if len(s) >= 4 else "身份证号（已隐藏）"


def mask_phone(phone: str) -> str:
    """138****5678."""
    s = re.sub(r"\D", "", phone or "")
    return f"{s[:3]}****{s[-4:]}" if len(s) == 11 else "****"


def mask_name(name: str) -> str:
    """张* for two characters, 张*伟 for three or more."""
    n = (name or "").strip()
    if len(n) <= 1:
        return "*"
    if len(n) == 2:
        return n[0] + "*"
    return n[0] + "*" * (len(n) - 2) + n[-1]


def mask_digits(value: str) -> str:
    """****1234 for card numbers and other long numbers."""
    s = (value or "").strip()
    return "****" + s[-4:] if len(s) > 4 else "****"


def _id_tail(match: re.Match[str]) -> str:
    """身份证尾号1234, without repeating 身份证 when the text just said it."""
    said = match.string[max(0, match.start() - 6) : match.start()]
    return ("" if "身份证" in said else "身份证") + "尾号" + match.group(3)[-4:].upper()


# machine identifiers (call ids like CA + 32 hex digits, UUIDs) are not personal numbers: left as they are,
# so that log lines can still be followed by call or conversation
IDENTIFIER_RE = re.compile(
    r"((?<![0-9A-Za-z])[A-Za-z]{0,4}(?=[0-9a-f-]*[a-f])(?:[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
    r"(?![0-9A-Za-z]))"
)


def mask_text(text: str, names: tuple[str, ...] = ()) -> str:
    """Mask every ID number, phone number, long number and the given names inside free text."""
    if not text:
        return text
    # split() keeps the identifiers (the pattern is one group) at the odd positions
    return "".join(part if i % 2 else _mask_plain(part, names) for i, part in enumerate(IDENTIFIER_RE.split(text)))


def _grouped(match: re.Match[str]) -> str:
    """A number written in groups, masked like the same number written without separators."""
    digits = re.sub(r"[^0-9Xx]", "", match.group(0))
    if len(digits) == 11 and re.fullmatch(r"1[3-9]\d{9}", digits):
        return digits[:3] + "****" + digits[-4:]
    if len(digits) == 18:
        return _id_tail(ID_RE.fullmatch(digits)) if ID_RE.fullmatch(digits) else "尾号" + digits[-4:]
    if len(digits) >= 10:
        return "尾号" + digits[-4:]
    return match.group(0)


def _mask_plain(text: str, names: tuple[str, ...]) -> str:
    if not text:
        return text
    t = text.translate(FULLWIDTH_DIGITS) if any("０" <= c <= "９" for c in text) else text
    t = GROUPED_RE.sub(_grouped, t)
    t = ID_RE.sub(_id_tail, t)
    t = PHONE_RE.sub(lambda m: m.group(1) + "****" + m.group(3), t)
    t = LONG_DIGITS_RE.sub(lambda m: "尾号" + m.group(0)[-4:], t)
    t = CN_DIGITS_RE.sub("[数字已隐藏]", t)
    for n in names:
        if n and len(n) >= 2:
            t = t.replace(n, mask_name(n))
    return t


def mask_value(kind: str, value: str) -> str:
    """Mask a slot value by its kind (id_number, phone, person_name, card_number; else mask_text)."""
    if value is None:
        return value
    return _SLOT_KINDS.get(kind, mask_text)(str(value))


_SLOT_KINDS = {
    "id_number": mask_id_number,
    "phone": mask_phone,
    "person_name": mask_name,
    "card_number": mask_digits,
}


def mask_json(value: Any) -> Any:
    """Mask every string inside a JSON-like value (dicts, lists, strings); other values unchanged."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {key: mask_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_json(item) for item in value]
    return value


def mask_slots(slots: dict[str, Any]) -> dict[str, Any]:
    """Mask a dict of slot values: personal slots by their kind, everything else as free text."""
    return {key: mask_value(key, value) if key in _SLOT_KINDS and isinstance(value, str) else mask_json(value)
            for key, value in (slots or {}).items()}


class MaskingFilter(logging.Filter):
    """A logging filter that masks personal data in every record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drops it."""
        try:
            msg = record.getMessage()
        except Exception:  # a bad format string must not break logging
            msg = str(record.msg)
        record.msg, record.args = mask_text(msg), None
        return True


def install_masking(logger: logging.Logger | None = None) -> None:
    """Attach MaskingFilter to every handler of the root logger (or the given one)."""
    target = logger or logging.getLogger()
    if not target.handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for h in target.handlers:
        if not any(isinstance(f, MaskingFilter) for f in h.filters):
            h.addFilter(MaskingFilter())
