"""Spoken and typed Chinese numbers → digits (property-based round trips), and ID/phone/last-4 extraction."""
from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardsys.numbers import extract_id_number, extract_last4, extract_phone, normalize_digits

SAY = {
    "0": ["零", "〇", "洞", "0", "０"], "1": ["一", "幺", "1", "１"], "2": ["二", "两", "2", "２"],
    "3": ["三", "3", "３"], "4": ["四", "4"], "5": ["五", "5"], "6": ["六", "6"], "7": ["七", "拐", "7"],
    "8": ["八", "8", "８"], "9": ["九", "勾", "9"], "X": ["叉", "X", "x", "*", "Ｘ"],
}
COUNT = {2: ["两", "二", "2"], 3: ["三", "3"], 4: ["四", "4"], 5: ["五"]}
BETWEEN = ["", "", "", " ", "，", "、", "-", "杠", " 嗯 ", "，然后", "呃"]
BEFORE = ["", "我的号码是", "号码是", "嗯，", "我的身份证号码是", "是"]
AFTER = ["", "。", "，谢谢", "#"]


@st.composite
def said_numbers(draw: st.DrawFn) -> tuple[str, str]:
    """Digits (X only at the end, like an ID number) and one way a citizen might say or type them."""
    digits = draw(st.text(alphabet="0123456789", min_size=4, max_size=20))
    if draw(st.booleans()):
        digits += "X"
    parts, i = [], 0
    while i < len(digits):
        run = len(re.match(r"(.)\1*", digits[i:]).group(0))
        if digits[i] != "X" and run >= 2 and draw(st.booleans()):  # "三个八"
            n = draw(st.integers(2, min(run, 5)))
            parts.append(draw(st.sampled_from(COUNT[n])) + "个" + draw(st.sampled_from(SAY[digits[i]])))
            i += n
        else:
            parts.append(draw(st.sampled_from(SAY[digits[i]])))
            i += 1
    text = "".join(p + draw(st.sampled_from(BETWEEN)) for p in parts[:-1]) + parts[-1]
    return digits, draw(st.sampled_from(BEFORE)) + text + draw(st.sampled_from(AFTER))


@given(said_numbers())
def test_any_way_of_saying_a_number_gives_back_its_digits(case: tuple[str, str]) -> None:
    digits, said = case
    assert normalize_digits(said) == digits


@given(st.text(max_size=40))
def test_normalising_twice_changes_nothing(text: str) -> None:
    once = normalize_digits(text)
    assert re.fullmatch(r"\d*X?", once)
    assert normalize_digits(once) == once


WORDS = ["我想问一下", "两个问题", "社保卡", "怎么办", "三张", "零钱", "叉烧包", "一样", "一起", "第一次", "四位", "，", "。", " ", "是"]


@given(st.lists(st.sampled_from(WORDS), max_size=12))
def test_words_that_contain_digit_characters_are_not_numbers(words: list[str]) -> None:
    # "一下", "两个", "零钱", "叉烧" are words: a lone digit character inside a sentence is not a number
    text = "".join(words)
    if re.search(r"[^，。 是]", text):
        assert normalize_digits(text) == ""


@pytest.mark.parametrize("said, digits", [
    ("三七零一零二 一九九零 零一零一 幺二三叉", "37010219900101123X"),
    ("幺三八 幺二三四 五六七八", "13812345678"),
    ("１３８－１２３４－５６７８", "13812345678"),
    ("138杠1234杠5678", "13812345678"),
    ("幺三八三个八幺二三四", "1388881234"),
    ("尾号四个八", "8888"),
    ("370102199001011234#", "370102199001011234"),
    ("37010219900101123*", "37010219900101123X"),
    ("叉三七零一", "3701"),  # X before other digits is noise
    ("我想问一下两个问题", ""),
    ("我有三个一样的卡", ""),
    ("叉烧包", ""),
    ("八八", "88"),  # a bare answer counts even when short
])
def test_examples(said: str, digits: str) -> None:
    assert normalize_digits(said) == digits


def test_id_numbers_in_messages() -> None:
    assert extract_id_number("我的身份证号码是三七零一九零，一九八五零三一五，零零幺叉") == "37019019850315001X"
    assert extract_id_number("37019019850315001*#") == "37019019850315001X"
    # a wrong check digit is still returned, so the bot can say what is wrong with it
    assert extract_id_number("370190198503150011") == "370190198503150011"
    assert extract_id_number("身份证37019019850315001X，手机13812345678") == "37019019850315001X"
    assert extract_id_number("37019019850315001X 13812345678") == "37019019850315001X"
    assert extract_id_number("三七零一九零一九八五零三一五零零幺") is None  # 17 digits
    assert extract_id_number("我的社保卡丢了") is None


def test_phone_numbers_in_messages() -> None:
    assert extract_phone("我的手机是幺三八 幺二三四 五六七八") == "13812345678"
    assert extract_phone("+86 138-1234-5678") == "13812345678"
    assert extract_phone("008613812345678") == "13812345678"
    assert extract_phone("12345678901") is None
    assert extract_phone("0531-12345678") is None


@pytest.mark.parametrize("said, last4", [
    ("五六七八", "5678"), ("尾号是五六七八", "5678"), ("后四位是5678", "5678"), ("后4位是5678", "5678"),
    ("6688#", "6688"), ("三个八六", "8886"), ("幺三八幺二三四五六七八", "5678"), ("嗯 六 六 八 八", "6688"),
    ("我不知道", None), ("五六七", None), ("五六七八九", None),
])
def test_last_four_digits(said: str, last4: str | None) -> None:
    assert extract_last4(said) == last4
