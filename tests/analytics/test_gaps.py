"""Knowledge gaps: which questions count, how they cluster, the nearest entries and the command line."""
from __future__ import annotations

import datetime as dt

from analytics import gaps as G
from analytics.figures import Period
from tests.analytics.conftest import Sources

CARD_LOSS = ["社保卡丢了怎么补办", "社保卡丢了怎么补办？", "俺的社保卡丢了咋补办", "喂 你好 社保卡丢了怎么补办啊", "社保卡丢了去哪补办"]
PENSION = ["退休养老金每个月几号发", "养老金每个月几号到账", "退休金每个月几号发放"]
CERTIFY = ["异地居住的老人怎么做待遇资格认证", "异地老人待遇资格认证在哪做"]


def _questions(texts: list[str], reason: str = "not_found", times: int = 1) -> list[dict]:
    return [{"text": t, "reason": reason, "entry_id": None, "channel": "web"} for t in texts for _ in range(times)]


def test_near_identical_questions_cluster_together_and_topics_apart():
    questions = _questions(CARD_LOSS, times=2) + _questions(PENSION, "unhelpful") + _questions(CERTIFY, "handoff_after")
    clusters, unclustered = G.knowledge_gaps(questions)
    assert unclustered == 0
    members = [set(t for t, _ in c.examples) for c in clusters]
    assert len(clusters) == 3, members
    assert members[0] == set(CARD_LOSS) and clusters[0].volume == 10 and clusters[0].reasons == {"not_found": 10}
    assert set(PENSION) in members and set(CERTIFY) in members
    assert any("社保卡" in k or "补办" in k for k in clusters[0].keywords)
    assert [c.volume for c in clusters] == sorted((c.volume for c in clusters), reverse=True)


def test_volume_ranks_clusters_and_a_single_odd_question_stays_alone():
    questions = _questions(PENSION, times=3) + _questions(CARD_LOSS[:2]) + _questions(["明天天气怎么样"])
    clusters, _ = G.knowledge_gaps(questions)
    assert [c.volume for c in clusters] == [9, 2, 1]
    assert clusters[-1].examples == [("明天天气怎么样", 1)]


class FakeKb:
    """A knowledge base whose search returns fixed hits (the nearest-entry lookup only needs search)."""

    def search(self, query: str, k: int = 5):
        from types import SimpleNamespace as NS

        hits = [NS(entry=NS(id="card-0536", question="社保卡丢了怎么补办？"), score=0.8),
                NS(entry=NS(id="card-0501", question="社保卡丢了怎么挂失？"), score=0.5 if "挂失" not in query else 0.9)]
        return hits[:k]


def test_each_cluster_names_its_nearest_entries():
    clusters, _ = G.knowledge_gaps(_questions(CARD_LOSS), FakeKb(), G.GapParams(nearest=2))
    assert [e["entry_id"] for e in clusters[0].nearest] == ["card-0536", "card-0501"]
    assert clusters[0].nearest[0]["question"] == "社保卡丢了怎么补办？" and clusters[0].nearest[0]["score"] == 0.8


def test_the_real_knowledge_base_finds_card_entries_for_card_questions():
    kb = G.load_knowledge()
    assert kb is not None
    clusters, _ = G.knowledge_gaps(_questions(CARD_LOSS), kb)
    assert clusters[0].nearest and all(e["entry_id"].startswith("card-") for e in clusters[0].nearest[:2])


def test_gap_questions_of_the_hand_counted_history(history: Sources):
    ingester = history.ingester()
    ingester.run()
    rows = ingester.store.call(lambda s: G.gap_questions(s, Period.days(dt.date(2026, 3, 2), 2)))
    # S2: card-0536 rated 没帮助 (and then a person: counted once, as 没帮助); S4: enrol-0018 followed by a person
    assert sorted((r["text"], r["reason"], r["entry_id"]) for r in rows) == [
        ("灵活就业怎么参保", "handoff_after", "enrol-0018"), ("社保卡丢了怎么补", "unhelpful", "card-0536")]


def test_the_command_prints_the_ranked_list(history: Sources, monkeypatch, capsys):
    ingester = history.ingester()
    ingester.run()
    monkeypatch.setenv("ANALYTICS_DATABASE_URL", history.analytics_url)
    assert G.main(["--month", "2026-03", "--no-knowledge"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("2 gap questions in 2 clusters")
    assert "社保卡丢了怎么补" in out and "答过的条目: card-0536 ×1" in out and "灵活就业怎么参保" in out
    assert G.main(["--month", "2026-3x"]) == 2


class TableEmbedder:
    """Fixed sentence vectors: the first two texts mean the same, the third something else."""

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = table

    def encode_queries(self, texts):
        import numpy as np

        return np.array([self.table[t] for t in texts], dtype=np.float32)


def test_embeddings_join_questions_that_share_meaning_but_few_characters():
    lost, gone, pension = "社保卡丢了怎么补办", "那张卡找不着了 能重新弄一张不", "养老金每个月几号发"
    questions = _questions([lost, gone, pension])
    by_ngrams, _ = G.knowledge_gaps(questions)
    assert len(by_ngrams) == 3  # no shared n-grams worth the name: three clusters
    embedder = TableEmbedder({lost: [1.0, 0.1, 0.0], gone: [0.95, 0.15, 0.0], pension: [0.0, 0.2, 1.0]})
    by_meaning, _ = G.knowledge_gaps(questions, embedder=embedder)
    members = sorted(sorted(t for t, _ in c.examples) for c in by_meaning)
    assert members == sorted([sorted([lost, gone]), [pension]])


def test_the_real_model_joins_paraphrases_and_keeps_topics_apart():
    from knowledge.embedding import embedder_from_env

    embedder = embedder_from_env(threads=2)
    if embedder is None:
        import pytest

        pytest.skip("no embedding model built (make model)")
    card = ["社保卡丢了怎么补办", "卡让我弄丢了 去哪里补"]
    password = "社保卡密码忘了怎么办"  # the same card, another need: stays apart
    questions = _questions(card) + _questions(PENSION) + _questions(["明天天气怎么样", password])
    clusters, _ = G.knowledge_gaps(questions, embedder=embedder)
    members = [set(t for t, _ in c.examples) for c in clusters]
    assert set(card) in members, members
    assert set(PENSION) in members and {"明天天气怎么样"} in members and {password} in members
    assert len(G.knowledge_gaps(_questions(card))[0]) == 2  # n-grams alone split the two
