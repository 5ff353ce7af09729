"""Hybrid retrieval, answer bands and re-indexing on a small fixture knowledge base."""
from pathlib import Path

import numpy as np
import pytest

from knowledge.calibration import calibrate
from knowledge.lexical import Bm25Index
from knowledge.retriever import Calibration, KnowledgeBase
from knowledge.schema import load_entries
from tests.helpers import CharHashEmbedder

SMALL = Path(__file__).resolve().parent.parent / "fixtures" / "kb_small"
NEGATIVES = ["明天天气怎么样", "公积金怎么提取", "asdfghjkl", "推荐一部电影", "驾驶证到期换证", "红烧肉怎么做"]


@pytest.fixture()
def kb(tmp_path):
    kb = KnowledgeBase(load_entries(SMALL), CharHashEmbedder(), tmp_path)
    kb.calibration = calibrate(kb, NEGATIVES)
    return kb


def test_bm25_prefers_documents_with_rare_shared_terms():
    idx = Bm25Index([["社保", "卡", "挂失"], ["失业", "金"], ["社保", "缴费"]])
    s = idx.score(["挂失", "社保"])
    assert int(np.argmax(s)) == 0
    assert s[1] == 0


@pytest.mark.parametrize("mode", ["lexical", "dense", "hybrid"])
def test_search_finds_entry_for_colloquial_question(tmp_path, mode):
    kb = KnowledgeBase(load_entries(SMALL), None if mode == "lexical" else CharHashEmbedder(), tmp_path, mode=mode)
    assert kb.mode == mode
    assert kb.search("俺的社保卡找不着了咋挂失")[0].entry.id == "test-0001"


def test_typo_is_normalised():
    kb = KnowledgeBase(load_entries(SMALL))
    assert kb.mode == "lexical"
    assert kb.search("失叶金在哪领")[0].entry.id == "test-0002"


def test_a_look_up_verb_before_a_how_question_is_not_the_question():
    from knowledge.text import normalize

    assert normalize("俺想查查灵活就业咋交养老") == "灵活就业怎么交养老"
    assert normalize("想了解一下失业金在哪领") == "失业金在哪领"
    # without a how/where/how-much question after it, looking something up is the request itself
    assert normalize("我想查查我的缴费记录") == "我想查查我的缴费记录"
    assert normalize("帮我查查社保卡进度") == "帮我查查社保卡进度"


def test_dense_mode_ignores_lexical_and_lexical_mode_ignores_dense(tmp_path):
    dense = KnowledgeBase(load_entries(SMALL), CharHashEmbedder(), tmp_path, mode="dense")
    hit = dense.search("电子社保卡怎么申领")[0]
    assert hit.score == pytest.approx(hit.dense)
    lexical = KnowledgeBase(load_entries(SMALL), CharHashEmbedder(), tmp_path, mode="lexical")
    hit = lexical.search("电子社保卡怎么申领")[0]
    assert hit.score == pytest.approx(hit.lexical) and hit.dense == 0


def test_calibration_is_fitted_not_default(kb):
    cal = kb.calibration
    assert cal.report["positives"] == 24 and cal.report["negatives"] == len(NEGATIVES)
    assert 0 <= cal.unsure_at <= cal.confident_at <= 1
    assert cal.coef != Calibration().coef


def test_bands(kb):
    assert kb.decide("社保卡丢了怎么挂失").band == "confident"
    assert kb.decide("明天天气怎么样").band == "none"
    assert kb.decide("").band == "none"
    assert kb.decide("。。。").band == "none"


def test_decision_carries_scores(kb):
    d = kb.decide("电子社保卡怎么申领")
    assert d.hits[0].entry.id == "test-0004"
    assert 0 <= d.confidence <= 1 and d.hits[0].score >= d.hits[1].score


def test_reindex_embeds_only_changed_texts(tmp_path):
    content = tmp_path / "content"
    content.mkdir()
    (content / "small.yml").write_text((SMALL / "small.yml").read_text(encoding="utf-8"), encoding="utf-8")
    emb = CharHashEmbedder()
    first = KnowledgeBase(load_entries(content), emb, tmp_path / "cache")
    assert first.embedded_now == len(first.views) + (len(first.entries) if first.weights.answer else 0)
    text = (content / "small.yml").read_text(encoding="utf-8").replace("社保卡遗失怎么处理", "社保卡弄丢了咋整")
    (content / "small.yml").write_text(text, encoding="utf-8")
    second = KnowledgeBase(load_entries(content), emb, tmp_path / "cache")
    assert second.embedded_now == 1
    assert second.search("社保卡弄丢了咋整")[0].entry.id == "test-0001"


def test_citizen_wordings_go_to_the_first_accepted_entry_and_are_searched(tmp_path):
    from knowledge.retriever import citizen_wordings

    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "a.yml").write_text(
        "items:\n"
        "  - {n: 0, text: 俺那个小卡片洗衣机里转了一圈刷不出来了, expected: [card-0002, card-0001]}\n"
        "  - {n: 1, text: 没有哪一条能答的问题, expected: []}\n", encoding="utf-8")
    extra = citizen_wordings(labels)
    assert extra == {"card-0002": ["俺那个小卡片洗衣机里转了一圈刷不出来了"]}  # first accepted only; none for []
    entries = load_entries(SMALL)
    target = "test-0003"  # about the retirement age: nothing to do with a washed card
    plain = KnowledgeBase(entries, None, tmp_path)
    kb = KnowledgeBase(entries, None, tmp_path, extra_views={target: ["俺那个小卡片洗衣机里转了一圈刷不出来了"]})
    assert len(kb.views) == len(plain.views) + 1
    assert kb.search("小卡片洗衣机里转了一圈", k=1)[0].entry.id == target
    assert plain.search("小卡片洗衣机里转了一圈", k=1)[0].entry.id != target


def test_the_shipped_index_holds_the_training_questions_and_no_evaluation_question():
    from knowledge.retriever import citizen_wordings

    extra = citizen_wordings()
    assert sum(map(len, extra.values())) > 500  # knowledge/trainset: about 600 labelled questions
    ids = {e.id for e in load_entries()}
    assert set(extra) <= ids  # every wording belongs to an existing entry


NOT_OURS = ["住房公积金怎么提取", "公积金贷款额度怎么算", "楼上邻居半夜装修太吵了", "暖气不热找谁", "驾驶证到期换证"]


def test_a_message_nearer_to_other_matters_than_to_ours_is_not_ours(tmp_path):
    kb = KnowledgeBase(load_entries(SMALL), CharHashEmbedder(), tmp_path, not_ours=NOT_OURS)
    kb.calibration = calibrate(kb, NEGATIVES)
    kb.calibration.confident_at, kb.calibration.unsure_at = 1.01, 0.0  # everything would be suggestions
    assert kb.foreign_gap(*kb.view_scores("公积金贷款额度咋算")[1:]) > 0
    assert kb.foreign_gap(*kb.view_scores("社保卡丢了咋挂失")[1:]) < 0
    kb.calibration.foreign_margin = 0.0
    foreign = kb.decide("公积金贷款额度咋算")
    assert foreign.band == "none" and foreign.not_ours
    ours = kb.decide("社保卡丢了咋挂失")
    assert ours.band == "unsure" and not ours.not_ours
    kb.calibration.foreign_margin = None  # off: the same message gets suggestions
    assert kb.decide("公积金贷款额度咋算").band == "unsure"


def test_a_confident_answer_is_never_called_not_ours(tmp_path):
    kb = KnowledgeBase(load_entries(SMALL), CharHashEmbedder(), tmp_path, not_ours=["社保卡丢了怎么挂失"])
    kb.calibration = calibrate(kb, NEGATIVES)
    kb.calibration.foreign_margin = -1.0  # any message would be foreign below the confident band
    d = kb.decide("社保卡丢了怎么挂失")
    assert d.band == "confident" and not d.not_ours


def test_the_margin_is_fitted_so_few_business_questions_are_called_not_ours(tmp_path):
    from knowledge.calibration import TARGET_NOT_OURS_BUSINESS, fit_foreign_margin

    kb = KnowledgeBase(load_entries(SMALL), CharHashEmbedder(), tmp_path, not_ours=NOT_OURS)
    kb.calibration = calibrate(kb, NEGATIVES)
    business = ["俺社保卡丢了咋整", "失业了失业金在哪领", "男的多大岁数退休", "电子社保卡在哪申请", "社保卡挂失以后咋补"]
    others = ["公积金贷款能贷多少", "邻居装修吵得睡不着", "暖气一点也不热"]
    margin = fit_foreign_margin(kb, kb.calibration, business, others)
    assert margin is not None
    gaps = [kb.foreign_gap(*kb.view_scores(q)[1:]) for q in business]
    assert sum(g > margin for g in gaps) <= TARGET_NOT_OURS_BUSINESS * len(business)
    assert kb.calibration.report["not_ours_others"] == 3
    assert 0 <= kb.calibration.report["not_ours_others_caught"] <= 1
    # without a bank the check stays off
    plain = KnowledgeBase(load_entries(SMALL), CharHashEmbedder(), tmp_path)
    assert fit_foreign_margin(plain, kb.calibration, business, others) is None



def test_a_training_question_left_out_is_ranked_as_if_the_index_had_never_seen_it(tmp_path):
    from knowledge.calibration import _labelled_rankings

    entries = load_entries(SMALL)
    question = "俺那个小卡片洗衣机里转了一圈刷不出来了"
    target = "test-0003"  # the wording is filed under an unrelated entry: only the wording itself points there
    kb = KnowledgeBase(entries, CharHashEmbedder(), tmp_path, extra_views={target: [question]})
    index = {e.id: i for i, e in enumerate(kb.entries)}
    (seen, *_), = _labelled_rankings(kb, [(question, {target})])
    (unseen, dense_e, lex_e, right, views), = _labelled_rankings(kb, [(question, {target})], leave_out=True)
    assert int(np.argmax(seen)) == index[target] and right == {index[target]}
    assert int(np.argmax(unseen)) != index[target]  # its own wording no longer answers for it
    assert views[kb.views.index(question)] == -1.0
    # and the wording left the entry's centroid: the same dense scores as an index built without it (the lexical
    # scores differ a little: BM25's term statistics count every wording)
    plain = KnowledgeBase(entries, CharHashEmbedder(), tmp_path / "plain")
    (_, fresh_dense, *_), = _labelled_rankings(plain, [(question, {target})])
    assert np.allclose(dense_e, fresh_dense, atol=1e-5)


def test_the_training_questions_kept_for_calibration_are_never_trained_on(tmp_path):
    from knowledge.retriever import trainset_questions

    (tmp_path / "card.yml").write_text("items:\n  - {text: 甲问题, expected: [card-0001]}\n"
                                       "  - {text: 没有答案的, expected: []}\n", encoding="utf-8")
    (tmp_path / "batch3_card.yml").write_text("items:\n  - {text: 乙问题, expected: [card-0002]}\n", encoding="utf-8")
    assert trainset_questions("model", tmp_path) == [("甲问题", ["card-0001"])]
    assert trainset_questions("calibration", tmp_path) == [("乙问题", ["card-0002"])]
    assert sorted(trainset_questions("all", tmp_path)) == [("乙问题", ["card-0002"]), ("甲问题", ["card-0001"])]
    from modelbuild import finetune

    learned = {t for t, _ in finetune.citizen_questions()}
    kept = {t for t, _ in trainset_questions("calibration")}
    assert kept and not learned & kept
