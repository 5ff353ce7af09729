"""Labelling work for new entries: which evaluation items might a new entry also answer?

When entries are added, a labelled question whose need a new entry also answers would count that entry as
wrong until the labels know it (and the confidence model, fitted on the training questions, would learn that
a right first entry is wrong). This script lists, for every item of a labelled set, the new entries among
the retriever's best five, as work files for labellers who see only the question and the entries' texts (no
score, no rank); `--merge` adds the ids they accepted to the set's files.

    python scripts/eval/label_candidates.py --set evalset --before DIR --out var/labelling --parts 4
    python scripts/eval/label_candidates.py --set evalset --merge var/labelling/part1.answers.yml ...

Sets: `evalset` (knowledge/evalset/citizen.yml, both halves), `trainset` (knowledge/trainset/labels/*.yml),
`devset` (knowledge/devset/devset.yml). Only the `expected` lists change; the files keep their layout.

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

SETS = {
    "evalset": [ROOT / "knowledge" / "evalset" / "citizen.yml"],
    "trainset": sorted((ROOT / "knowledge" / "trainset" / "labels").glob("*.yml")),
    "devset": [ROOT / "knowledge" / "devset" / "devset.yml"],
}
TOP = 5


def _items(path: Path) -> list[dict]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))["items"]


def candidates(files: list[Path], before: Path, out: Path, parts: int) -> None:
    from knowledge.embedding import embedder_from_env
    from knowledge.retriever import KnowledgeBase

    old = {e.id for e in load_entries(before)}
    kb = KnowledgeBase.from_content(embedder=embedder_from_env(), cache_dir=ROOT / "var" / "kb_cache", calibrate=False)
    work = []
    for path in files:
        for n, it in enumerate(_items(path)):
            new = [h.entry for h in kb.search(str(it["text"]), k=TOP) if h.entry.id not in old]
            new = [e for e in new if not isinstance(it.get("expected"), list) or e.id not in it["expected"]]
            if new:
                work.append({"file": path.relative_to(ROOT).as_posix(), "item": n, "question": str(it["text"]),
                             "candidates": [{"id": e.id, "question": e.question, "answer": e.answer.strip()}
                                            for e in new]})
    out.mkdir(parents=True, exist_ok=True)
    for p in range(parts):
        chunk = work[p::parts]
        (out / f"part{p + 1}.yml").write_text(
            yaml.safe_dump({"items": chunk}, allow_unicode=True, sort_keys=False, width=1000), encoding="utf-8")
    pairs = sum(len(w["candidates"]) for w in work)
    print(f"{len(work)} items with {pairs} candidate pairs in {parts} parts under {out}")


def merge(answers: list[Path]) -> None:
    known = {e.id for e in load_entries()}
    updates: dict[str, dict[int, tuple[str, list[str]]]] = {}
    for f in answers:
        for row in (yaml.safe_load(f.read_text(encoding="utf-8")) or {}).get("items") or []:
            accepted = [i for i in row.get("accept") or [] if i in known]
            if accepted:
                updates.setdefault(row.get("file") or "knowledge/evalset/citizen.yml", {})[int(row["item"])] = (
                    str(row["question"]), accepted)
    added = touched = 0
    for rel, by_item in updates.items():
        path = ROOT / rel
        items = _items(path)
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        # the n-th `expected:` key of the file belongs to the n-th item (every item has one)
        at = [k for k, line in enumerate(lines) if line.lstrip().startswith("expected:")]
        if len(at) != len(items):
            raise SystemExit(f"{rel}: {len(at)} expected keys for {len(items)} items")
        for n in sorted(by_item, reverse=True):
            question, accepted = by_item[n]
            it = items[n]
            if str(it["text"]) != question:
                raise SystemExit(f"{rel}: item {n} is not {question!r}")
            current = it.get("expected") if isinstance(it.get("expected"), list) else []  # `none`: no entry
            new = [i for i in accepted if i not in current]
            if not new:
                continue
            ids = current + new
            k = at[n]
            indent = lines[k][: len(lines[k]) - len(lines[k].lstrip())]
            block = k + 1  # a block list under the key: its `- id` lines follow
            while block < len(lines) and lines[block].startswith(indent + "- ") and not lines[block].startswith(
                    indent + "- text:"):
                block += 1
            if lines[k].split("expected:", 1)[1].strip():  # a flow list, [] or `none` on the key's line
                lines[k] = f"{indent}expected: [{', '.join(ids)}]\n"
            else:
                lines[block:block] = [f"{indent}- {i}\n" for i in new]
            added += len(new)
            touched += 1
        path.write_text("".join(lines), encoding="utf-8")
        check = _items(path)
        if [str(i["text"]) for i in check] != [str(i["text"]) for i in items]:
            raise SystemExit(f"{rel}: the merge changed the questions")
    print(f"{added} ids added to {touched} items")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", choices=sorted(SETS), default="evalset")
    ap.add_argument("--before", type=Path, help="the content folder before the new entries")
    ap.add_argument("--out", type=Path, default=ROOT / "var" / "labelling")
    ap.add_argument("--parts", type=int, default=4)
    ap.add_argument("--merge", type=Path, nargs="+", help="labellers' answer files to merge into citizen.yml")
    args = ap.parse_args()
    if args.merge:
        merge(args.merge)
    elif args.before:
        candidates(SETS[args.set], args.before, args.out, args.parts)
    else:
        ap.error("--before DIR or --merge FILE...")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
