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
    "设保": "社保", "社报": "社保", "射保": "社保", "医包": "医保",
    "养老经": "养老金", "养老精": "养老金", "失业斤": "失业金", "补半": "补办", "挂思": "挂失",
    "密吗": "密码", "秘码": "密码", "激火": "激活", "进渡": "进度", "工商认定": "工伤认定",
    "生育金贴": "生育津贴", "参保整明": "参保证明", "灵活救业": "灵活就业", "转仁工": "转人工",
}
# Dialect and colloquial words (Shandong and the north) mapped to the standard words our content uses.
# Applied after the typo map, to citizens' questions and to the content alike (the lexical and the
# dense side see the same text).
DIALECT_MAP = {
    "俺们": "我们", "俺": "我", "恁": "您", "咱娘": "我母亲", "俺娘": "我母亲", "俺爹": "我父亲",
    "咋整": "怎么办", "咋弄": "怎么办", "咋办": "怎么办", "咋回事": "怎么回事", "咋": "怎么",
    "啥时候": "什么时候", "干啥": "做什么", "弄啥": "做什么", "啥": "什么",
    "木有": "没有", "没得": "没有", "中不中": "行不行", "中不": "行不", "能中不": "能行不",
    "老师儿": "", "俺家": "我家", "闺女": "女儿", "小妮儿": "女儿", "老头儿": "老伴", "老婆子": "老伴",
    "整不明白": "不明白", "弄不明白": "不明白", "找不着": "找不到", "丢哪了": "丢了",
}
USE_DIALECT = True  # the dialect map and opening removal; off only to measure what they bring (scripts/bench_answers.py)
# Phone-style openings that carry no meaning (removed at the start of a question only).
FILLER_RE = re.compile(r"^(?:[\s,，.。!！?？、~～]*(?:喂+|你好|您好|哈喽|那个|就是|嗯+|啊+|呃+|额+|哎+|唉+|"
                       r"我想问一下|我想问问|我想咨询一下|我想咨询|想问一下|问一下|请问一下|请问|咨询一下|我问一下|老师|同志|麻烦问一下))+")
# "I want to look up / find out" before a how/where/how-much question asks nothing itself: 俺想查查灵活就业咋交养老
# asks how to pay, not for a record query. Removed only when such a question word follows in the same clause.
ASK_VERB_RE = re.compile(r"(?:我)?(?:想|要)?(?:查查|查一查|查一下|了解一下|了解了解|了解下|打听一下|打听打听|问问)"
                         r"(?=[^，。？！,.?!\s]{0,12}?(?:怎么|如何|哪里|哪儿|在哪|多少|几))")
_TYPO_RE = re.compile("|".join(sorted(map(re.escape, TYPO_MAP), key=len, reverse=True)))
_DIALECT_RE = re.compile("|".join(sorted(map(re.escape, DIALECT_MAP), key=len, reverse=True)))
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
    """Full-width to half-width, lower case, known typos and dialect words mapped, openings and whitespace folded.

    >>> normalize("喂 你好 俺想问一下俺那社报卡咋挂湿")
    '我那社保卡怎么挂失'
    """
    t = unicodedata.normalize("NFKC", text or "").lower()
    t = _TYPO_RE.sub(lambda m: TYPO_MAP[m.group(0)], t)
    if USE_DIALECT:
        t = _DIALECT_RE.sub(lambda m: DIALECT_MAP[m.group(0)], t)
        t = ASK_VERB_RE.sub("", t)
        stripped = FILLER_RE.sub("", t)
        t = stripped if stripped.strip() else t  # a question that is only "你好" stays itself
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
