"""Would a better confidence model answer more questions directly at the same wrong-answer rate?

    . scripts/env.sh && .venv/svc/bin/python scripts/eval/confidence_probe.py     (~3 min on 2 cores)

The ranking is fixed (the shipped model and index); only the decision "answer the first entry or not" varies.
Five-fold cross-validation on the realistic tuning half (knowledge/evalset/citizen.yml, half: tune; the test
half is never read here): in each fold the confidence model is fitted on the other four fifths plus the extra
data a variant names, the confident threshold is set on the other four fifths (with the out-of-scope tuning
messages) at the shipped targets, and the held-out fifth is measured. Extra data: the development set's tuning
half (as shipped) and the training questions (knowledge/trainset), each left out of the index in turn (its own
wording removed from the scores and from its entry's centroid). Batch 3 was never trained into the model;
batches 1-2 were. Feature sets: base (shipped: KnowledgeBase.features), pair (+ how alike the top two entries
are), len (+ the question's length), ext (+ ten more: lengths, view-level gap, 30-nearest votes, ranks in the
dense and lexical rankings, the not-ours gap, the entry's number of wordings). Results and the decision taken:
docs/bench_retrieval.md.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from knowledge import calibration as kcal  # noqa: E402
from knowledge.embedding import embedder_from_env  # noqa: E402
from knowledge.retriever import TRAINSET_LABELS, KnowledgeBase  # noqa: E402

TARGETS = (kcal.TARGET_WRONG_DIRECT, kcal.TARGET_NO_ENTRY, kcal.TARGET_OUT_OF_SCOPE)


def rows_for(kb: KnowledgeBase, items: list[tuple[str, set[str] | None]], leave_out: bool) -> list[dict]:
    where = {v: i for i, v in enumerate(kb.views)}
    vecs = kcal._query_vectors(kb, [t for t, _ in items])
    index = {e.id: i for i, e in enumerate(kb.entries)}
    n_views = np.bincount(kb.view_owner, minlength=len(kb.entries))
    out = []
    for (text, expected), qv in zip(items, vecs, strict=True):
        lex, dense, qv = kb.view_scores(text, qv)
        held = None
        if leave_out and text in where:
            held = where[text]
            lex, dense = lex.copy(), dense.copy()
            lex[held], dense[held] = -1.0, -1.0
        fused, de, le = kb.entry_scores(lex, dense, qv, held_out=held)
        base = kb.features(fused, de, le, dense)
        order = np.argsort(-fused)
        top = order[0]
        right = {index[e] for e in expected if e in index} if expected else set()
        near30 = np.argpartition(-dense, 30)[:30]
        own = kb.view_owner == top
        best_own = dense[own].max()
        best_other = dense[~own].max()
        ext = [
            np.log1p(len(text)),
            best_own - best_other,
            float(np.mean(kb.view_owner[near30] == top)),
            float(np.mean(kb.view_owner[near30] == order[1])),
            min(int(np.flatnonzero(np.argsort(-de) == top)[0]), 10) / 10,
            min(int(np.flatnonzero(np.argsort(-le) == top)[0]), 10) / 10,
            max(kb.foreign_gap(dense, qv), -0.3),
            float(kb.centroids[top] @ qv),
            np.log(n_views[top]),
            float(dense.max()),
        ]
        pair = [float(kb.centroids[top] @ kb.centroids[order[1]]),
                float(kb.answer_vectors[top] @ kb.answer_vectors[order[1]]) if kb.answer_vectors is not None else 0.0]
        out.append({"base": base, "ext": np.r_[base, ext], "pair": np.r_[base, pair], "len": np.r_[base, np.log1p(len(text))], "correct": bool(right) and int(top) in right,
                    "pos": bool(right), "business": expected is not None or leave_out, "text": text})
    return out


def load(kb: KnowledgeBase) -> dict[str, list[dict]]:
    ev = yaml.safe_load(kcal.EVALSET_FILE.read_text(encoding="utf-8"))["items"]
    tune = [(str(it["text"]), kcal._expected(it.get("expected"))) for it in ev if it.get("half") == "tune"]
    dev = [(str(it["text"]), kcal._expected(it["expected"]))
           for it in yaml.safe_load(kcal.DEVSET_FILE.read_text(encoding="utf-8"))["items"][0::2]]
    b3, b12 = [], []
    for f in sorted(TRAINSET_LABELS.glob("*.yml")):
        for it in yaml.safe_load(f.read_text(encoding="utf-8"))["items"]:
            if it.get("expected"):
                (b3 if f.name.startswith("batch3") else b12).append((str(it["text"]), set(it["expected"])))
    neg = kcal.load_tuning_negatives()
    data = {"tune": rows_for(kb, tune, False), "dev": rows_for(kb, dev, False), "b3": rows_for(kb, b3, True),
            "b12": rows_for(kb, b12, True), "neg": rows_for(kb, [(q, None) for q in neg], False)}
    for r in data["tune"]:  # a realistic content gap is a business question (expected None here means: no entry)
        r["business"] = True
    for r in data["neg"]:
        r["business"] = False
    return data


def arrays(rows: list[dict], key: str):
    return (np.array([r[key] for r in rows]), np.array([r["correct"] for r in rows]),
            np.array([r["pos"] for r in rows]), np.array([r["business"] for r in rows]))


def run(data, key: str, extra: list[str], l2: float = 1e-2, folds: int = 5) -> dict:
    tune = data["tune"]
    fold = np.arange(len(tune)) % folds
    rd = wd = npos = 0
    for k in range(folds):
        fit_rows = [r for r, f in zip(tune, fold, strict=True) if f != k]
        test_rows = [r for r, f in zip(tune, fold, strict=True) if f == k]
        train = fit_rows + [r for name in extra for r in data[name]] + data["neg"]
        x, y, _, _ = arrays(train, key)
        coef, b = kcal._fit_logistic(x, y.astype(float), l2=l2)

        def conf(rows, coef=coef, b=b):
            return 1 / (1 + np.exp(-(arrays(rows, key)[0] @ coef + b)))
        judge = fit_rows + data["neg"]
        _, c, p, bus = arrays(judge, key)
        t = kcal._lowest_threshold(np.round(conf(judge), 4), c, p, bus, TARGETS)
        _, c, p, _ = arrays(test_rows, key)
        ct = conf(test_rows)
        rd += int(np.sum((ct >= t) & p & c))
        wd += int(np.sum((ct >= t) & p & ~c))
        npos += int(p.sum())
    return {"right_direct": rd / npos, "wrong_direct": wd / npos}


def main() -> int:
    kb = KnowledgeBase.from_content(embedder=embedder_from_env(threads=2),
                                    cache_dir=os.environ.get("KB_CACHE_DIR", ROOT / "var" / "kb_cache"))
    data = load(kb)
    t = data["tune"]
    print(f"tune {len(t)} (top-1 {np.mean([r['correct'] for r in t if r['pos']]):.3f}), "
          f"b3 {len(data['b3'])} (top-1 {np.mean([r['correct'] for r in data['b3']]):.3f}), "
          f"b12 {len(data['b12'])} (top-1 {np.mean([r['correct'] for r in data['b12']]):.3f})")
    for key, extras in (("base", ([], ["dev"], ["dev", "b3"], ["dev", "b3", "b12"])),
                        ("pair", (["dev"], ["dev", "b3", "b12"])), ("len", (["dev"], ["dev", "b3", "b12"])),
                        ("ext", (["dev"], ["dev", "b3", "b12"]))):
        for extra in extras:
            for l2 in (1e-2,):
                r = run(data, key, extra, l2)
                print(f"{key:5s} +{'+'.join(extra) or '-':12s} l2={l2:<5} right {r['right_direct']:.3f} wrong {r['wrong_direct']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
