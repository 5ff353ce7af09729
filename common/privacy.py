"""Mask citizens' personal data (ID numbers, phone numbers, card numbers, names) in text.

Used for logs (`install_masking` masks every log record of a process), transcripts, stores, analytics and
read-backs.
Read-backs use the forms citizens know from bank SMS: 身份证尾号1234, 138****5678.
One module for the whole system: the chat, the desk, the card service, the Rasa tracker store and
the phone gateway all mask with these functions.
"""
from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable
from typing import Any

from common.digits import DIGIT_OF

ID_RE = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{8})(\d{3}[\dXx])(?![0-9A-Za-z])")
PHONE_RE = re.compile(r"(?<!\d)(1[3-9]\d)(\d{4})(\d{4})(?!\d)")
LONG_DIGITS_RE = re.compile(r"(?<!\d)\d{7,}(?!\d)")
# numbers written in groups (370190 19850315 001X, 138-1234-5678, 6217 0012 3456 7890 123, 37019019850315001 X):
# judged by their digit count once the separators are removed; dates (2024-01-15, 8 digits) are left alone,
# and a time after a date (2024-01-15 10:30) is not taken for one more group
_SEP = r"[ \t\u3000\-－—–.·_/]{1,3}"
GROUPED_RE = re.compile(rf"(?<![0-9A-Za-z])\d{{2,}}(?:(?:{_SEP}\d{{2,}})*{_SEP}\d?[Xx]|(?:{_SEP}\d{{2,}})+[Xx]?)"
                        r"(?![0-9A-Za-z])(?![:：]\d)")
FULLWIDTH_DIGITS = str.maketrans("０１２３４５６７８９ＸＸｘ", "0123456789XXx")
_CN_DIGITS = "".join(c for c in DIGIT_OF if not c.isascii()) + "叉"
# digits spoken or typed in Chinese (幺三八…), alone or mixed with Arabic digits and separators
# (138 幺二三四 5678): a run holding 7 or more digits and at least one Chinese digit is masked whole
CN_DIGITS_RE = re.compile(f"[0-9Xx{_CN_DIGITS}](?:[ \t\u3000\\-－—–.·_/]{{0,3}}[0-9Xx{_CN_DIGITS}])*")
# digits typed one by one with spaces (1 3 8 1 2 3 4 5 6 7 8): read as one number
SPACED_DIGITS_RE = re.compile(r"(?<![0-9A-Za-z])\d(?:[ \t\u3000]\d){6,}(?:[ \t\u3000]?[Xx])?(?![0-9A-Za-z])")

# names introduced by the citizen (我叫张三, 姓名：李四, 本人王某某, 我老伴叫刘桂兰): the 2–4 Han characters after
# the cue are masked when they start with a common surname and are not an ordinary word (我是退休职工)
_WHO_SAYS = "我|俺|咱|本人"
_WHO_ELSE = "他|她|老人|孩子|爱人|老伴|父亲|母亲|爸爸|妈妈|我爸|我妈|俺爹|俺娘|儿子|女儿|丈夫|妻子|媳妇|对象"
_LABELS = "参保人|持卡人|申请人|户主|联系人|经办人|领取人|家属"
NAME_CUE_RE = re.compile(
    f"(?:(?:{_WHO_SAYS})的?(?:名字|姓名)?(?:叫做|名叫|叫)"
    f"|(?:{_WHO_SAYS})的?(?:名字|姓名)(?:是|为)"
    f"|(?:{_WHO_ELSE})的?(?:(?:名字|姓名)(?:叫做|叫|是)|叫做|名叫|叫)"
    f"|(?:名字|姓名|名叫)(?:叫做|叫|是|为)?[:：]?"
    f"|(?:{_LABELS})(?:姓名)?(?:是|叫)?[:：]"
    # 我是… and 本人… introduce a name less surely (我是退休职工): ordinary words are not taken for one
    f"|(?P<weak>(?:我|俺|咱)是|本人是?))[ \t\u3000]{{0,2}}"
)
# a name in a dump of slots or entities: person_name: 张三, 'person_name': '张三', 'entity': 'person_name', 'value': '张三',
# SlotSet(key: person_name, value: 张三); masked whatever its surname
NAME_FIELD_RE = re.compile(r"""(person_name['"]?\s*[:=,]\s*(?:['"]?value['"]?\s*[:=]\s*)?['"]?)([\u4e00-\u9fff·]{1,8})""")
# the ~160 most common single-character surnames (together ~90 % of the population) and compound surnames
SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔"
    "钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛"
    "邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝"
    "路游辛靳"
)
COMPOUND_SURNAMES = frozenset(
    "欧阳 司马 上官 诸葛 东方 皇甫 令狐 慕容 尉迟 长孙 宇文 司徒 夏侯 公孙 独孤 端木 南宫 西门 万俟 轩辕 呼延 澹台 申屠 "
    "公冶 闻人 百里 东郭 太史 钟离 司空".split()
)
# ordinary words that start with a surname character (我是高龄老人, 本人于是…, 我是江苏人); after 我叫 or 姓名 they are names
NOT_NAMES = frozenset(
    "高龄 高中 高校 高新 高级 高温 高兴 高血 高层 高速 高铁 高考 周末 周岁 周边 周围 周一 周二 周三 周四 周五 周六 周日 "
    "马上 江苏 江西 江北 武汉 武警 石家 金融 金额 金乡 林业 田园 方便 方面 方式 方法 安徽 安置 安全 安排 安丘 文员 文化 "
    "文件 白天 白领 单位 单身 单亲 单独 常住 常年 常州 常常 宁夏 宁阳 齐河 齐鲁 商河 章丘 曲阜 甘肃 毕业 路过 游客 成年 "
    "成都 成人 成员 关于 关系 程序 程度 孙子 孙女 于是 万一 许多 夏天 钟点 任何 任职 陆续 余额 付款 付费 施工 严重 严格 "
    "申请 申报 申领 康复 温州 苏州 郑州 龙口 黎明 顾客 谢谢 何时 黄金 黄河 毛病 韩国 沈阳 兰州 焦作 柳州 岳父 岳母 童年 "
    "凌晨 季度 辛苦 祝福 尚未 舒服 纪念 欧洲 左右 左边 包括 符合 范围 曾经 董事 胡同 邢台 华侨 贺卡 钱不 杜绝 庄稼".split()
)
# characters that end a name rather than continue it (我叫张三的卡, 我是李四想问, 本人于去年…)
NAME_STOP = frozenset("的了是在和跟与及我你他她们想要请问说讲去从给把被让叫就都也还啊呀吗嘛呢吧哦哈嗯哎诶身电手今岁姓名号"
                      "个上下这那哪什怎咋啥没不已社卡医养退丢补挂交缴领办查咨")


def mask_id_number(id_number: str) -> str:
    """身份证尾号1234 — the form used when reading an ID number back to a citizen."""
    s = (id_number or "").strip()
    return f"身份证尾号{s[-4:].upper()}" if len(s) >= 4 else "身份证号（已隐藏）"


def mask_phone(phone: str) -> str:
    """138****5678 (a number already masked so is kept)."""
    if re.fullmatch(r"\d{3}\*{4}\d{4}", (phone or "").strip()):
        return phone.strip()
    s = re.sub(r"\D", "", phone or "")
    return f"{s[:3]}****{s[-4:]}" if len(s) == 11 else "****"


def mask_name(name: str) -> str:
    """张* for two characters, 张*伟 for three or more."""
    n = (name or "").strip()
    if len(n) <= 1:
        return "*"
    if len(n) == 2:
        return n[0] + "*"
    return n[0] + "*" * (len(n) - 2) + n[-1]


def mask_digits(value: str) -> str:
    """****1234 for card numbers and other long numbers."""
    s = (value or "").strip()
    return "****" + s[-4:] if len(s) > 4 else "****"


def _id_tail(match: re.Match[str], number: str | None = None) -> str:
    """身份证尾号1234, without repeating 身份证 when the text just said it."""
    said = match.string[max(0, match.start() - 6) : match.start()]
    return ("" if "身份证" in said else "身份证") + "尾号" + (number or match.group(3))[-4:].upper()


# machine identifiers (call ids like CA + 32 hex digits, UUIDs) are not personal numbers: left as they are,
# so that log lines can still be followed by call or conversation
IDENTIFIER_RE = re.compile(
    r"((?<![0-9A-Za-z])[A-Za-z]{0,4}(?=[0-9a-f-]*[a-f])(?:[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
    r"(?![0-9A-Za-z]))"
)


def mask_text(text: str, names: tuple[str, ...] = ()) -> str:
    """Mask every ID number, phone number, long number and the given names inside free text."""
    if not text:
        return text
    # split() keeps the identifiers (the pattern is one group) at the odd positions
    return "".join(part if i % 2 else _mask_plain(part, names) for i, part in enumerate(IDENTIFIER_RE.split(text)))


def _grouped(match: re.Match[str]) -> str:
    """A number written in groups, masked like the same number written without separators."""
    digits = re.sub(r"[^0-9Xx]", "", match.group(0))
    if len(digits) == 11 and re.fullmatch(r"1[3-9]\d{9}", digits):
        return digits[:3] + "****" + digits[-4:]
    if len(digits) == 18:
        return _id_tail(match, digits) if ID_RE.fullmatch(digits) else "尾号" + digits[-4:]
    if len(digits) >= 10:
        return "尾号" + digits[-4:]
    return match.group(0)


_ESCAPE_RE = re.compile(r"\\u([0-9a-fA-F]{4})")
_ESCAPED_KEPT = frozenset(_CN_DIGITS + "０１２３４５６７８９Ｘｘ\u3000－—–·")


def _unescape(match: re.Match[str]) -> str:
    """A \\uXXXX escape (repr, JSON) of a Han character, a digit or a separator, as the character itself."""
    c = chr(int(match.group(1), 16))
    return c if c in _ESCAPED_KEPT or "\u4e00" <= c <= "\u9fff" else match.group(0)


def _chinese_digits(match: re.Match[str]) -> str:
    """A run of digits with at least one written in Chinese: masked whole when it holds 7 or more digits."""
    run = match.group(0)
    if sum(c in DIGIT_OF or c in "Xx叉" for c in run) >= 7 and any(c in _CN_DIGITS for c in run):
        return "[数字已隐藏]"
    return run


def _name_length(text: str, at: int, weak: bool) -> int:
    """Length of the name starting at `at` (surname and one or two given characters), 0 when there is none."""
    head = text[at:at + 2]
    surname = 2 if head in COMPOUND_SURNAMES else 1 if head[:1] in SURNAMES else 0
    if not surname or (weak and surname == 1 and head in NOT_NAMES):
        return 0
    given = 0
    while given < 2 and at + surname + given < len(text):
        c = text[at + surname + given]
        if not "\u4e00" <= c <= "\u9fff" or c in NAME_STOP:
            break
        given += 1
    return surname + given if given else 0


def mask_introduced_names(text: str) -> str:
    """Mask names introduced by a cue (我叫张三 -> 我叫张*, 姓名：欧阳娜娜 -> 姓名：欧**娜); other text unchanged."""
    if "person_name" in text:
        text = NAME_FIELD_RE.sub(lambda m: m.group(1) + mask_name(m.group(2)), text)
    out, last = [], 0
    for cue in NAME_CUE_RE.finditer(text):
        if cue.end() <= last:
            continue
        n = _name_length(text, cue.end(), cue.group("weak") is not None)
        if n:
            out += [text[last:cue.end()], mask_name(text[cue.end():cue.end() + n])]
            last = cue.end() + n
    return "".join(out) + text[last:] if out else text


_HAN_WORD_RE = re.compile(r"(?<![\u4e00-\u9fff])[\u4e00-\u9fff]{2,4}(?![\u4e00-\u9fff])")


def mask_contact(text: str) -> str:
    """A contact line (胡军兰 177 0000 5116): free-text masking, and a word of 2–4 Han characters starting with a
    common surname is taken for a name, since that is what a contact holds."""
    def name(m: re.Match[str]) -> str:
        word = m.group(0)
        return mask_name(word) if _name_length(word, 0, weak=False) and word[:2] not in NOT_NAMES else word
    return _HAN_WORD_RE.sub(name, mask_text(text or ""))


def _mask_plain(text: str, names: tuple[str, ...]) -> str:
    if not text:
        return text
    # escaped text (a repr or JSON in a log line: '幺\\u3000三…', "\\u5f20\\u4e09") is masked as it reads
    t = _ESCAPE_RE.sub(_unescape, text) if "\\u" in text else text
    t = t.translate(FULLWIDTH_DIGITS) if any("０" <= c <= "９" or c in "Ｘｘ" for c in t) else t
    # names first, so that a name with a digit character (李四) is not read as part of a number after it
    for n in names:
        if n and len(n) >= 2:
            t = t.replace(n, mask_name(n))
    t = mask_introduced_names(t)
    t = CN_DIGITS_RE.sub(_chinese_digits, t)
    t = SPACED_DIGITS_RE.sub(lambda m: re.sub(r"\s", "", m.group(0)), t)
    t = GROUPED_RE.sub(_grouped, t)
    t = ID_RE.sub(_id_tail, t)
    t = PHONE_RE.sub(lambda m: m.group(1) + "****" + m.group(3), t)
    return LONG_DIGITS_RE.sub(lambda m: "尾号" + m.group(0)[-4:], t)


def mask_value(kind: str, value: str) -> str:
    """Mask a slot value by its kind (id_number, phone, person_name, card_number; else mask_text)."""
    if value is None:
        return value
    return _SLOT_KINDS.get(kind, mask_text)(str(value))


_SLOT_KINDS = {
    "id_number": mask_id_number,
    "phone": mask_phone,
    "person_name": mask_name,
    "card_number": mask_digits,
}


def mask_json(value: Any, names: tuple[str, ...] = ()) -> Any:
    """Mask every string inside a JSON-like value (dicts, lists, strings); other values unchanged."""
    if isinstance(value, str):
        return mask_text(value, names)
    if isinstance(value, dict):
        return {key: mask_json(item, names) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_json(item, names) for item in value]
    return value


SLASH_RE = re.compile(r"^(/[^{@\s]+)(@[0-9.]+)?(\{.*\})?\s*$", re.S)


def mask_slash_payload(text: str) -> str:
    """A Rasa payload (/inform{"id_number": "…", "person_name": "…"}) with its entities masked by kind.

    Entities of a personal kind (id_number, phone, person_name, card_number) are masked as read-backs,
    all other values as free text; a payload that is not valid JSON is masked as free text.
    """
    m = SLASH_RE.match(text or "")
    if not m or not m.group(3):
        return mask_text(text)
    try:
        entities = json.loads(m.group(3))
    except ValueError:
        return mask_text(text)
    if not isinstance(entities, dict):
        return mask_text(text)
    masked = {}
    for key, value in entities.items():
        if key in _SLOT_KINDS and isinstance(value, (str, int)):
            masked[key] = mask_value(key, str(value))
        elif key in _SLOT_KINDS and isinstance(value, list):
            masked[key] = [mask_value(key, str(v)) if isinstance(v, (str, int)) else mask_json(v) for v in value]
        else:
            masked[key] = mask_json(value)
    return mask_text(m.group(1)) + (m.group(2) or "") + json.dumps(masked, ensure_ascii=False)


def mask_slots(slots: dict[str, Any]) -> dict[str, Any]:
    """Mask a dict of slot values: personal slots by their kind, everything else as free text."""
    return {key: mask_value(key, value) if key in _SLOT_KINDS and isinstance(value, str) else mask_json(value)
            for key, value in (slots or {}).items()}


def mask_record(record: logging.LogRecord) -> logging.LogRecord:
    """Mask a log record in place: its message (arguments merged in), traceback and stack; done once per record."""
    if getattr(record, "_masked", False):
        return record
    try:
        msg = record.getMessage()
    except Exception:  # a bad format string must not break logging
        msg = str(record.msg)
    record.msg, record.args = mask_text(msg), None
    if record.exc_info and not record.exc_text:
        # a traceback ends with the exception's message, which may quote what the citizen said
        record.exc_text = mask_text(logging.Formatter().formatException(record.exc_info))
    elif record.exc_text:
        record.exc_text = mask_text(record.exc_text)
    if record.stack_info:
        record.stack_info = mask_text(record.stack_info)
    record._masked = True
    return record


class MaskingFilter(logging.Filter):
    """A logging filter that masks personal data in every record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drops it."""
        mask_record(record)
        return True


def _masking_factory(previous: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    """A log record factory that masks every record its predecessor makes."""
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return mask_record(previous(*args, **kwargs))
    factory.masks_personal_data = True  # type: ignore[attr-defined]
    return factory


_STRUCTLOG_KEEP = frozenset({"exc_info", "stack_info", "level", "log_level", "timestamp", "logger"})


def _loggable(value: Any) -> Any:
    """A masked, JSON-ready copy of a value logged through structlog (other objects by their repr).

    Personal values are masked by their kind where the structure names it: {"person_name": …} and
    entities {"entity": "person_name", "value": …}.
    """
    if isinstance(value, str):
        return mask_text(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, dict):
        entity = value.get("entity")
        kinds = {k: entity if k == "value" and entity in _SLOT_KINDS else k for k in value}
        return {str(k): mask_value(kinds[k], v) if kinds[k] in _SLOT_KINDS and isinstance(v, str) else _loggable(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_loggable(v) for v in value]
    return mask_text(repr(value))


def mask_structlog_event(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """A structlog processor (Rasa logs this way): mask every value before it is rendered."""
    return {k: v if k in _STRUCTLOG_KEEP else _loggable(v) for k, v in event_dict.items()}


def install_masking(logger: logging.Logger | None = None) -> None:
    """Mask personal data in every log line of this process; safe to call more than once.

    Three layers, because records reach output by different paths: a record factory masks each record
    as it is made (every logger, also loggers and handlers created later, e.g. by Sanic or Rasa; a filter
    on one logger would miss records propagated from its children); a filter on every handler of the
    root logger (or the given one) catches records built without the factory; and when structlog is
    loaded (Rasa's processor logs parse data and events through it), a first processor masks each event.
    """
    target = logger or logging.getLogger()
    if not target.handlers and logger is None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for h in target.handlers:
        if not any(isinstance(f, MaskingFilter) for f in h.filters):
            h.addFilter(MaskingFilter())
    current = logging.getLogRecordFactory()
    if not getattr(current, "masks_personal_data", False):
        logging.setLogRecordFactory(_masking_factory(current))
    structlog = sys.modules.get("structlog")
    if structlog is not None:
        processors = structlog.get_config().get("processors")
        # the list is shared with loggers already bound (and cached), so it is changed in place
        if isinstance(processors, list) and mask_structlog_event not in processors:
            processors.insert(0, mask_structlog_event)
