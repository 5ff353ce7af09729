"""Personal numbers never reach logs, the desk or the call store in full."""

from __future__ import annotations

import logging

import pytest

from voice.masking import MaskingFilter, mask_text, mask_value


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("身份证370102199001011234", "身份证尾号1234"),
        ("号码37010219900101123x", "号码身份证尾号123X"),
        ("手机13812345678", "手机138****5678"),
        ("卡号6222020202020202020", "卡号尾号2020"),
        ("热线12333，2024年", "热线12333，2024年"),
    ],
)
def test_mask_text(raw: str, masked: str) -> None:
    assert mask_text(raw) == masked


def test_mask_value_walks_json() -> None:
    value = {"slots": {"id_number": "370102199001011234", "ok": 3}, "lines": ["13812345678"]}
    assert mask_value(value) == {"slots": {"id_number": "身份证尾号1234", "ok": 3}, "lines": ["138****5678"]}


def test_logging_filter_masks_arguments(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("voice.test.masking")
    logger.addFilter(MaskingFilter())
    with caplog.at_level(logging.INFO, logger="voice.test.masking"):
        logger.info("caller said %s", "我的手机是13812345678")
    assert "13812345678" not in caplog.text
    assert "138****5678" in caplog.text
