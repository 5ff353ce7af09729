"""Labelling work for new entries: which evaluation items might a new entry also answer?

When entries are added, an evaluation item whose need a new entry also answers would count that entry as
wrong until the labels know it. This script lists, for every item of the realistic set (both halves), the
new entries among the retriever's best five, as work files for labellers who see only the question and the
entries' texts (no score, no rank); `--merge` adds the ids they accepted to knowledge/evalset/citizen.yml.

    python scripts/eval/label_candidates.py --before DIR --out var/labelling --parts 4
    python scripts/eval/label_candidates.py --merge var/labelling/part1.answers.yml ...

A new entry is an id that the content in DIR (the content before the growth) does not have.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from knowledge.schema import load_entries  # noqa: E402

EVALSET = ROOT / "knowledge" / "evalset" / "citizen.yml"
TOP = 5


def candidates(before: Path, out: Path, parts: int) -> None:
    from knowledge.embedding import embedder_from_env
    from knowledge.retriever import KnowledgeBase

    old = {e.id for e in load_entries(before)}
    kb = KnowledgeBase.from_content(embedder=embedder_from_env(), cache_dir=ROOT / "var" / "kb_cache", calibrate=False)
    items = yaml.safe_load(EVALSET.read_text(encoding="utf-8"))["items"]
    work = []
    for n, it in enumerate(items):
        new = [h.entry for h in kb.search(it["text"], k=TOP) if h.entry.id not in old]
        new = [e for e in new if e.id not in (it.get("expected") or [])]
        if new:
            work.append({"item": n, "question": it["text"],
                         "candidates": [{"id": e.id, "question": e.question, "answer": e.answer.strip()} for e in new]})
    out.mkdir(parents=True, exist_ok=True)
    for p in range(parts):
        chunk = work[p::parts]
        (out / f"part{p + 1}.yml").write_text(
            yaml.safe_dump({"items": chunk}, allow_unicode=True, sort_keys=False, width=1000), encoding="utf-8")
    pairs = sum(len(w["candidates"]) for w in work)
    print(f"{len(work)} items with {pairs} candidate pairs in {parts} parts under {out}")


def merge(files: list[Path]) -> None:
    doc = yaml.safe_load(EVALSET.read_text(encoding="utf-8"))
    items = doc["items"]
    known = {e.id for e in load_entries()}
    added = touched = 0
    for f in files:
        for row in (yaml.safe_load(f.read_text(encoding="utf-8")) or {}).get("items") or []:
            accepted = [i for i in row.get("accept") or [] if i in known]
            it = items[int(row["item"])]
            if it["text"] != row["question"]:
                raise SystemExit(f"{f}: item {row['item']} is not {row['question']!r}")
            new = [i for i in accepted if i not in (it.get("expected") or [])]
            if new:
                it["expected"] = list(it.get("expected") or []) + new
                added += len(new)
                touched += 1
    text = EVALSET.read_text(encoding="utf-8")
    header = "".join(line for line in text.splitlines(keepends=True)[:3] if line.startswith("#"))
    EVALSET.write_text(header + yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=1000), encoding="utf-8")
    print(f"{added} ids added to {touched} items")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", type=Path, help="the content folder before the new entries")
    ap.add_argument("--out", type=Path, default=ROOT / "var" / "labelling")
    ap.add_argument("--parts", type=int, default=4)
    ap.add_argument("--merge", type=Path, nargs="+", help="labellers' answer files to merge into citizen.yml")
    args = ap.parse_args()
    if args.merge:
        merge(args.merge)
    elif args.before:
        candidates(args.before, args.out, args.parts)
    else:
        ap.error("--before DIR or --merge FILE...")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
