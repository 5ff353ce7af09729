"""Personal data as citizens write it, for the masking property tests, and the checks that find it again.

Strategies: valid 18-digit ID numbers (GB 11643 check digit) and mobile numbers, written plain, in groups
(6-8-4, 3-4-4 or anywhere) with any separator, digit by digit, in full-width digits, in Chinese digits
(幺三八…, 叉 for X) or mixed, inside sentences; names as citizens introduce them (我叫张三).

What counts as a leak (`leaks`): the output is read as digits the way a citizen writes them — full-width and
Chinese digits count as digits, x and 叉 as X, and the separators numbers are written with (spaces and
- . · _ / in half or full width) are dropped; every other character (a letter, a Chinese character, the *
of 138****5678) ends a run of digits. A leak is a piece of the original number longer than `longest`
characters (4 by default: a mask keeps at most the last four) inside one such run.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from cardsys.idnumber import compose_id
from common.digits import DIGIT_OF
from common.privacy import NOT_NAMES

SEPARATORS = (" ", "  ", "-", " - ", ".", "·", "_", "/", "－", "—", "\u3000")
_SEPARATOR_CHARS = frozenset(" \t\u3000-－—–.·_/")
_WIDE = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")
# how each digit may be said or typed in Chinese (common.digits is the system's table)
CHINESE_FORMS: dict[str, tuple[str, ...]] = {
    d: tuple(c for c, v in DIGIT_OF.items() if v == d and not c.isascii()) for d in "0123456789"
} | {"X": ("叉",)}
AREA_CODES = ("370102", "370103", "370104", "370105", "370112", "370113", "370124", "370181", "370190", "110101",
              "310104", "440305", "510107", "410102", "130102", "230103")
MOBILE_PREFIXES = ("130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "155", "157",
                   "158", "159", "166", "170", "176", "177", "180", "181", "182", "183", "185", "186", "187", "188",
                   "189", "191", "198", "199")
SURNAMES = ("张", "王", "李", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "马", "朱", "胡", "郭", "高", "林",
            "欧阳", "司马", "诸葛")
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红玉兰凤梅新春海波"
# sentences around a number: none of their characters is a digit in any script, so every digit found
# in the output came from the number
ID_SENTENCES = ("我的身份证号是{}，麻烦帮我查查", "身份证：{}", "sfz {} 谢谢", "{}", "帮我看看{}这个号的社保卡到哪了",
                "身份证号码 {}。", "我替老人办，他的证件号{}对吧")
PHONE_SENTENCES = ("我电话{}有事打我", "手机：{}", "回电请打 {} 找我", "{}", "联系方式{}，白天都在", "号码是 {} 哦")
NAME_CUES = ("我叫{}", "俺叫{}", "我是{}", "名字叫{}", "姓名：{}", "本人{}", "我老伴叫{}", "联系人：{}", "我的名字是{}")
for _template in ID_SENTENCES + PHONE_SENTENCES + NAME_CUES:
    assert not any(c in DIGIT_OF or c in "叉xX" for c in _template), _template


@dataclass(frozen=True)
class Written:
    """A number and how a citizen wrote it."""

    number: str  # 18 characters (ID) or 11 digits (mobile)
    text: str


def id_numbers() -> st.SearchStrategy[str]:
    """Valid ID numbers: a real area code, a birth date, a sequence and the matching check digit."""
    return st.builds(compose_id, st.sampled_from(AREA_CODES), st.dates(dt.date(1935, 1, 1), dt.date(2010, 12, 31)),
                     st.integers(0, 999))


def mobile_numbers() -> st.SearchStrategy[str]:
    """Mobile numbers with a real prefix (at least three different digits in the rest, as real numbers have)."""
    rest = st.integers(0, 99_999_999).map(lambda n: f"{n:08d}").filter(lambda s: len(set(s)) >= 3)
    return st.builds(lambda p, r: p + r, st.sampled_from(MOBILE_PREFIXES), rest)


def _groups(number: str, sizes: list[int]) -> list[str]:
    parts, at = [], 0
    for size in sizes:
        if at + size >= len(number):
            break
        parts.append(number[at:at + size])
        at += size
    return parts + [number[at:]]


@st.composite
def written(draw: st.DrawFn, number: str) -> Written:
    """The number as a citizen may type or a recogniser may transcribe it."""
    kind = "id" if len(number) == 18 else "phone"
    grouping = draw(st.sampled_from(["plain", "usual", "cuts", "digit by digit"]))
    if grouping == "usual":
        parts = _groups(number, [6, 8] if kind == "id" else [3, 4])
    elif grouping == "cuts":
        parts = _groups(number, draw(st.lists(st.integers(2, 8), min_size=1, max_size=5)))
        parts = parts if len(parts[-1]) >= 2 else parts[:-2] + [parts[-2] + parts[-1]]
    elif grouping == "digit by digit":
        parts = list(number)
    else:
        parts = [number]
    script = draw(st.sampled_from(["ascii", "full width", "chinese", "mixed"]))

    def digit(c: str) -> str:
        how = script if script != "mixed" else draw(st.sampled_from(["ascii", "full width", "chinese"]))
        if how == "chinese":
            return draw(st.sampled_from(CHINESE_FORMS[c]))
        c = c if c != "X" or not draw(st.booleans()) else "x"
        return c.translate(_WIDE) if how == "full width" else c

    sep = draw(st.sampled_from((" ", "\u3000") if grouping == "digit by digit" else SEPARATORS))
    return Written(number, sep.join("".join(digit(c) for c in part) for part in parts))


@st.composite
def id_sentences(draw: st.DrawFn) -> tuple[Written, str]:
    """An ID number in a sentence."""
    w = draw(written(draw(id_numbers())))
    return w, draw(st.sampled_from(ID_SENTENCES)).format(w.text)


@st.composite
def phone_sentences(draw: st.DrawFn) -> tuple[Written, str]:
    """A mobile number in a sentence."""
    w = draw(written(draw(mobile_numbers())))
    return w, draw(st.sampled_from(PHONE_SENTENCES)).format(w.text)


def names() -> st.SearchStrategy[str]:
    """Chinese names: a common surname and one or two given characters (not an ordinary word too, like 高新)."""
    return st.builds(lambda s, g: s + g, st.sampled_from(SURNAMES), st.text(GIVEN, min_size=1, max_size=2)).filter(
        lambda name: name[:2] not in NOT_NAMES)


def sample(strategy: st.SearchStrategy, n: int) -> list:
    """n different examples of a strategy, the same on every run (for a store that is costly to start)."""
    out: list = []

    @settings(max_examples=n, derandomize=True, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(example) -> None:
        out.append(example)

    collect()
    return out


@dataclass(frozen=True)
class Citizen:
    """What one citizen may type in one conversation."""

    id_number: Written
    phone: Written
    name: str
    sentence: str  # the name, the ID number and the phone number in one line


@st.composite
def citizens(draw: st.DrawFn) -> Citizen:
    """A citizen's ID number, mobile number and name, and a line holding all three."""
    (id_w, id_s), (phone_w, phone_s), name = draw(id_sentences()), draw(phone_sentences()), draw(names())
    cue = draw(st.sampled_from(NAME_CUES)).format(name)
    return Citizen(id_w, phone_w, name, f"{cue}，{id_s}；{phone_s}")


def digit_runs(text: str) -> list[str]:
    """The runs of digits in a text, read as described in the module docstring."""
    out = []
    for c in text:
        if c in _SEPARATOR_CHARS:
            continue
        d = DIGIT_OF.get(c) or ("X" if c in "xX叉Ｘｘ" else None)
        if d is None and "０" <= c <= "９":
            d = chr(ord(c) - ord("０") + ord("0"))
        out.append(d or "|")
    return [run for run in "".join(out).split("|") if run]


def leaks(number: str, text: str, longest: int = 4) -> list[str]:
    """Pieces of `number` longer than `longest` characters found in one run of digits of `text`."""
    number = number.upper()
    runs = digit_runs(text)
    n = longest + 1
    return sorted({number[i:i + n] for i in range(len(number) - n + 1) for run in runs if number[i:i + n] in run})


_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
# machine numbers in dumps (timestamps, epoch seconds, scores) that could meet a number's digits by chance
_MACHINE_NUMBERS = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:\.\d+)?|\b1[5-9]\d{8}\.\d+|\b0\.\d+|\b1\.0\b")


def readable(text: str) -> str:
    """A dump as a person would read it: JSON's \\uXXXX escapes decoded."""
    return _UNICODE_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)


def raw_digits_in(number: str, dump: str) -> list[str]:
    """The parts of a number a mask must hide, found in a dump once separators are removed.

    Searched: the whole number, everything but its last four (what no mask shows), and for a mobile
    number its last eight (the hidden middle with the tail). Timestamps and scores are blanked first.
    """
    number = number.upper()
    hidden = [number, number[:-4]] + ([number[3:]] if len(number) == 11 else [])
    joined = "|".join(digit_runs(_MACHINE_NUMBERS.sub("|", readable(dump))))
    return [h for h in hidden if h in joined]
