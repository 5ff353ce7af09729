"""Resident ID numbers (居民身份证号码, GB 11643-1999): check digit, validation, birth date, gender.

Layout of the 18 characters: 6-digit area code, 8-digit birth date (YYYYMMDD), 3-digit
sequence (odd for men, even for women) and a check character (0-9 or X, ISO 7064 MOD 11-2).
"""
from __future__ import annotations

import datetime as dt
import re

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"
# first two digits of GB/T 2260 province-level codes; 71 Taiwan, 81 Hong Kong, 82 Macao,
# 83 residence permits of Taiwan residents
PROVINCES = frozenset(
    {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46,
     50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83}
)
EARLIEST_BIRTH = dt.date(1900, 1, 1)
_SHAPE = re.compile(r"\d{17}[\dX]")


def normalize_id(s: str) -> str:
    """Strip spaces and make a trailing x upper-case; nothing else is changed."""
    return re.sub(r"\s+", "", s or "").upper()


def check_digit(first17: str) -> str:
    """The check character (0-9 or X) of the first 17 digits of an ID number."""
    if not re.fullmatch(r"\d{17}", first17 or ""):
        raise ValueError("check_digit needs exactly 17 digits")
    total = sum(int(c) * w for c, w in zip(first17, WEIGHTS, strict=True))
    return CHECK_CHARS[total % 11]


def has_valid_check_digit(s: str) -> bool:
    """True when an 18-character number's last character matches its check digit (shape only, no date check)."""
    s = normalize_id(s)
    return bool(_SHAPE.fullmatch(s)) and check_digit(s[:17]) == s[17]


def _birth(s: str) -> dt.date | None:
    try:
        return dt.date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        return None


def explain_invalid(s: str, today: dt.date | None = None) -> str | None:
    """A short Chinese reason the citizen can act on, or None when the ID number is valid."""
    s = normalize_id(s)
    if not s:
        return "没有听到身份证号码，请再说一遍。"
    if len(s) != 18:
        return f"长度不对：身份证号码是18位，您提供的是{len(s)}位。"
    if not _SHAPE.fullmatch(s):
        return "格式不对：身份证号码前17位都是数字，只有最后一位可能是X。"
    if int(s[:2]) not in PROVINCES or s[2:6] == "0000":
        return "前6位的地区码不对，请再核对一下。"
    born = _birth(s)
    if born is None or born < EARLIEST_BIRTH or born > (today or dt.date.today()):
        return "出生日期不对：第7到14位应该是出生的年月日，请再核对一下。"
    if check_digit(s[:17]) != s[17]:
        return "校验位不对：可能有一位数字说错或听错了，请再核对一下。"
    return None


def is_valid_id(s: str, today: dt.date | None = None) -> bool:
    """True for an 18-digit ID number with a plausible area code, a real past birth date and a matching check digit."""
    return explain_invalid(s, today) is None


def birth_date(s: str) -> dt.date:
    """The holder's date of birth; raises ValueError if the number is not valid."""
    reason = explain_invalid(s)
    if reason:
        raise ValueError(reason)
    born = _birth(normalize_id(s))
    assert born is not None  # explain_invalid checked it
    return born


def gender(s: str) -> str:
    """男 or 女, from the parity of the 17th digit; raises ValueError if the number is not valid."""
    reason = explain_invalid(s)
    if reason:
        raise ValueError(reason)
    return "男" if int(normalize_id(s)[16]) % 2 else "女"


def compose_id(area_code: str, born: dt.date, sequence: int) -> str:
    """Build a valid ID number from its parts (for synthetic test data; never for real people)."""
    if not re.fullmatch(r"\d{6}", area_code) or not 0 <= sequence <= 999:
        raise ValueError("compose_id needs a 6-digit area code and a sequence between 0 and 999")
    first17 = f"{area_code}{born:%Y%m%d}{sequence:03d}"
    return first17 + check_digit(first17)
