"""Manage the knowledge base from the terminal.

  python -m knowledge.cli validate                 check every entry (ids, fields, voice answers, near-duplicates)
  python -m knowledge.cli search 社保卡丢了咋办      rank entries for a question (shows the band)
  python -m knowledge.cli show card-0001           print one entry
  python -m knowledge.cli add FILE.yml             add or update entries from a YAML file (same schema)
  python -m knowledge.cli duplicates [--dense]     list near-duplicate questions across entries
  python -m knowledge.cli reindex                  build the embedding cache now (prints the shipped calibration)
  python -m knowledge.cli calibrate [--write]      fit the answer bands on the tuning halves; --write ships them
  python -m knowledge.cli stats                    counts per area, local_review share
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path

import yaml

from knowledge.schema import (
    CONTENT_DIR,
    REQUIRED,
    ContentError,
    content_files,
    load_entries,
    near_duplicate_questions,
    validate,
)


def _content_dir() -> Path:
    return Path(os.environ.get("KB_CONTENT_DIR") or CONTENT_DIR)


def _embedder():
    from knowledge.embedding import embedder_from_env

    return embedder_from_env()


def _kb(dense: bool = True):
    from knowledge.retriever import KnowledgeBase

    cache = os.environ.get("KB_CACHE_DIR") or str(Path(__file__).resolve().parent.parent / "var" / "kb_cache")
    return KnowledgeBase.from_content(_content_dir(), _embedder() if dense else None, cache)


def cmd_validate(args: argparse.Namespace) -> int:
    """Print every problem; exit 1 if there is any."""
    try:
        entries = load_entries(_content_dir())
    except ContentError as exc:
        print(f"invalid content: {exc}")
        return 1
    problems = validate(entries)
    for p in problems:
        print(p)
    print(f"{len(entries)} entries in {len(content_files(_content_dir()))} files: "
          f"{'OK' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


def cmd_search(args: argparse.Namespace) -> int:
    """Rank entries for a question and show the band the bot would use."""
    kb = _kb(dense=not args.lexical)
    q = " ".join(args.question)
    t0 = time.perf_counter()
    d = kb.decide(q, k=args.k)
    ms = (time.perf_counter() - t0) * 1000
    print(f"band={d.band} confidence={d.confidence:.3f} margin={d.margin:.3f} ({ms:.1f} ms)")
    if d.clarify:
        print(f"  asks back: {d.clarify.prompt} {d.clarify.options}")
    for h in d.hits:
        print(f"  {h.entry.id:14s} {h.score:.3f} (dense {h.dense:.3f}, lexical {h.lexical:.3f})  {h.entry.question}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Print one entry as YAML."""
    for e in load_entries(_content_dir()):
        if e.id == args.id:
            d = {k: (list(v) if isinstance(v, tuple) else v) for k, v in e.__dict__.items() if k != "file"}
            print(f"# {e.file}")
            print(yaml.safe_dump(d, allow_unicode=True, sort_keys=False))
            return 0
    print(f"no entry {args.id}")
    return 1


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings (answers) as literal blocks, as the content files do."""


_BlockDumper.add_representer(str, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", v, style="|" if "\n" in v else None))


def _entry_block(raw: dict, indent: str) -> str:
    """One entry as YAML text, indented as an item of the file's entries list (keys in schema order)."""
    order = [*REQUIRED, "keywords"]
    raw = {k: raw[k] for k in sorted(raw, key=lambda k: order.index(k) if k in order else len(order))}
    text = yaml.dump([raw], Dumper=_BlockDumper, allow_unicode=True, sort_keys=False, width=1000)
    return "".join(indent + line if line.strip() else line for line in text.splitlines(keepends=True))


def _replace_entry(text: str, entry_id: str, block: str) -> str:
    """The file text with one entry's block replaced; other entries keep their exact formatting."""
    m = re.search(rf"^([ \t]*)- id: {re.escape(entry_id)}[ \t]*$", text, re.M)
    nxt = re.compile(rf"^{re.escape(m.group(1))}- id: ", re.M).search(text, m.end())
    return text[: m.start()] + block.rstrip("\n") + "\n" + (text[nxt.start():] if nxt else "")


def cmd_add(args: argparse.Namespace) -> int:
    """Add or update entries; only the affected file's text changes, the rest keeps its formatting."""
    from knowledge.schema import _entry_from_raw

    new = yaml.safe_load(Path(args.file).read_text(encoding="utf-8"))
    new_entries = new["entries"] if isinstance(new, dict) else new
    content = _content_dir()
    texts = {f: f.read_text(encoding="utf-8") for f in content_files(content)}
    docs = {f: yaml.safe_load(t) for f, t in texts.items()}
    for raw in new_entries:
        target = next((f for f, d in docs.items() if any(e["id"] == raw["id"] for e in d["entries"])), None)
        if target is not None:
            indent = re.search(rf"^([ \t]*)- id: {re.escape(raw['id'])}[ \t]*$", texts[target], re.M).group(1)
            texts[target] = _replace_entry(texts[target], raw["id"], _entry_block(raw, indent))
            print(f"updated {raw['id']} in {target.name}")
        else:
            area = str(raw["id"]).split("-")[0]
            target = next((f for f, d in docs.items() if d.get("area") == area), content / f"{area}.yml")
            text = texts.get(target, f"area: {area}\nentries:\n")
            m = re.search(r"^([ \t]*)- id: ", text, re.M)
            texts[target] = text.rstrip("\n") + "\n" + _entry_block(raw, m.group(1) if m else "  ")
            print(f"added {raw['id']} to {target.name}")
        docs[target] = yaml.safe_load(texts[target])
    entries = [_entry_from_raw(e, f.name) for f, d in docs.items() for e in d["entries"]]
    problems = validate(entries)
    if problems:  # nothing is written unless the whole content stays valid
        print("not saved:\n  " + "\n  ".join(problems))
        return 1
    for f, t in texts.items():
        if not f.exists() or f.read_text(encoding="utf-8") != t:
            f.write_text(t, encoding="utf-8")
    print("saved; the action server re-indexes within KB_WATCH_SECONDS (no Rasa retraining needed)")
    return 0


def cmd_duplicates(args: argparse.Namespace) -> int:
    """Near-duplicate questions by character overlap, and with --dense by embedding similarity."""
    entries = load_entries(_content_dir())
    for a, b, s in near_duplicate_questions(entries, threshold=args.threshold):
        print(f"lexical {s:.2f}  {a} ~ {b}")
    if args.dense:
        import numpy as np

        emb = _embedder()
        vecs = emb.encode_queries([e.question for e in entries])
        sims = vecs @ vecs.T
        np.fill_diagonal(sims, 0)
        for i, j in zip(*np.where(np.triu(sims) >= args.dense_threshold), strict=False):
            print(f"dense {sims[i, j]:.3f}  {entries[i].id} {entries[i].question} ~ {entries[j].id} {entries[j].question}")
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    """Build (or refresh) the embedding cache and calibration."""
    t0 = time.perf_counter()
    kb = _kb()
    print(f"indexed {len(kb.entries)} entries / {len(kb.views)} texts, embedded {kb.embedded_now} new, "
          f"{time.perf_counter() - t0:.1f} s; calibration {kb.calibration.report}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Fit the confidence model and bands on the tuning halves; with --write, into knowledge/calibration.json."""
    from knowledge.calibration import fit_shipped

    kb = _kb(dense=not args.lexical)
    cal = fit_shipped(kb)
    print(f"{kb.mode}: confident >= {cal.confident_at:.4f}, unsure >= {cal.unsure_at:.4f}; {cal.report}")
    if args.write:
        cal.save(kb.mode)
        print(f"written to knowledge/calibration.json ({kb.mode}, model {kb.model_id})")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    """Entry counts per area and category."""
    entries = load_entries(_content_dir())
    for area, n in Counter(e.id.split("-")[0] for e in entries).most_common():
        print(f"{area:10s} {n}")
    print(f"total {len(entries)}; local_review {sum(e.local_review for e in entries)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run one command."""
    p = argparse.ArgumentParser(prog="python -m knowledge.cli", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("validate").set_defaults(fn=cmd_validate)
    s = sub.add_parser("search")
    s.add_argument("question", nargs="+")
    s.add_argument("-k", type=int, default=5)
    s.add_argument("--lexical", action="store_true", help="lexical retrieval only (no model)")
    s.set_defaults(fn=cmd_search)
    s = sub.add_parser("show")
    s.add_argument("id")
    s.set_defaults(fn=cmd_show)
    s = sub.add_parser("add")
    s.add_argument("file")
    s.set_defaults(fn=cmd_add)
    s = sub.add_parser("duplicates")
    s.add_argument("--threshold", type=float, default=0.6)
    s.add_argument("--dense", action="store_true")
    s.add_argument("--dense-threshold", type=float, default=0.97)
    s.set_defaults(fn=cmd_duplicates)
    sub.add_parser("reindex").set_defaults(fn=cmd_reindex)
    s = sub.add_parser("calibrate")
    s.add_argument("--write", action="store_true", help="ship the result in knowledge/calibration.json")
    s.add_argument("--lexical", action="store_true", help="calibrate lexical-only retrieval (no model)")
    s.set_defaults(fn=cmd_calibrate)
    sub.add_parser("stats").set_defaults(fn=cmd_stats)
    args = p.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
