"""Masking holds whatever way a citizen writes a number or introduces a name (issue 12, part 4).

A leak is defined in tests/personal_data.py: a piece of the original number longer than four characters
inside one run of digits of the output, reading full-width and Chinese digits as digits and dropping the
separators numbers are written with.
"""
from __future__ import annotations

import json
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.privacy import MaskingFilter, install_masking, mask_slash_payload, mask_text
from tests.personal_data import NAME_CUES, id_sentences, leaks, names, phone_sentences


def test_the_leak_check_finds_what_it_must():
    assert leaks("37019019850315001X", "身份证 370190 19850315 001x") == sorted(
        {"37019019850315001X"[i:i + 5] for i in range(14)})
    assert leaks("13812345678", "幺三八 １２３４ 5678")
    assert leaks("13812345678", "138****5678") == [] and leaks("37019019850315001X", "身份证尾号001X") == []


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(id_sentences())
def test_no_piece_of_an_id_number_longer_than_four_survives(case):
    (w, sentence) = case
    masked = mask_text(sentence)
    assert not leaks(w.number, masked), (sentence, masked)


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(phone_sentences())
def test_no_piece_of_a_mobile_number_longer_than_four_survives(case):
    (w, sentence) = case
    masked = mask_text(sentence)
    assert not leaks(w.number, masked), (sentence, masked)


@pytest.mark.parametrize(("said", "masked"), [
    ("138 幺二三四 5678", "[数字已隐藏]"),
    ("1 3 8 1 2 3 4 5 6 7 8", "138****5678"),
    ("我叫李四 13912345678", "我叫李* 139****5678"),
    ("2024-01-15 10:30 去办的", "2024-01-15 10:30 去办的"),
])
def test_mixed_spaced_and_dated_numbers(said, masked):
    assert mask_text(said) == masked


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(st.sampled_from(NAME_CUES), names(), st.sampled_from(["", "，身份证丢了", "。想问下社保卡", " 电话多少", "的卡丢了", "我想问"]))
def test_names_introduced_by_a_cue_are_masked(cue, name, after):
    said = cue.format(name) + after
    masked = mask_text(said)
    assert name not in masked, masked
    assert masked.startswith(cue.format("")[:2]) and masked.endswith(after) and "*" in masked, masked


@pytest.mark.parametrize("sentence", [
    "我是退休职工", "我是灵活就业人员", "我叫不出名字", "我是城乡居民 养老保险一个月交多少", "我是高龄老人，行动不便",
    "我是江苏人在济南上班", "本人于去年退休", "我是外地户口", "我是个体户", "我是在职职工", "本人身份证丢了",
    "我是章丘的", "我是马上要退休了", "名字写错了怎么改", "我叫什么来着", "您好！我是济南社保智能客服，7×24 小时在线。",
])
def test_ordinary_sentences_stay_readable(sentence):
    assert mask_text(sentence) == sentence


def test_after_a_sure_cue_an_ordinary_word_is_a_name_but_not_after_我是():
    # 我叫 / 姓名 always introduce a name; 我是 may introduce a place or a trait (我是高新区的)
    assert (mask_text("我叫高新"), mask_text("姓名：高新"), mask_text("我是高新区的")) == ("我叫高*", "姓名：高*", "我是高新区的")


def test_the_verified_name_is_still_masked_anywhere():
    assert mask_text("张示范的卡到了吗", names=("张示范",)) == "张*范的卡到了吗"


def test_slash_payload_entities_are_masked_by_kind():
    payload = '/inform{"id_number": "370190 19850315 001X", "phone": "13812345678", "person_name": "张示范", ' \
              '"card_number": "6217001234567890123", "note": "我叫李四 电话13912345678", "kb_entry": "card-0001"}'
    masked = mask_slash_payload(payload)
    assert masked.startswith("/inform{")
    assert json.loads(masked[len("/inform"):]) == {
        "id_number": "身份证尾号001X", "phone": "138****5678", "person_name": "张*范", "card_number": "****0123",
        "note": "我叫李* 电话139****5678", "kb_entry": "card-0001"}
    assert mask_slash_payload("/request_human") == "/request_human"
    assert "13812345678" not in mask_slash_payload('/inform{"phone": "13812345678"')  # not JSON: masked as text


@pytest.fixture()
def logging_state():
    """Put the process's record factory and root handlers back as they were."""
    factory, handlers = logging.getLogRecordFactory(), list(logging.getLogger().handlers)
    yield
    logging.setLogRecordFactory(factory)
    for h in logging.getLogger().handlers:
        if h not in handlers:
            logging.getLogger().removeHandler(h)
    for h in handlers:
        h.filters = [f for f in h.filters if not isinstance(f, MaskingFilter)]


class Lines(logging.Handler):
    """A handler that keeps what it formats."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_masking_covers_loggers_and_handlers_created_after_it_is_installed(logging_state):
    logging.setLogRecordFactory(logging.LogRecord)  # as in a fresh process
    install_masking()
    install_masking()  # idempotent: one masking factory, one filter per handler
    # as Rasa and Sanic do after start: a logger of their own, not propagating, with its own handler
    late = logging.getLogger("test.privacy.late.sanic")
    late.propagate, late.level = False, logging.DEBUG
    lines = Lines()
    late.addHandler(lines)
    child = logging.getLogger("test.privacy.late.sanic.child")  # records propagated from a child logger
    try:
        late.info("Received user message '%s'", "我叫张三 身份证370190 19850315 001X")
        child.debug("Logged UserUtterance %s", {"text": "电话138-1234-5678"})
        try:
            raise ValueError("bad input 13812345678")
        except ValueError:
            late.exception("failed for 幺三八幺二三四五六七八")
    finally:
        late.removeHandler(lines)
    text = "\n".join(lines.lines)
    assert len(lines.lines) == 3 and "ValueError" in text
    for raw in ("张三", "19850315", "1234-5678", "13812345678", "幺三八幺二三四五六七八"):
        assert raw not in text, text
    assert "身份证尾号001X" in text and "138****5678" in text
    wrapped = logging.getLogRecordFactory()
    install_masking()
    assert logging.getLogRecordFactory() is wrapped
