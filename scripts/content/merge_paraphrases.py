"""Append new citizen wordings to the entries' paraphrases, keeping each content file's formatting.

    python scripts/content/merge_paraphrases.py knowledge/paraphrases_new/*.yml

Each input file maps entry ids to lists of new wordings (`entries: {card-0001: [...]}`), written by
content writers from the entry's answer (how citizens ask about the situations it covers). Wordings
already present (after normalisation) are skipped. The content is validated afterwards.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from knowledge.schema import CONTENT_DIR, load_entries, validate  # noqa: E402
from knowledge.text import normalize  # noqa: E402


def _clean(s: str) -> str:
    s = re.sub(r"\s+", " ", str(s)).strip().strip('"“”')
    return s


def merge(new: dict[str, list[str]]) -> int:
    have = {e.id: {normalize(v) for v in e.views} for e in load_entries()}
    added = 0
    for path in sorted(CONTENT_DIR.glob("*.yml")):
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        out: list[str] = []
        current, in_para, indent = None, False, None
        pending: list[str] = []
        for line in lines:
            m = re.match(r"^  - id: (\S+)", line)
            if m:
                current = m.group(1)
            if in_para and indent is None:
                indent = re.match(r"^(\s*)- ", line).group(1) if re.match(r"^\s*- ", line) else "      "
            if in_para and not line.startswith(indent + "- "):
                out.extend(indent + p for p in pending)
                pending, in_para, indent = [], False, None
            out.append(line)
            if current and re.match(r"^    paraphrases:\s*$", line):
                in_para = True
                seen = have.get(current, set())
                for s in new.get(current, []):
                    s = _clean(s)
                    if s and normalize(s) not in seen:
                        seen.add(normalize(s))
                        pending.append("- " + (s if not re.search(r"[:#'\"\[\]{}]|^[-?!&*]", s) else yaml.safe_dump(s, allow_unicode=True).strip().removesuffix("...").strip()) + "\n")
                        added += 1
        out.extend((indent or "      ") + p for p in pending)
        path.write_text("".join(out), encoding="utf-8")
    return added


def main(files: list[str]) -> None:
    new: dict[str, list[str]] = {}
    for f in files:
        for eid, texts in (yaml.safe_load(Path(f).read_text(encoding="utf-8")) or {}).get("entries", {}).items():
            new.setdefault(eid, []).extend(texts or [])
    n = merge(new)
    problems = validate(load_entries())
    print(f"added {n} wordings; validation: {len(problems)} problems")
    for p in problems[:20]:
        print("  ", p)


if __name__ == "__main__":
    main(sys.argv[1:])
