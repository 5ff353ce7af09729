"""Label the training questions that had no entry (`expected: []`) with the entries written for them.

Input: mapping files of `- {text: <the question as in knowledge/trainset/labels>, entry: <id> | null}` written by
whoever closed the gaps (docs/content_gaps.md). Each question still labelled `expected: []` gets `[entry]`; the
label files keep their layout (only that line changes). Questions mapped to null stay gaps. Prints what it did;
`--check` changes nothing and exits 1 if a mapped question is not found or an entry id does not exist.

Usage: `.venv/svc/bin/python scripts/content/relabel_gaps.py MAPPING.yml [MAPPING.yml …] [--check]`
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from knowledge.schema import load_entries  # noqa: E402

LABELS = ROOT / "knowledge" / "trainset" / "labels"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mappings", nargs="+", type=Path)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    ids = {e.id for e in load_entries()}
    wanted: dict[str, str] = {}
    problems = []
    for m in args.mappings:
        for item in yaml.safe_load(m.read_text(encoding="utf-8")) or []:
            if item.get("entry"):
                if item["entry"] not in ids:
                    problems.append(f"{item['entry']}: no such entry ({item['text']})")
                wanted[str(item["text"])] = str(item["entry"])
    found: set[str] = set()
    for f in sorted(LABELS.glob("*.yml")):
        lines = f.read_text(encoding="utf-8").splitlines(keepends=True)
        changed = 0
        for i, line in enumerate(lines):
            stripped = line.strip()
            if not stripped.startswith("text:"):
                continue
            text = str(yaml.safe_load(stripped[len("text:"):].strip()))
            if text not in wanted:
                continue
            j = next((k for k in range(i + 1, min(i + 4, len(lines))) if lines[k].strip().startswith("expected:")), None)
            if j is None or lines[j].strip() != "expected: []":
                continue  # labelled already (by an earlier run, or it was never a gap)
            found.add(text)
            indent = lines[j][: len(lines[j]) - len(lines[j].lstrip())]
            lines[j] = f"{indent}expected: [{wanted[text]}]\n"
            changed += 1
        if changed and not args.check:
            f.write_text("".join(lines), encoding="utf-8")
        if changed:
            print(f"{f.name}: {changed} questions labelled")
    missing = [t for t in wanted if t not in found]
    for t in missing:
        problems.append(f"not found as a gap in the labels: {json.dumps(t, ensure_ascii=False)}")
    for p in problems:
        print(p)
    print(f"{len(found)} of {len(wanted)} mapped questions labelled" + (" (check only)" if args.check else ""))
    return 1 if problems and args.check else 0


if __name__ == "__main__":
    raise SystemExit(main())
