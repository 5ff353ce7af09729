"""Personal data is masked in free text, read-backs and log records."""
import logging

from hypothesis import given
from hypothesis import strategies as st

from common.privacy import MaskingFilter, mask_id_number, mask_name, mask_phone, mask_text, mask_value


def test_id_number_read_back_shows_only_last_four():
    assert mask_id_number("370102199003071234") == "身份证尾号1234"


def test_phone_and_name_masks():
    assert mask_phone("13912345678") == "139****5678"
    assert mask_name("张伟") == "张*"
    assert mask_name("欧阳娜娜") == "欧**娜"
    assert mask_value("card_number", "6217001234567890123") == "****0123"


def test_mask_text_hides_every_kind_of_number():
    t = mask_text("我叫张伟，身份证37010219900307123X，电话13912345678，卡号6217001234567890123，幺三九幺二三四五六七八", names=("张伟",))
    assert "37010219900307123X" not in t and "123X" in t
    assert "13912345678" not in t and "139****5678" in t
    assert "6217001234567890123" not in t
    assert "张伟" not in t
    assert "幺三九幺二三四五六七八" not in t


@given(st.from_regex(r"[1-9]\d{16}[\dX]", fullmatch=True), st.text(max_size=20))
def test_no_id_number_survives_masking(id_number, noise):
    assert id_number not in mask_text(f"{noise}我的身份证号是{id_number}谢谢{noise}")


def test_log_filter_masks_arguments(caplog):
    logger = logging.getLogger("test.privacy")
    handler = logging.Handler()
    records = []
    handler.emit = records.append
    handler.addFilter(MaskingFilter())
    logger.addHandler(handler)
    try:
        logger.warning("citizen said %s", "电话13912345678")
    finally:
        logger.removeHandler(handler)
    assert records and "13912345678" not in records[0].getMessage()


def test_machine_identifiers_are_not_mistaken_for_personal_numbers():
    call = "CAd6d1234567893394f16bd0e5d3eb43cf29d"[:34]
    sender = "0f8c2f4e-1d2b-4c3a-9e4f-123456789012"
    line = f"call {call} caller: 我的手机13912345678；sender {sender}"
    masked = mask_text(line)
    assert call in masked and sender in masked
    assert "13912345678" not in masked and "139****5678" in masked
    # an ID number written after letters (sfz = 身份证 in pinyin initials) is still masked
    assert "370102199003071234" not in mask_text("sfz370102199003071234")
    # 32 digits with no hex letter are a number, not an identifier
    assert "37010219900307123413912345678901" not in mask_text("37010219900307123413912345678901")


SEPARATORS = st.sampled_from([" ", "-", "  ", " - ", "－", "—", ".", "\u3000", "_", "/"])


def _grouped(digits: str, cuts: list[int], sep: str) -> str:
    cuts = sorted({c for c in cuts if 2 <= c <= len(digits) - 2})
    parts, last = [], 0
    for c in cuts:
        if c - last >= 2:
            parts.append(digits[last:c])
            last = c
    parts.append(digits[last:])
    return sep.join(parts)


def _fullwidth(s: str) -> str:
    return s.translate(str.maketrans("0123456789X", "０１２３４５６７８９Ｘ"))


@given(st.from_regex(r"[1-9][0-9]{16}[0-9X]", fullmatch=True), st.lists(st.integers(2, 16), max_size=4), SEPARATORS,
       st.booleans(), st.sampled_from(["我身份证是", "身份证号：", "sfz ", "号码", ""]), st.text(max_size=10))
def test_id_numbers_in_any_grouping_are_masked(id_number, cuts, sep, wide, before, noise):
    written = _grouped(id_number, cuts, sep)
    written = _fullwidth(written) if wide else written
    masked = mask_text(f"{noise}{before}{written}，谢谢")
    digits_left = "".join(c for c in masked if c.isdigit())
    assert id_number[:14] not in digits_left, masked  # at most the last four survive
    assert id_number[6:14] not in masked.replace(" ", ""), masked  # the birth date never does


@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True), st.sampled_from([[3, 7], [3], [7], [4, 8], []]), SEPARATORS,
       st.booleans())
def test_phone_numbers_in_any_grouping_are_masked(phone, cuts, sep, wide):
    written = _grouped(phone, cuts, sep)
    written = _fullwidth(written) if wide else written
    masked = mask_text(f"我电话{written}有事打我")
    assert masked == f"我电话{phone[:3]}****{phone[-4:]}有事打我", (written, masked)


def test_dates_and_short_numbers_in_groups_are_left_alone():
    assert mask_text("我2024-01-15申请的，编号12-34") == "我2024-01-15申请的，编号12-34"
    assert mask_text("370190 19850315 001X") == "身份证尾号001X"
    assert mask_text("电话 138-1234-5678") == "电话 138****5678"
