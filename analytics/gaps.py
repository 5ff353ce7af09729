"""Knowledge gaps: the questions the knowledge base failed on, clustered into the entries to write.

    python -m analytics.gaps --month 2026-10 [--limit 20] [--embeddings]

A gap question is a citizen's question in the period that
  - got "not found" (its topic is 未找到答案: no entry was near enough), or
  - was answered and the citizen rated the answer 没帮助, or
  - was answered and the citizen asked for a person before the next answer.
Identical (masked) texts are counted together. The distinct texts are clustered by their character
n-grams (TF-IDF over 2- and 3-grams of the normalised text, cosine similarity): texts are taken by volume,
each joins the cluster whose centroid is most similar if that similarity reaches `threshold`, otherwise it
starts a new cluster; then every text is moved once to its most similar final centroid if that reaches the threshold.
With `--embeddings` the similarity also weighs the texts' sentence embeddings (the knowledge base's e5 model), which
brings together questions that mean the same in different words; it costs the model's load and ~10 ms a text, so
the monthly report (which must stay within a minute at 500k events) uses n-grams only. Clusters are ranked
by volume (occurrences). Each carries keywords (jieba words with the largest TF-IDF mass), masked examples,
the entries that were answered and failed, and the nearest existing entries (knowledge.retriever, lexical).
Parameters: `GapParams` (documented in docs/analytics.md).
"""
from __future__ import annotations

import argparse
import datetime as dt
import math
import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from analytics.figures import Period
from analytics.store import AnalyticsStore, KnowledgeAnswer, Turn
from analytics.topics import NOT_FOUND
from common.privacy import mask_text

REASONS = {"not_found": "未找到答案", "unhelpful": "没帮助", "handoff_after": "答后转人工"}
# words that say nothing about what was asked (the normaliser already drops phone openings and dialect)
STOP_WORDS = frozenset("""那个 这个 怎么 怎么办 怎样 如何 什么 为什么 是不是 可以 能不能 能否 需要 还是 一下 问问 想问
我们 你们 他们 自己 现在 今年 时候 哪里 在哪 多少 有没有 不是 没有 的话 就是 还有 一个 问题 请问 知道 办理 一些""".split())
_KEEP = re.compile(r"[\u4e00-\u9fffA-Za-z]+")
# how a question is asked, not what about: removed before the n-grams are taken (longest first)
FUNCTION_PHRASES = re.compile("|".join(sorted("""怎么办 怎么弄 怎么样 怎么 咋办 咋弄 如何 要不要 能不能 可不可以 是不是 有没有 需不需要
是什么 是啥 什么 多少 哪些 哪里 哪儿 在哪 去哪 我 您 吗 呢 啊 吧 呀 了 的""".split(), key=len, reverse=True)))


@dataclass(frozen=True)
class GapParams:
    """Tunables of the gap clustering (see docs/analytics.md, "Knowledge gaps")."""

    ngrams: tuple[int, ...] = (2, 3)  # character n-gram sizes of the TF-IDF vectors
    threshold: float = 0.35  # cosine similarity to a cluster's centroid needed to join it
    max_texts: int = 3000  # distinct texts clustered (the most frequent); the rest are counted in `unclustered`
    examples: int = 5  # masked example questions per cluster
    keywords: int = 3  # keywords per cluster
    nearest: int = 3  # nearest existing entries per cluster
    # with an embedder (`--embeddings`): the similarity is this share of the sentence-embedding cosine plus the
    # rest of the n-gram cosine, so "卡丢了" and "社保卡找不着了" meet although they share few characters
    # (both set by hand on a few pairs of the domain model: paraphrases of one need ≈ 0.8 embedding cosine, different
    # needs ≤ 0.45; not yet tuned on a labelled set of gap questions)
    embedding_weight: float = 0.6
    embedding_threshold: float = 0.45  # the combined similarity needed to join a cluster


class Embedder(Protocol):
    """What the clustering needs of a sentence-embedding model (knowledge.embedding.E5Embedder)."""

    def encode_queries(self, texts: list[str]) -> np.ndarray: ...


def combined(ngram_rows: np.ndarray, embedding_rows: np.ndarray, weight: float) -> np.ndarray:
    """Rows whose dot products are `weight` × embedding cosine + (1 − weight) × n-gram cosine (both L2-normalised)."""
    e = embedding_rows / np.maximum(np.linalg.norm(embedding_rows, axis=1, keepdims=True), 1e-12)
    return np.hstack([ngram_rows * math.sqrt(1 - weight), e.astype(np.float32) * math.sqrt(weight)])


@dataclass
class GapCluster:
    """A group of similar questions the knowledge base failed on."""

    keywords: list[str]
    volume: int  # occurrences of its questions in the period
    distinct: int  # distinct (masked) question texts
    reasons: dict[str, int]  # not_found | unhelpful | handoff_after -> occurrences
    examples: list[tuple[str, int]]  # (masked question, occurrences), most frequent first
    answered: list[tuple[str, int]] = field(default_factory=list)  # entries given as the answer that failed
    nearest: list[dict[str, Any]] = field(default_factory=list)  # {"entry_id", "question", "score"}

    def as_dict(self) -> dict[str, Any]:
        """Plain values (for the report and JSON)."""
        return {"keywords": self.keywords, "volume": self.volume, "distinct": self.distinct, "reasons": self.reasons,
                "examples": self.examples, "answered": self.answered, "nearest": self.nearest}


class Searcher(Protocol):
    """What the nearest-entry lookup needs of knowledge.retriever.KnowledgeBase."""

    def search(self, query: str, k: int = 5) -> list[Any]: ...


def gap_questions(s: Session, period: Period) -> list[dict[str, Any]]:
    """Every gap question of the period: {"text", "reason", "entry_id", "channel"} (texts masked)."""
    start, end = dt.datetime.combine(period.start, dt.time()), dt.datetime.combine(period.end, dt.time())
    out: list[dict[str, Any]] = []
    for text, channel in s.execute(select(Turn.text, Turn.channel).where(
            Turn.role == "citizen", Turn.topic == NOT_FOUND, Turn.at >= start, Turn.at < end)).all():
        if text and not text.startswith("/"):
            out.append({"text": text, "reason": "not_found", "entry_id": None, "channel": channel})
    failed = s.execute(select(KnowledgeAnswer.session_id, KnowledgeAnswer.at, KnowledgeAnswer.question,
                              KnowledgeAnswer.entry_id, KnowledgeAnswer.channel, KnowledgeAnswer.feedback,
                              KnowledgeAnswer.handoff_after)
                       .where(KnowledgeAnswer.at >= start, KnowledgeAnswer.at < end,
                              (KnowledgeAnswer.feedback == "unhelpful") | KnowledgeAnswer.handoff_after.is_(True))).all()
    # an answer chosen from suggestions has a button payload as its question: take the words typed before it
    missing = {r.session_id for r in failed if not r.question}
    typed: dict[str, list[tuple[dt.datetime, str]]] = defaultdict(list)
    if missing:
        ids = sorted(missing)
        for i in range(0, len(ids), 500):
            for sid, at, text in s.execute(select(Turn.session_id, Turn.at, Turn.text).where(
                    Turn.session_id.in_(ids[i:i + 500]), Turn.role == "citizen").order_by(Turn.ts)).all():
                if text and not text.startswith("/"):
                    typed[sid].append((at, text))
    for r in failed:
        text = r.question or next((t for at, t in reversed(typed.get(r.session_id, [])) if at <= r.at), "")
        if text:
            out.append({"text": text, "reason": "unhelpful" if r.feedback == "unhelpful" else "handoff_after",
                        "entry_id": r.entry_id, "channel": r.channel})
    return out


def _clean(text: str) -> str:
    """The text the clustering sees: normalised (dialect, typos, phone openings), without function phrases, letters only."""
    from knowledge.text import normalize  # the same normaliser as retrieval (no model is loaded)

    return "".join(_KEEP.findall(FUNCTION_PHRASES.sub(" ", normalize(text))))


def tfidf(texts: list[str], weights: list[int], ngrams: tuple[int, ...] = (2, 3)) -> np.ndarray:
    """L2-normalised TF-IDF rows of character n-grams (document frequency counts each text by its volume).

    Rows are normalised over all their n-grams, then the columns of n-grams found in one text only are
    dropped: they cannot make two texts similar, and leaving them out keeps the matrix small."""
    grams = [Counter(t[i:i + n] for n in ngrams for i in range(len(t) - n + 1)) or Counter({t: 1}) for t in texts]
    df: Counter[str] = Counter()
    seen_in: Counter[str] = Counter()
    for g, w in zip(grams, weights, strict=True):
        df.update({k: w for k in g})
        seen_in.update(g.keys())
    total = sum(weights)
    shared = sorted(k for k, n in seen_in.items() if n > 1)
    vocab = {k: i for i, k in enumerate(shared)}
    m = np.zeros((len(texts), max(1, len(vocab))), dtype=np.float32)
    for row, g in enumerate(grams):
        norm = 0.0
        for k, c in g.items():
            value = (1 + math.log(c)) * (math.log((1 + total) / (1 + df[k])) + 1)
            norm += value * value
            if k in vocab:
                m[row, vocab[k]] = value
        m[row] /= math.sqrt(norm) or 1.0
    return m


def cluster(vectors: np.ndarray, weights: list[int], threshold: float) -> list[list[int]]:
    """Leader clustering by volume, then one reassignment to the nearest centroid; rows of `vectors` must be sorted
    by weight (largest first). Returns the member rows of each cluster."""
    if len(vectors) == 0:
        return []
    sums = np.zeros_like(vectors)  # at most one cluster per row
    sums[0] = vectors[0] * weights[0]
    norms = np.zeros(len(vectors), dtype=np.float32)
    norms[0] = np.linalg.norm(sums[0])
    first = np.zeros(len(vectors), dtype=np.int64)
    k = 1
    for i in range(1, len(vectors)):
        nz = np.flatnonzero(vectors[i])  # a text has a few dozen n-grams: dot products over those only (5x faster at 3,000 texts)
        sim = (sums[:k, nz] @ vectors[i, nz]) / np.maximum(norms[:k], 1e-12)
        best = int(np.argmax(sim))
        if sim[best] < threshold:
            best, k = k, k + 1
        first[i] = best
        sums[best, nz] += vectors[i, nz] * weights[i]
        norms[best] = np.linalg.norm(sums[best])
    centroids = sums[:k] / np.maximum(norms[:k, None], 1e-12)
    sim = vectors @ centroids.T
    nearest = np.argmax(sim, axis=1)
    # move a text to the centroid it is most similar to, if it is similar enough to join it at all
    assign = np.where(sim[np.arange(len(vectors)), nearest] >= threshold, nearest, first)
    members: dict[int, list[int]] = defaultdict(list)
    for row, c in enumerate(assign):
        members[int(c)].append(row)
    return list(members.values())


def keywords(texts: list[str], weights: list[int], n: int) -> list[str]:
    """The n words (jieba) carrying most TF-IDF mass in the texts, IDF over the texts themselves."""
    from knowledge.text import words

    docs = [{w for w in words(t) if len(w) > 1 and w not in STOP_WORDS and _KEEP.fullmatch(w)} for t in texts]
    mass: Counter[str] = Counter()
    df: Counter[str] = Counter(w for d in docs for w in d)
    for d, wt in zip(docs, weights, strict=True):
        for w in d:
            mass[w] += wt * (math.log((1 + len(docs)) / (1 + df[w])) + 1)
    return [w for w, _ in sorted(mass.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def knowledge_gaps(questions: list[dict[str, Any]], kb: Searcher | None = None,
                   params: GapParams = GapParams(), embedder: Embedder | None = None) -> tuple[list[GapCluster], int]:
    """Cluster gap questions; returns the clusters ranked by volume and the occurrences left unclustered.
    With an embedder, texts are compared by their sentence embeddings and their n-grams together."""
    counts: Counter[str] = Counter()
    reasons: dict[str, Counter[str]] = defaultdict(Counter)
    answered: dict[str, Counter[str]] = defaultdict(Counter)
    for q in questions:
        text = mask_text(q["text"]).strip()  # the store's texts are masked already; masking twice changes nothing
        if not _clean(text):
            continue
        counts[text] += 1
        reasons[text][q["reason"]] += 1
        if q.get("entry_id"):
            answered[text][q["entry_id"]] += 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    taken, rest = ranked[: params.max_texts], ranked[params.max_texts:]
    texts, weights = [t for t, _ in taken], [n for _, n in taken]
    groups: list[list[int]] = []
    if texts:
        vectors, threshold = tfidf([_clean(t) for t in texts], weights, params.ngrams), params.threshold
        if embedder is not None:
            vectors = combined(vectors, embedder.encode_queries(texts), params.embedding_weight)
            threshold = params.embedding_threshold
        groups = cluster(vectors, weights, threshold)
    clusters = []
    for rows in groups:
        rows = sorted(rows, key=lambda r: (-weights[r], texts[r]))
        members = [texts[r] for r in rows]
        why: Counter[str] = Counter()
        entries: Counter[str] = Counter()
        for t in members:
            why.update(reasons[t])
            entries.update(answered[t])
        c = GapCluster(keywords=keywords(members, [weights[r] for r in rows], params.keywords),
                       volume=sum(weights[r] for r in rows), distinct=len(rows),
                       reasons={k: why[k] for k in REASONS if why[k]},
                       examples=[(texts[r], weights[r]) for r in rows[: params.examples]],
                       answered=sorted(entries.items(), key=lambda kv: (-kv[1], kv[0]))[:3])
        if kb is not None:
            c.nearest = nearest_entries(kb, [t for t, _ in c.examples], params.nearest)
        clusters.append(c)
    clusters.sort(key=lambda c: (-c.volume, c.examples[0][0]))
    return clusters, sum(n for _, n in rest)


def nearest_entries(kb: Searcher, examples: list[str], k: int) -> list[dict[str, Any]]:
    """The k entries the examples are nearest to: retrieval scores summed over the examples."""
    score: Counter[str] = Counter()
    question: dict[str, str] = {}
    for text in examples:
        for hit in kb.search(text, k=k):
            score[hit.entry.id] += hit.score / len(examples)
            question[hit.entry.id] = hit.entry.question
    return [{"entry_id": e, "question": question[e], "score": round(v, 3)}
            for e, v in sorted(score.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]


def load_knowledge() -> Searcher | None:
    """The knowledge base, lexical only (read-only, no model), or None when its content cannot be read."""
    try:
        from knowledge.retriever import KnowledgeBase
        from knowledge.schema import load_entries

        return KnowledgeBase(load_entries())
    except (OSError, ValueError) as exc:
        print(f"[gaps] knowledge base not loaded, no nearest entries: {exc}", file=sys.stderr)
        return None


def month_gaps(store: AnalyticsStore, month: str, kb: Searcher | None = None,
               params: GapParams = GapParams(), embedder: Embedder | None = None) -> dict[str, Any]:
    """The knowledge gaps of a month as plain values: clusters, total gap questions, unclustered occurrences."""
    questions = store.call(lambda s: gap_questions(s, Period.month(month)))
    clusters, unclustered = knowledge_gaps(questions, kb, params, embedder)
    return {"clusters": [c.as_dict() for c in clusters], "questions": len(questions), "unclustered": unclustered,
            "reasons": dict(Counter(q["reason"] for q in questions))}


def format_gaps(gaps: dict[str, Any], limit: int) -> str:
    """The list as text (one block per cluster)."""
    lines = [f"{gaps['questions']} gap questions in {len(gaps['clusters'])} clusters "
             + "(" + ", ".join(f"{REASONS[k]} {v}" for k, v in sorted(gaps["reasons"].items())) + ")"]
    for i, c in enumerate(gaps["clusters"][:limit], 1):
        why = "，".join(f"{REASONS[k]} {v}" for k, v in c["reasons"].items())
        lines.append(f"{i:2d}. [{' '.join(c['keywords']) or '—'}] {c['volume']} 次（{why}），{c['distinct']} 种问法")
        for text, n in c["examples"]:
            lines.append(f"      {n:4d} × {text}")
        if c["answered"]:
            lines.append("      答过的条目: " + ", ".join(f"{e} ×{n}" for e, n in c["answered"]))
        if c["nearest"]:
            lines.append("      最接近的条目: " + "; ".join(f"{e['entry_id']} {e['question']} ({e['score']:.2f})" for e in c["nearest"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line: python -m analytics.gaps --month YYYY-MM [--limit N] [--no-knowledge]."""
    from analytics.settings import settings_for_month

    p = argparse.ArgumentParser(prog="python -m analytics.gaps", description="The month's knowledge gaps, clustered.")
    p.add_argument("--month", required=True, help="YYYY-MM")
    p.add_argument("--limit", type=int, default=20, help="clusters to print (default 20)")
    p.add_argument("--no-knowledge", action="store_true", help="skip the nearest existing entries")
    p.add_argument("--embeddings", action="store_true",
                   help="compare questions by sentence embeddings (the knowledge base's e5 model) as well as n-grams")
    args = p.parse_args(argv)
    try:
        settings = settings_for_month(args.month)
    except ValueError as exc:
        print(f"Give --month as YYYY-MM ({exc}).", file=sys.stderr)
        return 2
    kb = None if args.no_knowledge else load_knowledge()
    embedder = None
    if args.embeddings:
        from knowledge.embedding import embedder_from_env

        embedder = embedder_from_env()
        if embedder is None:
            print("[gaps] no embedding model built (make model): clustering by n-grams only", file=sys.stderr)
    gaps = month_gaps(AnalyticsStore(settings.database_url), args.month, kb, embedder=embedder)
    print(format_gaps(gaps, args.limit))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
