"""Fuzzer: the number readers and the masking never fail, and what they return keeps its promises.

voice/numbers.py (spoken digits on the phone) and common/privacy.py (masking of every stored text). The
leak properties of the masking are tests/unit/test_privacy_properties.py; this file throws anything at them.
Short form in `make test`; `make fuzz` runs it with thousands of examples (tests/fuzzing.py).
"""
from __future__ import annotations

import re

from hypothesis import example, given
from hypothesis import strategies as st

from common.digits import DIGIT_OF, X_WORDS
from common.privacy import mask_slash_payload, mask_text
from tests.fuzzing import FUZZ
from voice.numbers import extract_number, normalise_spoken_digits, read_digits

SPOKEN = st.sampled_from(sorted({*DIGIT_OF, *X_WORDS, " ", "，", "-", "、", "身份证", "手机", "号", "是", "叉烧"}))
TEXTS = st.text(max_size=80) | st.lists(SPOKEN, max_size=40).map("".join)


@FUZZ
@given(TEXTS, st.integers(1, 20))
@example("幺三八一二三四五六七八", 3)
@example("叉叉叉一二三", 3)
def test_spoken_numbers_are_read_without_failing(text: str, min_run: int) -> None:
    normalised = normalise_spoken_digits(text, min_run)
    assert isinstance(normalised, str)
    number = extract_number(text, min_run)
    assert number is None or re.fullmatch(r"[0-9X]+", number), number
    if number is not None:
        assert sum(ch.isdigit() for ch in number) >= min_run


@FUZZ
@given(st.text(alphabet="0123456789X", max_size=30))
def test_digits_are_read_aloud_one_by_one(digits: str) -> None:
    spoken = read_digits(digits)
    assert isinstance(spoken, str)
    assert not re.search(r"[0-9]", spoken)  # every digit is said as a word


@FUZZ
@given(TEXTS)
@example("身份证370102199001011234手机13812345678")
def test_masking_never_fails_and_masking_twice_changes_nothing(text: str) -> None:
    masked = mask_text(text)
    assert isinstance(masked, str)
    assert mask_text(masked) == masked


@FUZZ
@given(st.text(max_size=60) | st.builds(lambda k, v: "/inform" + "{" + f'"{k}": {v}' + "}", st.text(max_size=10),
                                        st.text(max_size=20)))
def test_slash_payloads_are_masked_without_failing(text: str) -> None:
    assert isinstance(mask_slash_payload(text), str)
