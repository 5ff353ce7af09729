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
    """The shipped fit (knowledge.calibration.fit_shipped), with batch 3's simulated gaps when `simulated`."""
    labelled = kcal.load_tuning_questions()
    realistic = {str(it["text"]) for it in yaml.safe_load(kcal.EVALSET_FILE.read_text(encoding="utf-8"))["items"]
                 if it.get("half") == "tune"}
    cal = kcal.calibrate(kb, negatives=kcal.load_tuning_negatives(), labelled=labelled, realistic=realistic,
                         left_out=[(t, set(e)) for t, e in trainset_questions()],
                         gap_rows=gap_rows(kb, trainset_questions("calibration")) if simulated else None)
    print(f"  {'simulated' if simulated else 'shipped'} fit: confident ≥ {cal.confident_at:.4f}, gaps judged "
          f"{cal.report['no_entry']}, answered {cal.report['no_entry_answered']:.3f}", flush=True)
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
