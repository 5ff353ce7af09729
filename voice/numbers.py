"""Chinese spoken digits ⇄ written digits, for ID, phone and card numbers on the phone."""

from __future__ import annotations

import re

from common.digits import DIGIT_OF, READ_AS, X_WORDS

SPOKEN_TO_DIGIT: dict[str, str] = {**DIGIT_OF, **{word: "X" for word in X_WORDS}}

_TOKEN = "(?:" + "|".join(sorted(map(re.escape, SPOKEN_TO_DIGIT), key=len, reverse=True)) + ")"
_SEP = r"[\s,，、.。\-]*"
_RUN = re.compile(f"{_TOKEN}(?:{_SEP}{_TOKEN})*")
_TOKENS = re.compile(_TOKEN)
# X (叉) only counts inside a run of real digits: "叉烧" stays a word.
_WEAK = {"X"}


def _digits_of(run: str) -> str:
    return "".join(SPOKEN_TO_DIGIT[token] for token in _TOKENS.findall(run))


def normalise_spoken_digits(text: str, min_run: int = 3) -> str:
    """Turn runs of at least `min_run` spoken or written digits into ASCII digits (X for 叉)."""

    def replace(match: re.Match[str]) -> str:
        digits = _digits_of(match.group(0))
        real = sum(1 for d in digits if d not in _WEAK)
        if real < min_run or "X" in digits[:-1]:
            return match.group(0)
        return digits

    return _RUN.sub(replace, text)


def extract_number(text: str, min_digits: int = 3) -> str | None:
    """Keep only the digits of an answer to a number question, or None if it holds too few."""
    digits = _digits_of(" ".join(_RUN.findall(text)))
    real = sum(1 for d in digits if d not in _WEAK)
    if real < min_digits:
        return None
    # X only makes sense as an ID number's check character: drop stray ones elsewhere.
    body = digits[:-1].replace("X", "")
    return body + digits[-1]


def read_digits(digits: str, groups: tuple[int, ...] = ()) -> str:
    """Spell digits the way people read numbers aloud (1 as 幺), pausing between groups."""
    spoken = [READ_AS.get(d.upper(), d) for d in digits]
    if not groups:
        return "".join(spoken)
    parts, start = [], 0
    for size in groups:
        if start >= len(spoken):
            break
        parts.append("".join(spoken[start : start + size]))
        start += size
    if start < len(spoken):
        parts.append("".join(spoken[start:]))
    return "，".join(parts)


_UNITS = ["", "十", "百", "千"]
_CN = "零一二三四五六七八九"


def _below_10000(n: int) -> str:
    out, zero = "", False
    for power in range(3, -1, -1):
        digit = n // 10**power % 10
        if digit == 0:
            zero = bool(out)
            continue
        if zero:
            out += "零"
            zero = False
        out += _CN[digit] + _UNITS[power]
    return out


def integer_to_chinese(n: int) -> str:
    """Read an integer below 10^12 as Chinese numerals (1500 → 一千五百, 12 → 十二)."""
    if n == 0:
        return "零"
    if n < 0:
        return "负" + integer_to_chinese(-n)
    parts = [(n // 10**8, "亿"), (n // 10**4 % 10**4, "万"), (n % 10**4, "")]
    out, need_zero = "", False
    for value, unit in parts:
        if value == 0:
            need_zero = bool(out)
            continue
        if out and (need_zero or value < 1000):
            out += "零"
        out += _below_10000(value) + unit
        need_zero = False
    if out.startswith("一十"):
        out = out[1:]
    return out
