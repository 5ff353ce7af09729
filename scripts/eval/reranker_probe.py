"""Does a cross-encoder that reads the question and an entry together lift top-1? (probe, not shipped)

    . scripts/env.sh && .venv/svc/bin/python scripts/eval/reranker_probe.py [--steps 1200] [--layers 12]

The domain model (models/e5-small-shebao) as a pair encoder over "query: <question>" and "<entry question>
<start of its answer>", for the 8 best entries of today's ranking. Its score is today's fused score / 0.05
plus a learned correction (mean-pooled output → linear head, starting at zero: before training the reranker
ranks exactly as today). Listwise softmax loss over the 8 towards the accepted entries.
Trained on the domain model's own training questions (knowledge/trainset batches 1-2) and the entries' wordings,
each left out of the index; measured on the realistic tuning half and on training batch 3 left out (neither
ever trained on, by the domain model or here). The test half is not read.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts" / "eval"))

from ranking_probe import labelled, raw_scores  # noqa: E402

from knowledge.embedding import embedder_from_env  # noqa: E402
from knowledge.retriever import KnowledgeBase, trainset_questions  # noqa: E402

K = 8
TAU = 0.05


def fused(kb, lex, dense, cen):
    return np.maximum.reduceat(dense, kb._starts) + cen + 0.1 * np.maximum.reduceat(lex, kb._starts)


def candidates(kb, items, leave_out, force_positive):
    out = []
    for (expected, lex, dense, cen), (text, _) in zip(raw_scores(kb, items, leave_out), items, strict=True):
        s = fused(kb, lex, dense, cen)
        cand = list(np.argsort(-s)[:K])
        if force_positive and not set(cand) & expected:
            best = max(expected, key=lambda i: s[i])
            cand[-1] = best
        out.append((text, cand, s[cand].astype(np.float32), np.array([c in expected for c in cand], np.float32)))
    return out


def entry_text(e) -> str:
    return e.question + " " + e.answer[:40]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--lr", type=float, default=3e-5)
    ap.add_argument("--head-lr", type=float, default=2e-3)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--max-length", type=int, default=80)
    ap.add_argument("--views", type=int, default=3000, help="entry wordings used as training questions")
    a = ap.parse_args()
    import torch  # noqa: PLC0415
    from transformers import AutoTokenizer, BertModel
    torch.manual_seed(7)
    torch.set_num_threads(2)
    rng = random.Random(7)
    kb = KnowledgeBase.from_content(embedder=embedder_from_env(threads=2),
                                    cache_dir=os.environ.get("KB_CACHE_DIR", ROOT / "var" / "kb_cache"))
    index = {e.id: i for i, e in enumerate(kb.entries)}
    sets = labelled(kb)
    model_qs = [(t, {index[x] for x in exp if x in index}) for t, exp in trainset_questions("model")]
    calib = {t for t, _ in trainset_questions("calibration")}
    batch3 = [x for x in sets["train (left out)"] if x[0] in calib]
    tune = sets["tune"]
    citizen = {t for t, _ in trainset_questions("all")}
    view_qs = [(v, {int(kb.view_owner[i])}) for i, v in enumerate(kb.views) if v not in citizen]
    rng.shuffle(view_qs)
    view_qs = view_qs[:a.views]
    t0 = time.time()
    train = candidates(kb, model_qs, True, True) + candidates(kb, view_qs, True, True)
    evals = {"tune": candidates(kb, tune, False, False), "batch 3 (left out)": candidates(kb, batch3, True, False)}
    print(f"candidates in {time.time() - t0:.0f} s; train {len(train)} (citizen {len(model_qs)}), "
          + ", ".join(f"{k} {len(v)}" for k, v in evals.items()), flush=True)
    for name, rows in evals.items():
        t1 = np.mean([r[3][0] > 0 for r in rows])
        t3 = np.mean([r[3][:3].any() for r in rows])
        rk = np.mean([r[3].any() for r in rows])
        print(f"  before: {name}: top-1 {t1:.3f} top-3 {t3:.3f} in top-{K} {rk:.3f}", flush=True)

    path = ROOT / "models" / "e5-small-shebao"
    tok = AutoTokenizer.from_pretrained(path)
    enc = BertModel.from_pretrained(path)
    enc.encoder.layer = enc.encoder.layer[:a.layers]
    enc.embeddings.word_embeddings.weight.requires_grad_(False)
    head = torch.nn.Linear(enc.config.hidden_size, 1)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    params = [p for p in enc.parameters() if p.requires_grad] + list(head.parameters())
    opt = torch.optim.AdamW([{"params": [p for p in enc.parameters() if p.requires_grad], "lr": a.lr},
                             {"params": list(head.parameters()), "lr": a.head_lr}], weight_decay=0.01)
    warm = max(1, a.steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warm, max(0.0, (a.steps - s) / (a.steps - warm))))

    def logits(rows):
        qs = [r[0] for r in rows for _ in range(K)]
        ds = [entry_text(kb.entries[c]) for r in rows for c in r[1]]
        b = tok(["query: " + q for q in qs], ds, truncation=True, max_length=a.max_length, padding=True,
                return_tensors="pt")
        h = enc(**b).last_hidden_state
        m = b["attention_mask"].unsqueeze(-1).float()
        pooled = (h * m).sum(1) / m.sum(1)
        base = torch.tensor(np.stack([r[2] for r in rows])) / TAU
        return base + head(pooled).view(len(rows), K)

    def evaluate(tag):
        enc.eval()
        with torch.no_grad():
            for name, rows in evals.items():
                t1 = t3 = 0
                for i in range(0, len(rows), 8):
                    chunk = rows[i:i + 8]
                    lg = logits(chunk).numpy()
                    for r, row in zip(chunk, lg, strict=True):
                        order = np.argsort(-row)
                        t1 += r[3][order[0]] > 0
                        t3 += r[3][order[:3]].any()
                print(f"  {tag}: {name}: top-1 {t1 / len(rows):.3f} top-3 {t3 / len(rows):.3f}", flush=True)
        enc.train()

    order = []
    citizen_rows = train[:len(model_qs)]
    enc.train()
    t0 = time.time()
    run = 0.0
    for step in range(a.steps):
        if not order:
            order = list(range(len(train))) + list(range(len(citizen_rows)))  # citizen questions twice
            rng.shuffle(order)
        rows = [train[order.pop()] for _ in range(4)]
        lg = logits(rows)
        y = torch.tensor(np.stack([r[3] for r in rows]))
        loss = -(torch.log_softmax(lg, 1) * (y / y.sum(1, keepdim=True))).sum(1).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        run = 0.98 * run + 0.02 * loss.item() if step else loss.item()
        if (step + 1) % 100 == 0:
            print(f"step {step + 1} loss {run:.3f} {time.time() - t0:.0f} s", flush=True)
        if (step + 1) % a.eval_every == 0 and step + 1 < a.steps:
            evaluate(f"step {step + 1}")
    evaluate("after")
    out = os.environ.get("RERANKER_OUT")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        enc.save_pretrained(out)
        tok.save_pretrained(out)
        torch.save(head.state_dict(), Path(out) / "head.pt")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
