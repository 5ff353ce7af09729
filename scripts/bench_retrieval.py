"""Retrieval benchmark on the development set: lexical-only (baseline), dense-only and hybrid in one run.

Prints top-1/top-3 accuracy, MRR, wrong-confident rate, "none" handling and latency p50/p95 per
query, plus re-indexing time for 1,400 entries and process memory; writes docs/bench_retrieval.md.
Run: make kb-bench   (or: . scripts/env.sh && .venv/svc/bin/python scripts/bench_retrieval.py)
"""
from __future__ import annotations

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

from knowledge.calibration import calibrate, load_tuning_questions  # noqa: E402
from knowledge.embedding import DEFAULT_PRECISION, PRECISIONS, E5Embedder, default_model_path  # noqa: E402
from knowledge.retriever import EmbeddingCache, KnowledgeBase  # noqa: E402
from knowledge.schema import CONTENT_DIR, load_entries  # noqa: E402

DEVSET = ROOT / "knowledge" / "devset" / "devset.yml"
REPORT = ROOT / "docs" / "bench_retrieval.md"


def load_devset() -> list[tuple[str, set[str] | None]]:
    """(text, expected ids) pairs; None means nothing in the knowledge base answers it."""
    items = yaml.safe_load(DEVSET.read_text(encoding="utf-8"))["items"]
    out = []
    for it in items:
        exp = it["expected"]
        out.append((str(it["text"]), None if exp in ("none", None) else set(exp if isinstance(exp, list) else [exp])))
    return out


def evaluate(kb: KnowledgeBase, items) -> dict:
    """Accuracy, band quality and latency of kb.decide over the items."""
    kb.decide("预热")  # first call pays one-off costs (thread pools, caches)
    top1 = top3 = rr = 0.0
    answerable = sum(1 for _, e in items if e)
    wrong_conf = none_ok = confident = 0
    lat = []
    for text, exp in items:
        t0 = time.perf_counter()
        d = kb.decide(text, k=3)
        lat.append((time.perf_counter() - t0) * 1000)
        ids = [h.entry.id for h in d.hits]
        if d.band == "confident":
            confident += 1
        if exp:
            top1 += ids[0] in exp
            top3 += any(i in exp for i in ids[:3])
            rr += next((1 / (r + 1) for r, i in enumerate(ids[:3]) if i in exp), 0.0)
            wrong_conf += d.band == "confident" and ids[0] not in exp
        else:
            none_ok += d.band == "none"
            wrong_conf += d.band == "confident"
    n_none = len(items) - answerable
    return {"top1": top1 / answerable, "top3": top3 / answerable, "mrr": rr / answerable,
            "wrong_confident": wrong_conf / len(items), "confident_share": confident / len(items),
            "none_recognised": none_ok / n_none if n_none else float("nan"),
            "p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95))}


def reindex_1400(embedder, entries) -> tuple[float, int]:
    """Seconds to embed the texts of 1,400 entries from an empty cache (content repeated with variations)."""
    texts = []
    i = 0
    while len(texts) < 1400 * 7:
        e = entries[i % len(entries)]
        texts += [f"{v}（{i}）" for v in e.views]
        i += 1
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        EmbeddingCache(Path(tmp), embedder.model_id).encode(embedder, texts[: 1400 * 7])
        return time.perf_counter() - t0, 1400 * 7


def tune(entries, embedder, cache, items) -> None:
    """Grid-search the fusion weights on the tuning half (even positions) and print the best ones."""
    import itertools

    from knowledge import text as kbtext

    tune_items = [it for it in items[0::2] if it[1]]
    kb = KnowledgeBase(entries, embedder, cache)
    vecs, _ = EmbeddingCache(cache, embedder.model_id).encode(embedder, [kbtext.normalize(t) for t, _ in tune_items])
    ids = np.array([e.id for e in entries])
    comps = []
    for (text, exp), qv in zip(tune_items, vecs, strict=False):
        lex = np.maximum.reduceat(kb.view_scores_lexical(text), kb._starts)
        mx = np.maximum.reduceat(kb.view_vectors @ qv, kb._starts)
        comps.append((mx, kb.centroids @ qv, kb.answer_vectors @ qv, lex, exp))
    best = []
    for w in itertools.product([0.0, 0.5, 1.0], [0.0, 0.5, 1.0, 1.5], [0.0, 0.5, 1.0], [0.0, 0.1, 0.2, 0.3, 0.5, 0.8]):
        if not any(w[:3]):
            continue
        top1 = np.mean([ids[np.argmax(w[0] * a + w[1] * b + w[2] * c + w[3] * d)] in exp for a, b, c, d, exp in comps])
        best.append((round(float(top1), 4), w))
    best.sort(key=lambda x: (-x[0], x[1]))
    for top1, w in best[:10]:
        print(f"top-1 {top1:.3f}  max_view={w[0]} centroid={w[1]} answer={w[2]} lexical={w[3]}")


def measure(precision: str) -> dict:
    """Every figure for one embedding precision (run in its own process, so its memory is its own)."""
    items = load_devset()
    entries = load_entries(CONTENT_DIR)
    model = default_model_path()
    cache = Path(os.environ.get("KB_CACHE_DIR", ROOT / "var" / "kb_cache"))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    embedder = E5Embedder(model, threads=int(os.environ.get("EMBEDDING_THREADS", "1")), precision=precision)
    t0 = time.perf_counter()
    tuning = load_tuning_questions()
    lexical = KnowledgeBase(entries)
    lexical.calibration = calibrate(lexical, labelled=tuning)
    t_lex = time.perf_counter() - t0
    t0 = time.perf_counter()
    hybrid = KnowledgeBase(entries, embedder, cache)
    t_index = time.perf_counter() - t0
    hybrid.calibration = calibrate(hybrid, labelled=tuning)
    dense = KnowledgeBase(entries, embedder, cache, mode="dense")
    dense.calibration = calibrate(dense, labelled=tuning)
    rss_model = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    halves = {"all": items, "test half (odd)": items[1::2], "tuning half (even)": items[0::2]}
    modes = (("lexical (baseline)", lexical), ("dense", dense), ("hybrid", hybrid))
    rows = [{"half": half, "mode": mode, **evaluate(kb, sub)} for half, sub in halves.items() for mode, kb in modes]
    reindex_s, n_texts = reindex_1400(embedder, entries)
    w = hybrid.weights
    return {
        "precision": precision, "model": Path(model).name, "entries": len(entries), "views": len(hybrid.views),
        "items": len(items), "answerable": sum(1 for _, e in items if e), "rows": rows,
        "weights": f"max_view {w.max_view}, centroid {w.centroid}, answer {w.answer}, lexical {w.lexical}",
        "thresholds": f"confident ≥ {hybrid.calibration.confident_at:.3f}, unsure ≥ {hybrid.calibration.unsure_at:.3f}",
        "calibration": hybrid.calibration.report, "t_lex": t_lex, "t_index": t_index,
        "reindex_s": reindex_s, "reindex_texts": n_texts, "rss_before": rss_before, "rss_model": rss_model,
    }


def main() -> int:
    """Run every precision in its own process (fp32 is the baseline), then write the report."""
    if "--tune" in sys.argv:
        model = default_model_path()
        cache = Path(os.environ.get("KB_CACHE_DIR", ROOT / "var" / "kb_cache"))
        embedder = E5Embedder(model, threads=1, precision=os.environ.get("EMBEDDING_PRECISION", DEFAULT_PRECISION))
        tune(load_entries(CONTENT_DIR), embedder, cache, load_devset())
        return 0
    if "--only" in sys.argv:  # child process: one precision, figures as JSON on stdout's last line
        print(json.dumps(measure(sys.argv[sys.argv.index("--only") + 1]), ensure_ascii=False))
        return 0
    results = []
    for precision in PRECISIONS:
        out = subprocess.run([sys.executable, __file__, "--only", precision], check=True,
                             capture_output=True, text=True).stdout.strip().splitlines()[-1]
        results.append(json.loads(out))
        print(f"{precision}: done", flush=True)
    first = results[0]
    lines = [
        "# Retrieval benchmark", "",
        f"Produced by `make kb-bench` (scripts/bench_retrieval.py) on {date.today()} on this {os.cpu_count()}-core machine, "
        f"model `{first['model']}` (transformers + torch, CPU) at each precision the system supports, each in its own "
        f"process: fp32 (the model as built) is the baseline; int8 quantises the linear layers' weights per output "
        f"channel (torch dynamic quantisation) and is the default (`EMBEDDING_PRECISION`).",
        f"Knowledge base: {first['entries']} entries, {first['views']} indexed wordings. Development set "
        f"`knowledge/devset/devset.yml`: {first['items']} utterances ({first['answerable']} answerable, "
        f"{first['items'] - first['answerable']} labelled none), written independently of the entries' paraphrases. "
        "Fusion weights (knowledge/retrieval.yml) were chosen on the tuning half (`--tune`, fp32) and the answer bands "
        "are calibrated per mode and precision on that same tuning half plus `knowledge/calibration_negatives.yml`; "
        "the test half (odd positions) was used for no choice at all.", "",
        "| precision | split | mode | top-1 | top-3 | MRR | wrong & confident | confident share | none recognised | p50 ms | p95 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for res in results:
        for r in res["rows"]:
            if res is not first and r["mode"].startswith("lexical"):
                continue  # the lexical mode uses no model: the same at every precision
            lines.append(f"| {res['precision']} | {r['half']} | {r['mode']} | {r['top1']:.3f} | {r['top3']:.3f} | "
                         f"{r['mrr']:.3f} | {r['wrong_confident']:.3f} | {r['confident_share']:.3f} | "
                         f"{r['none_recognised']:.3f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} |")
    lines += ["", "| precision | re-index 1,400 entries (empty cache) | peak RSS before model / with model and indexes | "
              "hybrid thresholds |", "|---|---|---|---|"]
    for res in results:
        lines.append(f"| {res['precision']} | {res['reindex_s']:.1f} s ({res['reindex_texts']} wordings, no answers) | "
                     f"{res['rss_before']:.0f} / {res['rss_model']:.0f} MB | {res['thresholds']} |")
    lines += ["", f"- hybrid weights: {first['weights']}"]
    for res in results:
        lines.append(f"- {res['precision']} hybrid calibration report: {res['calibration']}")
        lines.append(f"- {res['precision']}: lexical index build + calibration {res['t_lex']:.1f} s; "
                     f"dense index build (embedding cache as found) {res['t_index']:.1f} s")
    lines += ["", "Targets (issue 3): hybrid top-1 ≥ 0.92, top-3 ≥ 0.98, wrong & confident ≤ 0.02, p50 ≤ 30 ms, "
              "p95 ≤ 80 ms, re-index 1,400 entries ≤ 60 s, action server ≤ 1.5 GB."]
    REPORT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
