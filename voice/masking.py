"""Masking of personal data (ID, phone and card numbers) for logs, the desk and the call store."""

from __future__ import annotations

import logging
import re
from typing import Any

_EDGE_L = r"(?<![0-9A-Za-z])"
_EDGE_R = r"(?![0-9A-Za-z])"
_ID_NUMBER = re.compile(_EDGE_L + r"(\d{17}[\dXx]|\d{15})" + _EDGE_R)
_MOBILE = re.compile(_EDGE_L + r"(1[3-9]\d)(\d{4})(\d{4})" + _EDGE_R)
_LONG_DIGITS = re.compile(_EDGE_L + r"(\d{8,})" + _EDGE_R)


def mask_text(text: str) -> str:
    """Mask ID numbers (身份证尾号1234), mobiles (138****5678) and other long numbers (尾号1234)."""
    def id_tail(match: re.Match[str]) -> str:
        said = match.string[max(0, match.start() - 6) : match.start()]
        prefix = "" if "身份证" in said else "身份证"
        return f"{prefix}尾号{match.group(1)[-4:].upper()}"

    text = _ID_NUMBER.sub(id_tail, text)
    text = _MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)
    return _LONG_DIGITS.sub(lambda m: f"尾号{m.group(1)[-4:]}", text)


def mask_value(value: Any) -> Any:
    """Mask every string inside a JSON-like value (dicts, lists, strings)."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {key: mask_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_value(item) for item in value]
    return value


class MaskingFilter(logging.Filter):
    """A logging filter that masks personal numbers in every record it lets through."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the record's message with its masked, fully formatted form."""
        record.msg = mask_text(record.getMessage())
        record.args = None
        return True
