"""Spoken and typed Chinese numbers → digits, for ID, phone and card numbers.

Handles every way of saying a digit in common.digits (零/〇/洞, 一/幺, 二/两, 拐, 勾, 壹贰叁…),
full-width digits, separators (spaces, dashes, 杠), fillers (嗯, 是, 然后…), repetitions
("三个八" → 888) and keypad (DTMF) strings where * stands for X and # ends the number.
X (叉, x, *) only survives as the last character, where an ID number's check character sits.
Words that merely contain a digit character (一下, 两个, 零钱) are left out.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from cardsys.idnumber import is_valid_id
from common.digits import DIGIT_OF, X_WORDS

_DIGIT_CHARS = "".join(DIGIT_OF)
_COUNT_CHARS = "二两三四五六七八九23456789"

_TOKEN = re.compile(
    rf"(?P<rep>(?P<count>[{_COUNT_CHARS}])个(?P<repdigit>[{_DIGIT_CHARS}]))"
    rf"|(?P<digit>[{_DIGIT_CHARS}])"
    r"|(?P<x>" + "|".join(X_WORDS) + r"|\*)"
    r"|(?P<sep>\s+|横杠|[,，、.。;；:：\-—–_~/#()（）\[\]【】\"'“”‘’!！?？杠])"
    r"|(?P<filler>然后|那个|就是|嗯|呃|额|啊|哦|噢|唔|是)"
    r"|(?P<other>.)",
    re.S,
)
MIN_SPOKEN_RUN = 3  # shorter runs of Chinese digit characters inside other words are words (一下, 两个)


@dataclass
class _Run:
    text: str = ""
    real: int = 0  # digits, not counting X
    typed: bool = False  # holds an ASCII digit or keypad *


def _runs(text: str) -> list[str]:
    """The number runs of a text, each as digits with X where it was said; words are left out."""
    text = unicodedata.normalize("NFKC", text or "")
    tokens = [(m.lastgroup if m.lastgroup not in ("count", "repdigit") else "rep", m) for m in _TOKEN.finditer(text)]
    has_words = any(kind == "other" for kind, _ in tokens)
    runs: list[_Run] = []
    current: _Run | None = None
    for i, (kind, m) in enumerate(tokens):
        if kind == "other":
            current = None
            continue
        if kind in ("sep", "filler"):
            continue
        if kind == "rep":
            if i + 1 < len(tokens) and tokens[i + 1][0] == "other":  # "三个一样的卡": a count of things, not a number
                current = None
                continue
            piece = DIGIT_OF[m.group("repdigit")] * int(DIGIT_OF[m.group("count")])
        elif kind == "digit":
            piece = DIGIT_OF[m.group(0)]
        else:
            piece = "X"
        if current is None:
            current = _Run()
            runs.append(current)
        current.text += piece
        current.real += sum(c != "X" for c in piece)
        current.typed |= m.group(0) in "0123456789*"
    return [r.text for r in runs if r.real and (r.real >= MIN_SPOKEN_RUN or r.typed or not has_words)]


def _only_last_x(digits: str) -> str:
    """Drop every X that is not the final character (X only makes sense as an ID's check character)."""
    return digits[:-1].replace("X", "") + digits[-1:] if digits else digits


def normalize_digits(text: str) -> str:
    """All the digits a citizen said or typed in one message, as ASCII digits (X only at the end)."""
    return _only_last_x("".join(_runs(text)))


def _candidates(text: str) -> list[str]:
    runs = [_only_last_x(r) for r in _runs(text)]
    joined = normalize_digits(text)
    return runs + ([joined] if joined not in runs else [])


def extract_id_number(text: str) -> str | None:
    """An 18-character ID number in a message (shape only, so a wrong check digit can be explained), else None."""
    candidates = _candidates(text)
    shaped = [c for c in candidates if re.fullmatch(r"\d{17}[\dX]", c)]
    for c in shaped:
        if is_valid_id(c):
            return c
    if shaped:
        return shaped[0]
    raw = _runs(text)
    for c in [*raw, "".join(raw)]:  # an ID number run together with other digits ("…123X 138…")
        for i in range(len(c) - 17):
            if is_valid_id(c[i:i + 18]):
                return c[i:i + 18]
    return None


_PHONE = re.compile(r"1[3-9]\d{9}")


def _strip_country_code(digits: str) -> str:
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and _PHONE.fullmatch(digits[len(prefix):]):
            return digits[len(prefix):]
    return digits


def extract_phone(text: str) -> str | None:
    """An 11-digit mainland mobile number in a message (with or without +86), else None."""
    for c in _candidates(text):
        c = _strip_country_code(c.replace("X", ""))
        if _PHONE.fullmatch(c):
            return c
    return None


def extract_last4(text: str) -> str | None:
    """The last four digits of a phone number as the citizen said them (or the last 4 of a full number), else None."""
    runs = [r.replace("X", "") for r in _runs(text)]
    joined = "".join(runs)
    if len(joined) == 4:
        return joined
    fours = [r for r in runs if len(r) == 4]
    if fours:
        return fours[-1]
    phone = extract_phone(text)
    return phone[-4:] if phone else None
