"""Answer-quality benchmark on the realistic citizen set: what a citizen sees, variant by variant, in one run.

For each retrieval variant the answer bands are fitted on the tuning halves only (as
`knowledge.cli calibrate` does), then measured on the test halves:
- business questions with an answer (knowledge/evalset/citizen.yml, half: test): right direct
  answer, wrong direct answer, asked back (clarify), suggestions (unsure), not found; top-1, top-3;
- business questions no entry answers (expected: []): answered directly anyway;
- out-of-scope messages (knowledge/evalset/routing.yml, route out_of_scope, half: test): answered directly;
- the old development set's test half (odd positions): top-1, top-3, right and wrong direct;
- latency of one decision (normalise, embed, score, decide) p50 / p95, and the process's peak memory.

Run: make kb-bench   (or: . scripts/env.sh && .venv/svc/bin/python scripts/bench_answers.py [--variants a,b])
Writes docs/bench_retrieval.md.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from knowledge import text as kbtext  # noqa: E402
from knowledge.calibration import fit_shipped  # noqa: E402
from knowledge.embedding import E5Embedder  # noqa: E402
from knowledge.policy import load_calibration  # noqa: E402
from knowledge.retriever import KnowledgeBase, citizen_wordings, not_ours_messages  # noqa: E402
from knowledge.schema import load_entries  # noqa: E402

EVAL = ROOT / "knowledge" / "evalset"
DEVSET = ROOT / "knowledge" / "devset" / "devset.yml"
REPORT = ROOT / "docs" / "bench_retrieval.md"
BASE = ROOT / "models" / "multilingual-e5-small"
TUNED = ROOT / "models" / "e5-small-shebao"
CACHE = ROOT / "var" / "kb_cache"
# name: (model folder or None, precision, dialect normaliser)
VARIANTS = {
    "lexical": (None, "fp32", True),
    "base": (BASE, "fp32", False),
    "base+norm": (BASE, "fp32", True),
    "base+norm-int8": (BASE, "int8", True),
    "tuned+norm": (TUNED, "fp32", True),
    "tuned+norm-int8": (TUNED, "int8", True),
}
DEFAULT = "tuned+norm"


def _exp(e):
    return set(e) if e else None


def test_sets(known: set[str] | None = None) -> dict[str, list[tuple[str, set[str] | None]]]:
    """The test halves. ``known``: the entry ids of the content measured (another content folder, e.g. the content
    before new entries were written): labels name only those, and an item none of whose entries exist there is a
    question no entry answers, as it was for that content."""
    citizen = yaml.safe_load((EVAL / "citizen.yml").read_text(encoding="utf-8"))["items"]
    routing = yaml.safe_load((EVAL / "routing.yml").read_text(encoding="utf-8"))["items"]
    dev = yaml.safe_load(DEVSET.read_text(encoding="utf-8"))["items"][1::2]
    if known is not None:
        for items, none in ((citizen, []), (dev, "none")):
            for it in items:
                if isinstance(it["expected"], list):
                    it["expected"] = [i for i in it["expected"] if i in known] or none
    return {
        "business": [(it["text"], _exp(it["expected"])) for it in citizen if it["half"] == "test" and it["expected"]],
        "gaps": [(it["text"], None) for it in citizen if it["half"] == "test" and not it["expected"]],
        "oos": [(it["text"], None) for it in routing if it["half"] == "test" and it["route"] == "out_of_scope"],
        "devset": [(str(it["text"]), None if it["expected"] in ("none", None) else
                    set(it["expected"] if isinstance(it["expected"], list) else [it["expected"]])) for it in dev],
    }


def measure(kb: KnowledgeBase, items) -> dict:
    counts = {"right_direct": 0, "wrong_direct": 0, "clarify": 0, "unsure": 0, "none": 0, "top1": 0, "top3": 0,
              "clarify_has_right": 0, "unsure_first_right": 0, "not_ours": 0}
    lat, gaps = [], []
    answerable = [e for _, e in items if e]
    for text, exp in items:
        t0 = time.perf_counter()
        d = kb.decide(text, k=3)
        lat.append((time.perf_counter() - t0) * 1000)
        ids = [h.entry.id for h in d.hits]
        if len(d.hits) > 1:
            gaps.append(d.hits[0].dense - d.hits[1].dense)
        if exp:
            counts["top1"] += ids[0] in exp
            counts["top3"] += any(i in exp for i in ids[:3])
        if d.band == "confident":
            counts["right_direct" if exp and ids[0] in exp else "wrong_direct"] += 1
        else:
            counts[d.band] += 1
            counts["not_ours"] += d.not_ours
            if d.band == "clarify" and exp and any(i in exp for _, i in d.clarify.options):
                counts["clarify_has_right"] += 1
            if d.band == "unsure" and exp and ids[0] in exp:
                counts["unsure_first_right"] += 1
    n = max(1, len(items))
    out = {k: round(v / n, 4) for k, v in counts.items() if k not in ("top1", "top3")}
    na = max(1, len(answerable))
    out.update(gap_median=round(float(np.median(gaps)), 4) if gaps else 0.0, n=len(items), top1=round(counts["top1"] / na, 4), top3=round(counts["top3"] / na, 4),
               p50_ms=round(float(np.percentile(lat, 50)), 1), p95_ms=round(float(np.percentile(lat, 95)), 1))
    return out


def run_variant(name: str) -> dict:
    model, precision, dialect = VARIANTS[name]
    model = os.environ.get("BENCH_MODEL_DIR") or model  # --model: the same variant with another model folder
    kbtext.USE_DIALECT = dialect
    t0 = time.perf_counter()
    emb = E5Embedder(str(model), precision=precision, threads=int(os.environ.get("EMBEDDING_THREADS", "1"))) if model else None
    content = os.environ.get("BENCH_CONTENT_DIR")  # --content: the same variant over another content folder
    entries = load_entries(content) if content else load_entries()
    kb = KnowledgeBase(entries, emb, CACHE, extra_views=citizen_wordings(), not_ours=not_ours_messages())
    t_index = time.perf_counter() - t0
    t0 = time.perf_counter()
    # --shipped: the bands every install uses (knowledge/calibration.json) instead of a refit on the tuning halves
    kb.calibration = load_calibration(kb.mode, kb.model_id) if os.environ.get("BENCH_SHIPPED") else fit_shipped(kb)
    t_cal = time.perf_counter() - t0
    kb.decide("预热")
    label = name + (f" [{os.environ['BENCH_CONTENT_NAME']}]" if content else "") \
        + (f" [{os.environ['BENCH_MODEL_NAME']}]" if os.environ.get("BENCH_MODEL_DIR") else "")
    res = {"variant": label + (" (shipped bands)" if os.environ.get("BENCH_SHIPPED") else ""), "entries": len(entries),
           "model_id": kb.model_id, "index_s": round(t_index, 1), "calibrate_s": round(t_cal, 1),
           "confident_at": round(kb.calibration.confident_at, 4), "unsure_at": round(kb.calibration.unsure_at, 4),
           "tuning": kb.calibration.report}
    for set_name, items in test_sets({e.id for e in entries} if content else None).items():
        res[set_name] = measure(kb, items)
    res["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return res


def report(results: list[dict]) -> str:
    sets = test_sets()
    lines = [
        "# Answer quality and retrieval benchmark",
        "",
        f"Run {date.today().isoformat()} on this machine ({os.cpu_count()} cores) by `make kb-bench` "
        "(`scripts/bench_answers.py`). Each variant runs in its own process (its own peak memory); its answer bands "
        "are fitted on the tuning halves only and every figure below is on the **test halves**, never used for tuning.",
        "",
        f"- Realistic citizen set (knowledge/evalset, written from citizens' situations by writers who never read our "
        f"entries): {len(sets['business'])} business questions with an answer, {len(sets['gaps'])} that no entry "
        f"answers, {len(sets['oos'])} out-of-scope messages in the test half.",
        f"- Old development set (written from our standard questions), test half: {len(sets['devset'])} questions.",
        "",
        "## Realistic test half: what the citizen sees",
        "",
        "| variant | right direct | wrong direct | asked back | suggestions (first right) | not found | top-1 | top-3 "
        "| no-entry answered | out-of-scope answered (offered entries) | called not ours | median dense gap 1st-2nd "
        "| p50 / p95 ms | peak MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        b, g, o = r["business"], r["gaps"], r["oos"]
        mark = " **(default)**" if r["variant"] == DEFAULT else ""
        lines.append(
            f"| {r['variant']}{mark} | {b['right_direct']:.3f} | {b['wrong_direct']:.3f} | {b['clarify']:.3f} "
            f"| {b['unsure']:.3f} ({b['unsure_first_right']:.3f}) | {b['none']:.3f} | {b['top1']:.3f} | {b['top3']:.3f} "
            f"| {g['right_direct'] + g['wrong_direct']:.3f} | {o['wrong_direct']:.3f} ({1 - o['none']:.3f}) "
            f"| {b['not_ours']:.3f} | {b['gap_median']:.4f} "
            f"| {b['p50_ms']} / {b['p95_ms']} | {r['peak_rss_mb']} |")
    lines += ["", "## Old development set, test half", "",
              "| variant | top-1 | top-3 | right direct | wrong direct |", "|---|---|---|---|---|"]
    for r in results:
        d = r["devset"]
        lines.append(f"| {r['variant']} | {d['top1']:.3f} | {d['top3']:.3f} | {d['right_direct']:.3f} | {d['wrong_direct']:.3f} |")
    lines += ["", "## Details", ""]
    for r in results:
        lines.append(f"- **{r['variant']}** (`{r['model_id']}`): index {r['index_s']} s (embedding cache may be warm), "
                     f"calibration {r['calibrate_s']} s; confident ≥ {r['confident_at']}, unsure ≥ {r['unsure_at']}; "
                     f"tuning halves: {json.dumps(r['tuning'], ensure_ascii=False)}")
    lines += ["", "Variants: `lexical` BM25 only; `base` multilingual-e5-small as built from PyPI + BM25 without the dialect "
              "normaliser; `+norm` with the dialect/homophone/opening normaliser (knowledge/text.py) on both sides; "
              "`tuned` the model fine-tuned on our entries' wordings (modelbuild/finetune.py); `-int8` dynamic int8 "
              "linear layers (faster, but its kernels differ between CPUs: see docs/determinism.md).", ""]
    return "\n".join(lines)


NOTES_MARK = "<!-- notes: written by hand, kept when the benchmark rewrites the tables above -->"


def _kept_notes() -> str:
    """The hand-written part of the report (experiments, history, targets), from the marker on."""
    old = REPORT.read_text(encoding="utf-8") if REPORT.exists() else ""
    return "\n" + old[old.index(NOTES_MARK):] if NOTES_MARK in old else "\n" + NOTES_MARK + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one variant, print JSON
    ap.add_argument("--content", action="append", default=[], metavar="NAME=DIR",
                    help="also run the default variant over the content folder DIR, labelled NAME (e.g. the content "
                         "before a change, from `git worktree`), in the same run")
    ap.add_argument("--model", action="append", default=[], metavar="NAME=DIR",
                    help="also run the default variant with the model folder DIR, labelled NAME (e.g. a retrained "
                         "model before its delta ships: the bands are refitted for it unless --shipped), in the same run")
    ap.add_argument("--shipped", action="store_true",
                    help="measure with the shipped bands (knowledge/calibration.json), as an install answers, "
                         "instead of refitting them on the tuning halves")
    args = ap.parse_args()
    if args.one:
        print("RESULT " + json.dumps(run_variant(args.one), ensure_ascii=False))
        return
    results = []
    runs = [(name, {}) for name in args.variants.split(",") if name]
    runs += [(DEFAULT, {"BENCH_CONTENT_NAME": c.split("=", 1)[0], "BENCH_CONTENT_DIR": c.split("=", 1)[1]})
             for c in args.content]
    runs += [(DEFAULT, {"BENCH_MODEL_NAME": m.split("=", 1)[0], "BENCH_MODEL_DIR": str(Path(m.split("=", 1)[1]).resolve())})
             for m in args.model]
    for name, extra in runs:
        folder = Path(extra["BENCH_MODEL_DIR"]) if "BENCH_MODEL_DIR" in extra else VARIANTS[name][0]
        if folder is not None and not (folder / "config.json").exists():
            print(f"skip {name}: {folder} not built")
            continue
        shipped = {"BENCH_SHIPPED": "1"} if args.shipped else {}
        out = subprocess.run([sys.executable, __file__, "--one", name], capture_output=True, text=True, check=True,
                             env={**os.environ, **extra, **shipped}).stdout
        res = json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])
        b = res["business"]
        print(f"{res['variant']:16s} ({res['entries']} entries) right {b['right_direct']:.3f} wrong {b['wrong_direct']:.3f} clarify {b['clarify']:.3f} "
              f"unsure {b['unsure']:.3f} none {b['none']:.3f} top1 {b['top1']:.3f} top3 {b['top3']:.3f} "
              f"oos-answered {res['oos']['wrong_direct']:.3f} oos-offered {1 - res['oos']['none']:.3f} "
              f"not-ours {b['not_ours']:.3f} p50 {b['p50_ms']} ms", flush=True)
        results.append(res)
    REPORT.write_text(report(results) + _kept_notes(), encoding="utf-8")
    print(f"wrote {REPORT}")


if __name__ == "__main__":
    main()
