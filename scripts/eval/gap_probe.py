"""Would the answer bands hold better if content gaps were simulated instead of counted on 23 questions?

    . scripts/env.sh && .venv/svc/bin/python scripts/eval/gap_probe.py [MODEL_DIR ...]   (~4 min per model)

The shipped fit (knowledge.calibration.calibrate) sets the confident threshold where three rates hold on the
realistic tuning half; the bound on questions no entry answers (≤ 25 % answered directly) is judged on its 23
such questions, so one question moves the threshold. Here each training question of batch 3 (never trained into
the model) becomes a content gap too: ranked with every entry its labellers accepted taken out of the index
(their wordings, centroids and scores), it is a realistic question whose answer we do not have. Those rows join
the confidence model's fit (as wrong) and the gap bound's count; the other rows and targets are the shipped ones.
Prints, per model, the realistic test half's figures (as scripts/bench_answers.py measures them) for the shipped
fit and the fit with simulated gaps, and the README example's confidence against the confident threshold.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_answers import CACHE, measure, test_sets  # noqa: E402

from knowledge import calibration as kcal  # noqa: E402
from knowledge.embedding import E5Embedder  # noqa: E402
from knowledge.policy import Calibration  # noqa: E402
from knowledge.retriever import KnowledgeBase, citizen_wordings, load_entries, not_ours_messages, trainset_questions  # noqa: E402

README_EXAMPLES = ["俺想查查灵活就业咋交养老", "电子社保卡咋领 用啥app", "社保卡丢了咋办"]


def gap_rows(kb: KnowledgeBase, items: list[tuple[str, list[str]]]) -> list[tuple]:
    """Each question ranked with its accepted entries out of the index: a realistic content gap."""
    index = {e.id: i for i, e in enumerate(kb.entries)}
    where = {v: i for i, v in enumerate(kb.views)}
    vecs = kcal._query_vectors(kb, [t for t, _ in items])
    out = []
    for qi, (text, expected) in enumerate(items):
        gone = [index[e] for e in expected if e in index]
        lex, dense, qv = kb.view_scores(text, vecs[qi])
        off = np.isin(kb.view_owner, gone)
        held = where.get(text)
        if held is not None:
            off[held] = True
        lex, dense = np.where(off, -1.0, lex), np.where(off, -1.0, dense)
        fused, dense_e, lex_e = kb.entry_scores(lex, dense, qv, held_out=held)
        low = float(min(fused.min(), dense_e.min(), lex_e.min())) - 1.0
        for arr in (fused, dense_e, lex_e):
            arr[gone] = low
        out.append((fused, dense_e, lex_e, set(), dense))
    return out


def fit(kb: KnowledgeBase, simulated: bool) -> Calibration:
    labelled = kcal.load_tuning_questions()
    negatives = kcal.load_tuning_negatives()
    realistic = {str(it["text"]) for it in yaml.safe_load(kcal.EVALSET_FILE.read_text(encoding="utf-8"))["items"]
                 if it.get("half") == "tune"}
    left_out = [(t, set(e)) for t, e in trainset_questions()]
    rows = (kcal._labelled_rankings(kb, labelled + [(q, None) for q in negatives])
            + kcal._labelled_rankings(kb, left_out, leave_out=True))
    business = np.r_[np.ones(len(labelled), bool), np.zeros(len(negatives), bool), np.ones(len(left_out), bool)]
    judged = np.r_[[t in realistic for t, _ in labelled], np.ones(len(negatives), bool), np.zeros(len(left_out), bool)]
    if simulated:
        gaps = gap_rows(kb, trainset_questions("calibration"))
        rows += gaps
        business = np.r_[business, np.ones(len(gaps), bool)]
        judged = np.r_[judged, np.ones(len(gaps), bool)]
    pos = np.array([bool(r[3]) for r in rows])
    x = np.array([kb.features(f, d, lx, v) for f, d, lx, _, v in rows])
    correct = np.array([bool(r[3]) and int(np.argmax(r[0])) in r[3] for r in rows])
    top3 = np.array([bool(r[3]) and any(int(o) in r[3] for o in np.argsort(-r[0])[:3]) for r in rows])
    coef, intercept = kcal._fit_logistic(x, correct.astype(float))
    cal = Calibration(coef=tuple(coef.tolist()), intercept=intercept, model_id=kb.model_id)
    conf = np.array([cal.confidence(f) for f in x])
    j = judged
    targets = (kcal.TARGET_WRONG_DIRECT, kcal.TARGET_NO_ENTRY, kcal.TARGET_OUT_OF_SCOPE)
    cal.confident_at = kcal._lowest_threshold(conf[j], correct[j], pos[j], business[j], targets)
    cal.strict_at = max(cal.confident_at, kcal._lowest_threshold(conf[j], correct[j], pos[j], business[j],
                                                                  (kcal.TARGET_STRICT,) * 3))
    cal.unsure_at = kcal._unsure_threshold(conf[j], top3[j], business[j], cal.confident_at)
    gap_j = j & business & ~pos
    print(f"  {'simulated' if simulated else 'shipped'} fit: confident ≥ {cal.confident_at:.4f}, gaps judged "
          f"{int(gap_j.sum())}, answered {float(np.mean(conf[gap_j] >= cal.confident_at)):.3f}", flush=True)
    business_texts = [t for t, e in labelled if e or t in realistic]
    cal.foreign_margin = kcal.fit_foreign_margin(kb, cal, business_texts, kcal.load_routing_tuning_out_of_scope())
    return cal


def main() -> None:
    models = sys.argv[1:] or [str(ROOT / "models" / "e5-small-shebao")]
    for model in models:
        kb = KnowledgeBase(load_entries(), E5Embedder(model, threads=2), CACHE, extra_views=citizen_wordings(),
                           not_ours=not_ours_messages())
        print(model, flush=True)
        for simulated in (False, True):
            kb.calibration = fit(kb, simulated)
            b = measure(kb, test_sets()["business"])
            readme = ", ".join(f"{q} {kb.decide(q).confidence:.3f}" for q in README_EXAMPLES)
            print(f"  test half: right {b['right_direct']:.3f} wrong {b['wrong_direct']:.3f} unsure {b['unsure']:.3f} "
                  f"none {b['none']:.3f} top1 {b['top1']:.3f}; README: {readme}", flush=True)


if __name__ == "__main__":
    main()
