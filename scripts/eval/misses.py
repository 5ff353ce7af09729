"""Where the right entry is lost on the realistic tuning half: right first, in 2nd/3rd place, or missed.

    . scripts/env.sh && .venv/svc/bin/python scripts/eval/misses.py [--list]

For every answerable question of knowledge/evalset/citizen.yml (half: tune; the test half is never read
here) with the default model and index: where the first accepted entry ranks, and whether a wrong first
entry is of the same area (id prefix) as an accepted one. --list prints each miss with the two best entries.
"""
from __future__ import annotations

import argparse
import collections
import os
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from knowledge.calibration import EVALSET_FILE  # noqa: E402
from knowledge.embedding import embedder_from_env  # noqa: E402
from knowledge.retriever import KnowledgeBase  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--list", action="store_true", help="print every miss")
    args = ap.parse_args()
    kb = KnowledgeBase.from_content(embedder=embedder_from_env(threads=2),
                                    cache_dir=os.environ.get("KB_CACHE_DIR", ROOT / "var" / "kb_cache"))
    items = [it for it in yaml.safe_load(EVALSET_FILE.read_text(encoding="utf-8"))["items"]
             if it.get("half") == "tune" and it.get("expected")]
    counts: collections.Counter[str] = collections.Counter()
    for it in items:
        expected = set(it["expected"] if isinstance(it["expected"], list) else [it["expected"]])
        ids = [h.entry.id for h in kb.decide(str(it["text"])).hits[:5]]
        if ids[0] in expected:
            counts["right first"] += 1
            continue
        counts["2nd or 3rd" if set(ids[:3]) & expected else "missed (not in top 3)"] += 1
        same_area = ids[0].split("-")[0] in {e.split("-")[0] for e in expected}
        counts["wrong first, same area" if same_area else "wrong first, other area"] += 1
        if args.list:
            print(f"{it['text']} | want {sorted(expected)} | got {ids[:3]}")
    print(f"{len(items)} answerable tuning questions: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
