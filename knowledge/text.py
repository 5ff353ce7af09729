"""Text normalisation and tokenisation for retrieval: the same for content and for citizens' questions."""
from __future__ import annotations

import re
import threading
import unicodedata
from pathlib import Path

import jieba

# The jieba user dictionary is shared with the Rasa NLU pipeline (bot/jieba_dict).
USER_DICT_DIR = Path(__file__).resolve().parent.parent / "bot" / "jieba_dict"

# Frequent misspellings and speech-recognition homophones of social-security words.
# Only domain words: each maps a wrong form that is never a correct word in this domain.
TYPO_MAP = {
    "社报卡": "社保卡", "社宝卡": "社保卡", "设保卡": "社保卡", "社保咔": "社保卡",
    "元老": "养老", "养劳": "养老", "样老": "养老",
    "失叶": "失业", "失页": "失业", "实业金": "失业金", "失业经": "失业金",
    "医抱": "医保", "医宝": "医保",
    "挂矢": "挂失", "挂湿": "挂失", "解褂": "解挂",
    "工商保险": "工伤保险", "公伤": "工伤",
    "生于保险": "生育保险", "生育津帖": "生育津贴",
    "灵活就叶": "灵活就业", "零活就业": "灵活就业",
    "参保证名": "参保证明", "缴废": "缴费", "交废": "缴费",
    "认正": "认证", "退修": "退休",
}
_TYPO_RE = re.compile("|".join(sorted(map(re.escape, TYPO_MAP), key=len, reverse=True)))
_PUNCT_RE = re.compile(r"[\W_]+", re.UNICODE)
# Characters that carry no meaning for retrieval on their own.
STOP_CHARS = set("的了吗呢啊吧呀么嘛哦噢哈是我你他她它们在有和与就都也还要想请问这那个一下些吗么怎")
STOP_WORDS = {"请问", "一下", "我们", "你们", "这个", "那个", "什么", "怎么", "怎么办", "如何", "可以", "能不能",
              "是不是", "有没有", "需要", "咋", "咋办", "啥", "俺", "恁", "想", "知道", "问问", "请", "帮", "帮忙"}

_jieba_lock = threading.Lock()
_jieba_ready = False


def _ensure_jieba() -> None:
    global _jieba_ready
    with _jieba_lock:
        if _jieba_ready:
            return
        jieba.setLogLevel(60)
        for f in sorted(USER_DICT_DIR.glob("*.txt")):
            jieba.load_userdict(str(f))
        _jieba_ready = True


def normalize(text: str) -> str:
    """Full-width to half-width, lower case, known typos fixed, whitespace folded."""
    t = unicodedata.normalize("NFKC", text or "").lower()
    t = _TYPO_RE.sub(lambda m: TYPO_MAP[m.group(0)], t)
    return re.sub(r"\s+", " ", t).strip()


def words(text: str) -> list[str]:
    """jieba words of the normalised text, without punctuation and filler words."""
    _ensure_jieba()
    out = []
    for w in jieba.lcut_for_search(normalize(text)):
        w = _PUNCT_RE.sub("", w)
        if w and w not in STOP_WORDS and not (len(w) == 1 and w in STOP_CHARS):
            out.append(w)
    return out


def chars(text: str) -> list[str]:
    """Single meaningful characters and character bigrams of the normalised text."""
    t = _PUNCT_RE.sub("", normalize(text))
    uni = [c for c in t if c not in STOP_CHARS]
    bi = [t[i : i + 2] for i in range(len(t) - 1)]
    return uni + ["~" + b for b in bi]


def lexical_tokens(text: str) -> list[str]:
    """Tokens for BM25: jieba words (prefixed w:) plus characters and character bigrams."""
    return ["w:" + w for w in words(text)] + chars(text)
