"""Chinese spoken digits ⇄ written digits, with property tests."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from voice.numbers import (
    extract_number,
    integer_to_chinese,
    normalise_spoken_digits,
    read_digits,
)

SAY = {
    "0": ["零", "洞", "〇", "0"], "1": ["一", "幺", "1"], "2": ["二", "两", "2"], "3": ["三", "3"],
    "4": ["四", "4"], "5": ["五", "5"], "6": ["六", "6"], "7": ["七", "拐", "7"], "8": ["八", "8"],
    "9": ["九", "9"], "X": ["叉", "艾克斯", "X", "x"],
}


@st.composite
def spoken_numbers(draw: st.DrawFn) -> tuple[str, str]:
    """A digit string (X only at the end, like an ID number) and one way a caller might say it."""
    digits = draw(st.text(alphabet="0123456789", min_size=3, max_size=20))
    if draw(st.booleans()):
        digits += "X"
    spoken = ""
    for digit in digits:
        spoken += draw(st.sampled_from(SAY[digit]))
        spoken += draw(st.sampled_from(["", "", " ", "，", "、"]))
    return digits, spoken.rstrip(" ，、")


@given(spoken_numbers())
def test_any_way_of_saying_a_number_normalises_to_its_digits(case: tuple[str, str]) -> None:
    digits, spoken = case
    assert normalise_spoken_digits(spoken) == digits
    assert extract_number(f"我的号码是{spoken}") == digits


@given(st.text(alphabet="我想问一下两个问题社保卡怎么办理叉烧包，。？", max_size=30))
def test_words_with_single_digit_characters_stay_words(text: str) -> None:
    # Runs of fewer than three digits are words ("两个", "一下"), not numbers.
    out = normalise_spoken_digits(text, min_run=3)
    for run in __import__("re").findall(r"[0-9X]+", out):
        assert sum(c.isdigit() for c in run) >= 3


@given(st.text(max_size=40))
def test_normalising_twice_changes_nothing(text: str) -> None:
    once = normalise_spoken_digits(text)
    assert normalise_spoken_digits(once) == once


@given(st.text(alphabet="0123456789", min_size=3, max_size=18))
def test_what_the_bot_reads_out_the_caller_can_read_back(digits: str) -> None:
    spoken = read_digits(digits, (3, 4, 4))
    assert normalise_spoken_digits(spoken) == digits


def test_examples() -> None:
    assert normalise_spoken_digits("幺三八 幺二三四 五六七八") == "13812345678"
    assert normalise_spoken_digits("我想问一下两个问题") == "我想问一下两个问题"
    assert normalise_spoken_digits("叉烧包") == "叉烧包"
    assert extract_number("三七零一零二一九九零零一零一幺二三叉") == "37010219900101123X"
    assert extract_number("好的") is None
    assert read_digits("13812345678", (3, 4, 4)) == "幺三八，幺二三四，五六七八"


def test_integers_read_as_chinese() -> None:
    cases = {0: "零", 10: "十", 12: "十二", 105: "一百零五", 1500: "一千五百", 20240: "二万零二百四十",
             100000: "十万", 1_0000_0001: "一亿零一"}
    for n, said in cases.items():
        assert integer_to_chinese(n) == said
