"""GB 11643-1999 ID numbers: the check digit (property-based), validation reasons, birth date and gender."""
from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardsys.idnumber import (
    PROVINCES,
    birth_date,
    check_digit,
    compose_id,
    explain_invalid,
    gender,
    has_valid_check_digit,
    is_valid_id,
)

seventeen = st.text(alphabet="0123456789", min_size=17, max_size=17)


@st.composite
def valid_ids(draw: st.DrawFn) -> str:
    """A well-formed ID number: real province, any county digits, a past birth date, any sequence."""
    area = f"{draw(st.sampled_from(sorted(PROVINCES)))}{draw(st.integers(1, 9999)):04d}"
    born = draw(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date.today()))
    return compose_id(area, born, draw(st.integers(0, 999)))


@given(seventeen)
def test_appending_the_computed_check_digit_always_gives_a_matching_number(first17: str) -> None:
    assert has_valid_check_digit(first17 + check_digit(first17))


@given(valid_ids())
def test_well_formed_numbers_are_valid(id_number: str) -> None:
    assert is_valid_id(id_number)
    assert explain_invalid(id_number) is None


@given(valid_ids(), st.integers(0, 17), st.sampled_from("0123456789X"))
def test_any_single_character_change_breaks_the_check(id_number: str, position: int, replacement: str) -> None:
    if position < 17 and replacement == "X":
        replacement = "0"  # X only exists as the check character
    changed = id_number[:position] + replacement + id_number[position + 1:]
    if changed != id_number:
        assert not has_valid_check_digit(changed)
        assert not is_valid_id(changed)


@given(valid_ids(), st.integers(0, 15))
def test_swapping_two_neighbouring_digits_breaks_the_check(id_number: str, i: int) -> None:
    swapped = id_number[:i] + id_number[i + 1] + id_number[i] + id_number[i + 2:]
    if swapped != id_number:
        assert not has_valid_check_digit(swapped)


def test_the_standards_example() -> None:
    assert check_digit("11010519491231002") == "X"
    assert is_valid_id("11010519491231002X")
    assert is_valid_id("11010519491231002x")  # typed in lower case
    assert birth_date("11010519491231002X") == dt.date(1949, 12, 31)
    assert gender("11010519491231002X") == "女"
    assert gender(compose_id("370102", dt.date(1990, 1, 1), 123)) == "男"


@pytest.mark.parametrize("value, reason", [
    ("", "没有听到"),
    ("37010219900101123", "长度不对"),
    ("3701021990010112345", "长度不对"),
    ("37010219900101X234", "格式不对"),
    ("990102199001011234", "地区码"),
    ("370102199002301234", "出生日期不对"),  # 30 February
    ("370102189901011234", "出生日期不对"),  # before 1900
    ("11010519491231002Y", "格式不对"),
])
def test_invalid_numbers_come_with_a_reason_the_citizen_can_act_on(value: str, reason: str) -> None:
    assert reason in (explain_invalid(value) or "")
    assert not is_valid_id(value)


def test_wrong_check_digit_and_future_birth_date() -> None:
    assert "校验位不对" in explain_invalid("110105194912310021")
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    future = compose_id("370102", tomorrow, 1)
    assert "出生日期不对" in explain_invalid(future)
    assert is_valid_id(future, today=tomorrow)


def test_birth_date_and_gender_refuse_invalid_numbers() -> None:
    with pytest.raises(ValueError, match="校验位"):
        birth_date("110105194912310021")
    with pytest.raises(ValueError):
        gender("123")
    with pytest.raises(ValueError):
        check_digit("1234")
    with pytest.raises(ValueError):
        compose_id("3701", dt.date(1990, 1, 1), 1)
