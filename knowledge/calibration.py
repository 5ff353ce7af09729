"""Fit the fusion weight and the answer bands on data.

Positives: every paraphrase of every entry asked as a question with that paraphrase held out
of the index (leave-one-out), so the entry has to be found through its other wordings.
Negatives: questions the knowledge base must not answer (knowledge/calibration_negatives.yml).
A logistic model on ranking features estimates P(top-1 is right); thresholds are chosen so
that confidently wrong answers stay rare and out-of-scope questions fall into "none".
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import yaml

from knowledge import text as kbtext
from knowledge.retriever import Calibration, EmbeddingCache, KnowledgeBase

log = logging.getLogger(__name__)
NEGATIVES_FILE = Path(__file__).resolve().parent / "calibration_negatives.yml"
TARGET_WRONG_CONFIDENT = 0.01  # at most 1 % of calibration questions answered confidently but wrongly
WEIGHT_GRID = [round(x, 2) for x in np.linspace(0.0, 1.0, 21)]


def load_negatives(path: Path = NEGATIVES_FILE) -> list[str]:
    """Questions outside the knowledge base's scope."""
    return [str(q) for q in yaml.safe_load(path.read_text(encoding="utf-8"))["questions"]]


def _fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, iters: int = 50) -> tuple[np.ndarray, float]:
    """Logistic regression by Newton's method (few features, so this is exact and fast)."""
    mu, sd = x.mean(0), x.std(0) + 1e-9
    z = np.c_[np.ones(len(x)), (x - mu) / sd]
    w = np.zeros(z.shape[1])
    for _ in range(iters):
        p = 1 / (1 + np.exp(-z @ w))
        grad = z.T @ (p - y) + l2 * np.r_[0, w[1:]]
        hess = (z * (p * (1 - p))[:, None]).T @ z + l2 * np.diag(np.r_[0, np.ones(len(w) - 1)])
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    coef = w[1:] / sd
    return coef, float(w[0] - np.dot(coef, mu))


def _score_matrices(kb: KnowledgeBase, negatives: list[str]) -> tuple[list, np.ndarray]:
    """Per-query (lex, dense) per-entry score rows for LOO positives and for negatives, and labels."""
    rows = []
    labels = []
    qvecs = None
    if kb.has_dense:
        neg_norm = [kbtext.normalize(q) for q in negatives]
        qvecs, _ = EmbeddingCache(kb.cache_dir, kb.embedder.model_id).encode(kb.embedder, neg_norm) if kb.cache_dir \
            else (kb.embedder.encode_queries(neg_norm), 0)
    for vi, owner in enumerate(kb.view_owner):
        if kb._starts[owner] == vi:  # the standard question is never held out: it defines the entry
            continue
        lex, dense = kb.view_scores(kb.views[vi], kb.view_vectors[vi] if kb.has_dense else None) \
            if kb.has_dense else (kb.view_scores_lexical(kb.views[vi]), None)
        lex = lex.copy()
        lex[vi] = -1.0
        if dense is not None:
            dense = dense.copy()
            dense[vi] = -1.0
        rows.append((np.maximum.reduceat(lex, kb._starts),
                     np.maximum.reduceat(dense, kb._starts) if dense is not None else None))
        labels.append(int(owner))
    for qi, q in enumerate(negatives):
        lex, dense = kb.view_scores(q, qvecs[qi]) if kb.has_dense else (kb.view_scores_lexical(q), None)
        rows.append((np.maximum.reduceat(lex, kb._starts),
                     np.maximum.reduceat(dense, kb._starts) if dense is not None else None))
        labels.append(-1)
    return rows, np.array(labels)


def calibrate(kb: KnowledgeBase, negatives: list[str] | None = None, weights: list[float] | None = None) -> Calibration:
    """Choose the dense weight (best leave-one-out top-1), fit the confidence model, set the bands.

    `weights` restricts the dense weights tried: [0.0] is lexical-only, [1.0] dense-only.
    """
    negatives = load_negatives() if negatives is None else negatives
    grid = weights or (WEIGHT_GRID if kb.has_dense else [0.0])
    rows, labels = _score_matrices(kb, negatives)
    pos = labels >= 0

    def fused_rows(w: float) -> list[np.ndarray]:
        return [lex if dense is None else w * dense + (1 - w) * lex for lex, dense in rows]

    best_w, best_acc = 0.0, -1.0
    for w in grid:
        acc = np.mean([np.argmax(f) == lab for f, lab in zip(fused_rows(w), labels) if lab >= 0])
        if acc > best_acc:
            best_w, best_acc = w, acc
    fused = fused_rows(best_w)
    feats, correct, in_top3 = [], [], []
    for f, (lex, dense), lab in zip(fused, rows, labels):
        feats.append(kb.features(f, dense if dense is not None else np.zeros_like(lex), lex))
        order = np.argsort(-f)[:3]
        correct.append(lab >= 0 and order[0] == lab)
        in_top3.append(lab >= 0 and lab in order)
    x, y = np.array(feats), np.array(correct, dtype=float)
    coef, intercept = _fit_logistic(x, y)
    cal = Calibration(dense_weight=best_w, coef=tuple(coef.tolist()), intercept=intercept)
    conf = np.array([cal.confidence(f) for f in x])
    correct_a, top3_a = np.array(correct), np.array(in_top3)
    n = len(conf)
    # confident: the lowest threshold whose wrong-and-confident share stays within the target
    cand = np.unique(np.round(conf, 4))
    cal.confident_at = float(cand[-1])
    for t in cand:
        if np.sum((conf >= t) & ~correct_a) / n <= TARGET_WRONG_CONFIDENT:
            cal.confident_at = float(t)
            break
    # unsure vs none: maximise (useful suggestions kept) - (useless suggestions shown)
    good, bad = top3_a, ~top3_a
    best_t, best_j = 0.0, -1.0
    for t in cand[cand <= cal.confident_at]:
        j = np.mean(conf[good] >= t) - np.mean(conf[bad] >= t)
        if j > best_j:
            best_t, best_j = float(t), j
    cal.unsure_at = best_t
    band = np.where(conf >= cal.confident_at, 2, np.where(conf >= cal.unsure_at, 1, 0))
    cal.report = {
        "positives": int(pos.sum()), "negatives": int((~pos).sum()), "dense_weight": best_w,
        "loo_top1": round(float(best_acc), 4),
        "loo_top3": round(float(top3_a[pos].mean()), 4),
        "confident_share": round(float(np.mean(band == 2)), 4),
        "wrong_confident_share": round(float(np.mean((band == 2) & ~correct_a)), 4),
        "negatives_in_none": round(float(np.mean(band[~pos] == 0)), 4),
    }
    log.info("calibration: %s", cal.report)
    return cal


def calibrate_cached(kb: KnowledgeBase) -> Calibration:
    """calibrate(), reusing the stored result when the index and the negatives have not changed."""
    neg_hash = hashlib.sha1(NEGATIVES_FILE.read_bytes()).hexdigest()[:12]
    path = kb.cache_dir / f"calib-{kb.index_key[:16]}-{neg_hash}.json" if kb.cache_dir else None
    if path and path.exists():
        try:
            return Calibration(**json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, TypeError):
            log.warning("calibration cache %s unreadable; recalibrating", path)
    cal = calibrate(kb)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(cal.__dict__, ensure_ascii=False, indent=1), encoding="utf-8")
    return cal
