"""Does a second encoder lift top-1? The domain model's scores plus the base model's, weighted.

    . scripts/env.sh && .venv/svc/bin/python scripts/eval/ensemble_probe.py      (~4 min on 2 cores)

Same sets as ranking_probe.py (the realistic tuning half; the training questions each left out of the index,
batch 3 apart because the domain model never trained on it). The test half is not read here.
Score of an entry = domain model's fused score (best wording + centroid + 0.1 lexical)
                  + w × the base model's dense part (best wording + centroid), for a few w.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts" / "eval"))

from ranking_probe import labelled, raw_scores  # noqa: E402

from knowledge.embedding import E5Embedder  # noqa: E402
from knowledge.retriever import CALIBRATION_ONLY_GLOB, TRAINSET_LABELS, KnowledgeBase  # noqa: E402

BASE = os.environ.get("BASE_MODEL", str(ROOT / "models" / "multilingual-e5-small"))
TUNED = os.environ.get("TUNED_MODEL", str(ROOT / "models" / "e5-small-shebao"))


def kb_for(model: str) -> KnowledgeBase:
    return KnowledgeBase.from_content(embedder=E5Embedder(model, threads=2),
                                      cache_dir=os.environ.get("KB_CACHE_DIR", ROOT / "var" / "kb_cache"))


def parts(kb, rows):
    out = []
    for expected, lex, dense, cen in rows:
        mv, lx = np.maximum.reduceat(dense, kb._starts), np.maximum.reduceat(lex, kb._starts)
        out.append((expected, mv + cen, lx))
    return out


def main() -> int:
    tuned, base = kb_for(TUNED), kb_for(BASE)
    sets = labelled(tuned)
    calib = {str(t) for f in TRAINSET_LABELS.glob(CALIBRATION_ONLY_GLOB) for t in
             [it["text"] for it in __import__("yaml").safe_load(f.read_text(encoding="utf-8"))["items"]]}
    train = sets.pop("train (left out)")
    sets["batch 3 (left out)"] = [x for x in train if x[0] in calib]
    sets["batches 1-2 (left out)"] = [x for x in train if x[0] not in calib]
    scored = {}
    for name, items in sets.items():
        lo = name != "tune"
        scored[name] = (parts(tuned, raw_scores(tuned, items, lo)), parts(base, raw_scores(base, items, lo)))
    print("top-1 / top-3 / median gap; sets:", ", ".join(f"{k} {len(v)}" for k, v in sets.items()))
    for wt, wb, lx in [(1, 0, .1), (0, 1, .1), (1, .25, .1), (1, .5, .1), (1, .75, .1), (1, 1, .1), (1, 1.5, .1),
                       (1, .5, .2), (1, 1, .2)]:
        cells = []
        for t_rows, b_rows in scored.values():
            t1 = t3 = 0
            gaps = []
            for (exp, t_d, t_l), (_, b_d, _) in zip(t_rows, b_rows, strict=True):
                s = wt * t_d + wb * b_d + lx * t_l
                order = np.argsort(-s)[:3]
                t1 += order[0] in exp
                t3 += bool(set(order.tolist()) & exp)
                gaps.append(s[order[0]] - s[order[1]])
            n = len(t_rows)
            cells.append(f"{t1 / n:.3f}/{t3 / n:.3f}/{np.median(gaps):.3f}")
        print(f"tuned {wt} + base {wb} + lexical {lx}:  " + "  ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
