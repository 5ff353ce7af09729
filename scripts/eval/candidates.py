"""Print labelling candidates for raw evaluation questions (a helper for the people who label them).

    python scripts/eval/candidates.py knowledge/evalset/raw/card.yml > /tmp/card_candidates.txt

For each question: the union of the 8 best entries by the dense model and by BM25 (id, category,
standard question). Candidates are a hint for the labeller, who reads answers with
`python -m knowledge.cli show ID` and may pick entries that are not listed.
"""
from __future__ import annotations

import sys

import yaml

from knowledge.embedding import embedder_from_env
from knowledge.retriever import KnowledgeBase
from knowledge.schema import load_entries


def main(path: str) -> None:
    kb = KnowledgeBase(load_entries(), embedder_from_env(), "var/kb_cache")
    items = yaml.safe_load(open(path, encoding="utf-8"))["items"]
    for n, it in enumerate(items):
        lex, dense, qv = kb.view_scores(it["text"])
        _, dense_e, lex_e = kb.entry_scores(lex, dense, qv)
        ids: list[int] = []
        for scores in (dense_e, lex_e):
            for i in (-scores).argsort()[:8]:
                if i not in ids:
                    ids.append(int(i))
        print(f"## {n} {it['text']}   [{it.get('topic', '')}]")
        for i in ids:
            e = kb.entries[i]
            print(f"   {e.id:<12} {e.category:<16} {e.question}")


if __name__ == "__main__":
    main(sys.argv[1])
