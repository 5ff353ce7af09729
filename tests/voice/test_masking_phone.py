"""Personal numbers never reach the phone gateway's logs, the desk or the call store in full.

The gateway masks with the system's one privacy module (common.privacy); these cases are what a
phone call produces: numbers typed on the keypad, spoken digit by digit, or read from slots.
"""

from __future__ import annotations

import logging

import pytest

from common.privacy import MaskingFilter, mask_json, mask_slots, mask_text


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("370102199001011234", "身份证尾号1234"),
        ("身份证370102199001011234", "身份证尾号1234"),
        ("号码37010219900101123x", "号码身份证尾号123X"),
        ("手机13812345678", "手机138****5678"),
        ("卡号6222020202020202020", "卡号尾号2020"),
        ("热线12333，2024年", "热线12333，2024年"),
        ("我的身份证是三七零一零二一九九零零一零一一二三四", "我的身份证是[数字已隐藏]"),
    ],
)
def test_mask_text(raw: str, masked: str) -> None:
    assert mask_text(raw) == masked


def test_mask_json_walks_nested_values() -> None:
    value = {"lines": ["13812345678", {"said": "37010219900101123X"}], "ok": 3, "none": None}
    assert mask_json(value) == {"lines": ["138****5678", {"said": "身份证尾号123X"}], "ok": 3, "none": None}


def test_mask_slots_masks_personal_slots_by_kind() -> None:
    slots = {"id_number": "37010219900101123x", "person_name": "张示范", "phone_last4": "6688",
             "card_goal": "progress", "failed_turns": 2, "note": "回电13812345678"}
    assert mask_slots(slots) == {"id_number": "身份证尾号123X", "person_name": "张*范", "phone_last4": "6688",
                                 "card_goal": "progress", "failed_turns": 2, "note": "回电138****5678"}


def test_logging_filter_masks_arguments(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("voice.test.masking")
    logger.addFilter(MaskingFilter())
    with caplog.at_level(logging.INFO, logger="voice.test.masking"):
        logger.info("caller said %s", "我的手机是13812345678")
    assert "13812345678" not in caplog.text
    assert "138****5678" in caplog.text
