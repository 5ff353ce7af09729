"""The card service (web chat) and the phone gateway read every spelling of a digit the same way."""
import pytest

from cardsys.numbers import normalize_digits
from common.digits import DIGIT_OF, X_WORDS
from common.privacy import mask_text
from voice.numbers import extract_number, normalise_spoken_digits


@pytest.mark.parametrize(("said", "digit"), sorted(DIGIT_OF.items()))
def test_each_spelling_of_a_digit_reads_the_same_in_chat_and_on_the_phone(said, digit):
    number = said * 3
    assert normalize_digits(number) == digit * 3
    assert normalise_spoken_digits(number) == digit * 3
    assert extract_number(number) == digit * 3


@pytest.mark.parametrize("x", X_WORDS)
def test_the_check_character_x_reads_the_same(x):
    spoken = "三七零一零二一九九零零一零一幺二三" + x
    assert normalize_digits(spoken) == "37010219900101123X"
    assert extract_number(spoken) == "37010219900101123X"


def test_spoken_numbers_in_any_spelling_are_masked():
    spoken = "妖三八腰二三四拐六勾八"  # 13812347698 as a recogniser may write it
    assert spoken not in mask_text(f"我的手机是{spoken}")
