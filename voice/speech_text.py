"""Turns bot replies into text a phone caller can follow: numbers spelt out, no links."""

from __future__ import annotations

import re
from typing import Any

from voice.numbers import integer_to_chinese, read_digits

_URL = re.compile(r"(?:https?://|www\.)[^\s，。；！？、）)\]]+", re.IGNORECASE)
_MD_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_MD_MARKS = re.compile(r"[*_`#>|~]+")
_BULLET = re.compile(r"^\s*(?:[-•·]|\d+[.)、])\s+", re.MULTILINE)
_EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\ufe0f]")
_NUMBER = re.compile(r"(?<![0-9A-Za-z.])(\d+(?:\.\d+)?[Xx]?)(%|％)?(年)?")
_SPACES = re.compile(r"[ \t]+")
_NEWLINES = re.compile(r"\s*\n+\s*")
_DUP_PUNCT = re.compile(r"([，。；！？])[，。；！？]+")


def _say_number(match: re.Match[str]) -> str:
    number, percent, year = match.group(1), match.group(2), match.group(3) or ""
    upper = number.upper()
    if upper.endswith("X") or (len(upper) in (15, 18) and upper.isdigit()):
        return read_digits(upper, (6, 8, 4)) + year
    if "." in number:
        whole, frac = number.split(".", 1)
        spoken = integer_to_chinese(int(whole)) + "点" + "".join("零一二三四五六七八九"[int(d)] for d in frac)
        return ("百分之" + spoken if percent else spoken) + year
    if year and len(number) == 4:
        return "".join("零一二三四五六七八九"[int(d)] for d in number) + year
    if len(number) == 11 and number.startswith("1"):
        return read_digits(number, (3, 4, 4)) + year
    if len(number) >= 5 or number.startswith("0"):
        return read_digits(number) + year  # phone numbers, hotlines (12333), codes
    spoken = integer_to_chinese(int(number))
    return ("百分之" + spoken if percent else spoken) + year


def speakable(text: str) -> str:
    """Clean one reply for speech: drop URLs, markdown and emoji; read numbers aloud."""
    text = _MD_LINK.sub(r"\1", text)
    text = _URL.sub("官方网站", text)  # never read a link aloud; say where to look instead
    text = _BULLET.sub("", text)
    text = _MD_MARKS.sub("", text)
    text = _EMOJI.sub("", text)
    text = re.sub(r"(?<=\d)-(?=\d)", "，", text)
    text = _NUMBER.sub(_say_number, text)
    text = _NEWLINES.sub("，", text.strip())
    text = _SPACES.sub(" ", text)
    text = re.sub(r"[:：]\s*(?=[，。；！？]|$)", "", text)  # "网址：" left without its link
    text = _DUP_PUNCT.sub(r"\1", text)
    return text.strip(" ，")


def options_sentence(buttons: list[dict[str, Any]]) -> str:
    """Buttons as spoken options: 请说社保卡，或者按1；说医保，或者按2。"""
    parts = []
    for index, button in enumerate(buttons[:9], start=1):
        title = speakable(str(button.get("title", ""))).strip("。")
        lead = "请说" if index == 1 else "说"
        parts.append(f"{lead}{title}，或者按{integer_to_chinese(index)}")
    return "；".join(parts) + "。" if parts else ""


def reply_text(message: dict[str, Any]) -> str:
    """The text to speak for one Rasa message, preferring the knowledge base's voice answer."""
    custom = message.get("custom") or {}
    kb = custom.get("kb") if isinstance(custom, dict) else None
    voice_answer = kb.get("voice_answer") if isinstance(kb, dict) else None
    text = speakable(str(voice_answer or message.get("text") or ""))
    if text and text[-1] not in "。！？；":
        text += "。"
    buttons = message.get("buttons") or []
    return text + options_sentence(buttons) if buttons else text


def split_sentences(text: str, min_chars: int = 6) -> list[str]:
    """Sentences to synthesise one by one, so the first can play while the rest are made."""
    pieces = [p for p in re.split(r"(?<=[。！？；!?])", text) if p.strip()]
    out: list[str] = []
    for piece in pieces:
        if out and len(out[-1]) < min_chars:
            out[-1] += piece
        else:
            out.append(piece)
    return out
