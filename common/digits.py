"""How Chinese callers and citizens say or type digits: one table for the whole system.

Used by the card service's number extraction (cardsys.numbers) and by the phone gateway's spoken-digit
normaliser and read-back (voice.numbers). Covers 零/〇/洞, 一/幺, 二/两, radio forms (拐 7, 勾 9),
financial numerals (壹贰叁…), homophones speech recognisers write for 幺 (妖, 腰) and ASCII digits.
"""
from __future__ import annotations

DIGIT_OF: dict[str, str] = {
    "零": "0", "〇": "0", "洞": "0", "○": "0",
    "一": "1", "幺": "1", "壹": "1", "妖": "1", "腰": "1",
    "二": "2", "两": "2", "贰": "2",
    "三": "3", "叁": "3", "四": "4", "肆": "4", "五": "5", "伍": "5",
    "六": "6", "陆": "6", "七": "7", "拐": "7", "柒": "7", "八": "8", "捌": "8",
    "九": "9", "勾": "9", "玖": "9",
}
DIGIT_OF.update({d: d for d in "0123456789"})

# The ID number's check character X, as said (叉, 艾克斯) or typed (x, X; * on a phone keypad).
X_WORDS: tuple[str, ...] = ("艾克斯", "爱克斯", "叉", "x", "X")

# How the bot reads digits aloud (1 as 幺, so it is not heard as 七).
READ_AS: dict[str, str] = {"0": "零", "1": "幺", "2": "二", "3": "三", "4": "四", "5": "五", "6": "六",
                           "7": "七", "8": "八", "9": "九", "X": "叉"}
