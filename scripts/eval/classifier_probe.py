"""Does a classifier over the entries rank better than nearest wordings? (probe, tuning half only)

    . scripts/env.sh && .venv/svc/bin/python scripts/eval/classifier_probe.py      (~5 min on 2 cores)

A softmax layer over the entries on the shipped model's vectors of every index wording (entries' own wordings and
knowledge/trainset), trained by cross-entropy (Adam, 300 full-batch steps, seed 0), for two weight decays and two
logit scales; printed: top-1 / top-3 on the realistic tuning half (knowledge/evalset/citizen.yml, half: tune; the
test half is never read) alone and added to the shipped fused score as a·log p. Results: docs/bench_retrieval.md.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from knowledge.calibration import EVALSET_FILE, _query_vectors  # noqa: E402
from knowledge.embedding import embedder_from_env  # noqa: E402
from knowledge.retriever import KnowledgeBase  # noqa: E402


def accuracy(scores: np.ndarray, right: list[set[int]]) -> tuple[float, float]:
    """Top-1 and top-3 of a (questions x entries) score matrix."""
    order = np.argsort(-scores, 1)
    top1 = np.mean([order[i, 0] in r for i, r in enumerate(right)])
    top3 = np.mean([any(x in r for x in order[i, :3]) for i, r in enumerate(right)])
    return round(float(top1), 4), round(float(top3), 4)


def main() -> None:
    torch.manual_seed(0)
    kb = KnowledgeBase.from_content(embedder=embedder_from_env(), cache_dir=ROOT / "var" / "kb_cache")
    items = yaml.safe_load(EVALSET_FILE.read_text(encoding="utf-8"))["items"]
    tune = [(it["text"], it["expected"]) for it in items if it["half"] == "tune" and it["expected"]]
    index = {e.id: i for i, e in enumerate(kb.entries)}
    right = [{index[e] for e in exp if e in index} for _, exp in tune]
    queries = _query_vectors(kb, [t for t, _ in tune])
    fused = np.stack([kb.entry_scores(*kb.view_scores(t, q))[0] for (t, _), q in zip(tune, queries, strict=True)])
    print("shipped fused score", accuracy(fused, right))
    x, y = torch.tensor(kb.view_vectors), torch.tensor(kb.view_owner.astype(np.int64))
    for decay in (1e-4, 1e-3):
        for scale in (20.0, 50.0):
            w = torch.zeros(len(kb.entries), x.shape[1], requires_grad=True)
            b = torch.zeros(len(kb.entries), requires_grad=True)
            opt = torch.optim.Adam([w, b], lr=0.05)
            for _ in range(300):
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(scale * (x @ w.T) + b, y) + decay * (w ** 2).sum()
                loss.backward()
                opt.step()
            with torch.no_grad():
                logp = torch.log_softmax(scale * (torch.tensor(queries) @ w.T) + b, 1).numpy()
            print(f"classifier decay {decay} scale {scale}: alone {accuracy(logp, right)}; "
                  + "; ".join(f"fused + {a}·log p {accuracy(fused + a * logp, right)}" for a in (0.02, 0.05, 0.1, 0.2)),
                  flush=True)


if __name__ == "__main__":
    main()
