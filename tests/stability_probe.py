"""Decide the pinned questions under one numeric configuration and print the decisions as JSON.

    python tests/stability_probe.py --precision fp32 --threads 2 --batch-size 7 --cache DIR < texts.json

Run in its own process by tests/unit/test_answer_stability.py, so that environment variables that
choose the CPU kernels (ATEN_CPU_CAPABILITY, MKL_ENABLE_INSTRUCTIONS) apply from torch's import on.
The index is built from scratch in DIR (no vectors computed under another configuration are reused).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from knowledge.embedding import E5Embedder, default_model_path  # noqa: E402
from knowledge.retriever import KnowledgeBase  # noqa: E402
from knowledge.schema import CONTENT_DIR  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--cache", required=True)
    args = ap.parse_args()
    texts = json.load(sys.stdin)
    emb = E5Embedder(default_model_path(), threads=args.threads, precision=args.precision, batch_size=args.batch_size)
    kb = KnowledgeBase.from_content(CONTENT_DIR, emb, args.cache)
    out = []
    for t in texts:
        d = kb.decide(t)
        out.append({"text": t, "entry": d.hits[0].entry.id if d.hits else None, "band": d.band,
                    "confidence": round(d.confidence, 5), "margin": round(d.margin, 5)})
    print("RESULT " + json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
