"""Does scoring the end of a long question (where citizens often put the point) lift top-1?

    . scripts/env.sh && .venv/svc/bin/python scripts/eval/tail_probe.py     (~1.5 min on 2 cores)

Entry score = the full question's fused score + a x the tail's (last clause, last two clauses, last 16 or 24
characters), for questions of 25 characters or more. On the realistic tuning half (the test half is never read)
and on the training questions (knowledge/trainset), each left out of the index in turn, for its tail too.
Prints top-1/top-3 per setting. Results and the decision taken: docs/bench_retrieval.md.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from knowledge import calibration as kcal  # noqa: E402
from knowledge import text as kbtext  # noqa: E402
from knowledge.embedding import embedder_from_env  # noqa: E402
from knowledge.retriever import CALIBRATION_ONLY_GLOB, TRAINSET_LABELS, KnowledgeBase  # noqa: E402

SPLIT = re.compile(r"[，。！？；,.!?;：:\s、]+")
LONG = 25


def tails(text: str) -> dict[str, str]:
    parts = [p for p in SPLIT.split(text) if p] or [text]
    return {"last1": parts[-1], "last2": "".join(parts[-2:]), "c16": text[-16:], "c24": text[-24:]}


def scores(kb: KnowledgeBase, text: str, qv: np.ndarray, own: str | None, where: dict[str, int]) -> np.ndarray:
    lex, dense = kb.view_scores_lexical(text), kb.view_vectors @ qv
    held = where.get(own) if own is not None else None
    if held is not None:
        lex[held] = dense[held] = -1.0
    return kb.entry_scores(lex, dense, qv, held_out=held)[0]


def main() -> int:
    kb = KnowledgeBase.from_content(embedder=embedder_from_env(threads=2), cache_dir=ROOT / "var" / "kb_cache")
    index = {e.id: i for i, e in enumerate(kb.entries)}
    where = {v: i for i, v in enumerate(kb.views)}
    ev = yaml.safe_load(kcal.EVALSET_FILE.read_text(encoding="utf-8"))["items"]
    sets = {"tune": ([(str(it["text"]), {index[e] for e in it["expected"] if e in index})
                      for it in ev if it.get("half") == "tune" and it.get("expected")], False)}
    held = {f.name for f in TRAINSET_LABELS.glob(CALIBRATION_ONLY_GLOB)}
    for name, pick in (("batch 3 (left out)", True), ("batches 1-2 (left out)", False)):
        sets[name] = ([(str(it["text"]), {index[e] for e in it["expected"] if e in index})
                       for f in sorted(TRAINSET_LABELS.glob("*.yml")) if (f.name in held) == pick
                       for it in yaml.safe_load(f.read_text(encoding="utf-8"))["items"] if it.get("expected")], True)
    for name, (items, leave) in sets.items():
        texts = [t for t, _ in items]
        qv = kb.embedder.encode_queries([kbtext.normalize(t) for t in texts])
        full = [scores(kb, t, v, t if leave else None, where) for t, v in zip(texts, qv, strict=True)]
        line = []
        for kind in ("last1", "last2", "c16", "c24"):
            tt = [tails(t)[kind] for t in texts]
            tv = kb.embedder.encode_queries([kbtext.normalize(x) for x in tt])
            tail = [scores(kb, x, v, t if leave else None, where) for t, x, v in zip(texts, tt, tv, strict=True)]
            for a in (0.0, 0.1, 0.2, 0.3, 0.5):
                t1 = t3 = 0
                for (t, exp), f, g in zip(items, full, tail, strict=True):
                    order = np.argsort(-(f + a * g if len(t) >= LONG else f))[:3]
                    t1 += order[0] in exp
                    t3 += bool(set(order.tolist()) & exp)
                line.append(f"{kind}@{a}: {t1 / len(items):.3f}/{t3 / len(items):.3f}")
        print(f"{name} ({len(items)}):\n  " + "\n  ".join(line))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
