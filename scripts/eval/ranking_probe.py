"""Can a better ranking of the same model's scores lift top-1? Fusion weights, a nearest-wordings vote, a learned ranker.

    . scripts/env.sh && .venv/svc/bin/python scripts/eval/ranking_probe.py      (~2 min on 2 cores)

Measured on the realistic tuning half (knowledge/evalset/citizen.yml, half: tune; the test half is never
read here) and on the training questions (knowledge/trainset) left out one at a time: each is an index wording
of its entry, so its own wording is removed from the scores and from its entry's centroid before ranking.
The learned ranker is a linear listwise (softmax) model over 13 features of the 30 best candidates, trained on
the left-out training questions only. Results and the decision taken: docs/bench_retrieval.md.
"""
from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from knowledge import text as kbtext  # noqa: E402
from knowledge.calibration import EVALSET_FILE  # noqa: E402
from knowledge.embedding import embedder_from_env  # noqa: E402
from knowledge.retriever import TRAINSET_LABELS, KnowledgeBase  # noqa: E402

CANDIDATES = 30


def labelled(kb: KnowledgeBase) -> dict[str, list[tuple[str, set[int]]]]:
    """Tuning-half and training questions with the indexes of their accepted entries."""
    index = {e.id: i for i, e in enumerate(kb.entries)}
    tune = [(str(it["text"]), {index[e] for e in it["expected"] if e in index})
            for it in yaml.safe_load(EVALSET_FILE.read_text(encoding="utf-8"))["items"]
            if it.get("half") == "tune" and it.get("expected")]
    train = [(str(it["text"]), {index[e] for e in it["expected"] if e in index})
             for f in sorted(TRAINSET_LABELS.glob("*.yml"))
             for it in yaml.safe_load(f.read_text(encoding="utf-8"))["items"] if it.get("expected")]
    return {"tune": tune, "train (left out)": train}


def raw_scores(kb: KnowledgeBase, items: list[tuple[str, set[int]]], leave_out: bool) -> list[tuple]:
    """Per question: view lexical and dense scores and entry centroid cosines (own wording removed if leave_out)."""
    where = {v: i for i, v in enumerate(kb.views)}
    qvs = kb.embedder.encode_queries([kbtext.normalize(t) for t, _ in items])
    rows = []
    for (text, expected), qv in zip(items, qvs, strict=True):
        lex, dense, cen = kb.view_scores_lexical(text), kb.view_vectors @ qv, kb.centroids @ qv
        if leave_out and text in where:
            v = where[text]
            o = kb.view_owner[v]
            rest = kb._view_sums[o] - kb.view_vectors[v]
            cen[o] = float(rest @ qv / (np.linalg.norm(rest) or 1.0))
            dense[v], lex[v] = -1.0, 0.0
        rows.append((expected, lex, dense, cen))
    return rows


def vote(kb: KnowledgeBase, dense: np.ndarray, k: int, tau: float) -> np.ndarray:
    """Softmax-weighted share of the k nearest wordings owned by each entry."""
    near = np.argpartition(-dense, k)[:k]
    w = np.exp((dense[near] - dense[near].max()) / tau)
    return np.bincount(kb.view_owner[near], weights=w, minlength=len(kb.entries)) / w.sum()


def fused(kb, lex, dense, cen, mv=1.0, ce=1.0, lx=0.1, knn=0.0, k=10, tau=0.03) -> np.ndarray:
    s = mv * np.maximum.reduceat(dense, kb._starts) + ce * cen + lx * np.maximum.reduceat(lex, kb._starts)
    return s + knn * vote(kb, dense, k, tau) if knn else s


def top13(rows, score) -> tuple[float, float]:
    t1 = t3 = 0
    for expected, *scores in rows:
        order = np.argsort(-score(*scores))[:3]
        t1 += order[0] in expected
        t3 += bool(set(order.tolist()) & expected)
    return t1 / len(rows), t3 / len(rows)


def candidate_features(kb, lex, dense, cen) -> tuple[np.ndarray, np.ndarray]:
    """The 30 best entries by today's fusion and 13 features of each."""
    n = len(kb.entries)
    mv, lx = np.maximum.reduceat(dense, kb._starts), np.maximum.reduceat(lex, kb._starts)
    cand = np.argsort(-(mv + cen + 0.1 * lx))[:CANDIDATES]
    v10, v30 = vote(kb, dense, 10, 0.02), vote(kb, dense, 30, 0.05)
    second = np.full(n, np.nan)
    seen: dict[int, int] = {}
    for v in np.argsort(-dense)[:300]:
        o = int(kb.view_owner[v])
        seen[o] = seen.get(o, 0) + 1
        if seen[o] == 2:
            second[o] = dense[v]
    second = np.where(np.isnan(second), mv - 0.05, second)
    ranks = [np.empty(n) for _ in range(3)]
    for r, s in zip(ranks, (mv, cen, lx), strict=True):
        r[np.argsort(-s)] = np.arange(n)
    f = np.stack([mv, cen, lx, mv - mv.max(), cen - cen.max(), lx / (lx.max() or 1), v10, v30, second,
                  1 / (1 + ranks[0]), 1 / (1 + ranks[1]), 1 / (1 + ranks[2]), np.log1p(kb._view_counts)], axis=1)
    return cand, f[cand]


def train_listwise(feats, labels, l2=0.1, iters=300, lr=0.5):
    """Softmax over each question's candidates towards its accepted ones (gradient descent, standardised features)."""
    allf = np.concatenate(feats)
    mu, sd = allf.mean(0), allf.std(0) + 1e-9
    w = np.zeros(allf.shape[1])
    for _ in range(iters):
        g, n = np.zeros_like(w), 0
        for f, y in zip(feats, labels, strict=True):
            if y.any():
                z = (f - mu) / sd
                p = np.exp(z @ w - (z @ w).max())
                g += z.T @ (p / p.sum() - y / y.sum())
                n += 1
        w -= lr * (g / n + l2 * w)
    return lambda f: ((f - mu) / sd) @ w


def main() -> int:
    kb = KnowledgeBase.from_content(embedder=embedder_from_env(threads=2),
                                    cache_dir=os.environ.get("KB_CACHE_DIR", ROOT / "var" / "kb_cache"))
    sets = {name: raw_scores(kb, items, leave_out=name != "tune") for name, items in labelled(kb).items()}
    print("top-1 / top-3 per scoring; sets:", ", ".join(f"{k} {len(v)}" for k, v in sets.items()))
    grid = [dict()] + [dict(mv=a, ce=b, lx=c) for a, b, c in itertools.product((0.5, 1.0), (0.5, 1.0, 1.5), (0.05, 0.1, 0.2))]
    grid += [dict(knn=a, k=b, tau=c) for a, b, c in itertools.product((0.05, 0.1, 0.2, 0.4), (10, 30), (0.01, 0.03))]
    for params in grid:
        cells = [top13(rows, lambda lex, dense, cen, p=params: fused(kb, lex, dense, cen, **p)) for rows in sets.values()]
        print(f"{str(params or 'shipped (mv 1, centroid 1, lexical 0.1)'):45s} "
              + "  ".join(f"{a:.3f}/{b:.3f}" for a, b in cells))
    built = {}
    for name, rows in sets.items():
        pairs = [candidate_features(kb, lex, dense, cen) for _, lex, dense, cen in rows]
        built[name] = ([f for _, f in pairs], [np.array([c in exp for c in cand], float)
                                                for (cand, _), (exp, *_) in zip(pairs, rows, strict=True)])
    rank = train_listwise(*built["train (left out)"])
    cells = []
    for feats, labels in built.values():
        t1 = np.mean([y[np.argmax(rank(f))] > 0 for f, y in zip(feats, labels, strict=True)])
        t3 = np.mean([y[np.argsort(-rank(f))[:3]].any() for f, y in zip(feats, labels, strict=True)])
        cells.append(f"{t1:.3f}/{t3:.3f}")
    print(f"{'learned listwise ranker (fit on train)':45s} " + "  ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
