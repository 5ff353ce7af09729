"""Hybrid retrieval: rank knowledge entries for a citizen's question and decide how sure we are.

Lexical: BM25 over jieba words and characters (knowledge.lexical). Dense: cosine similarity of
sentence embeddings (knowledge.embedding, transformers + torch). Each entry is represented by
its standard question and paraphrases ("views"); an entry scores as its best view.
The fusion weight and the answer bands are calibrated on data (knowledge.calibration).
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, Sequence

import numpy as np

from knowledge import text as kbtext
from knowledge.lexical import Bm25Index
from knowledge.schema import CONTENT_DIR, KbEntry, content_fingerprint, load_entries

log = logging.getLogger(__name__)
Mode = Literal["lexical", "dense", "hybrid"]
Band = Literal["confident", "unsure", "none"]
INDEX_VERSION = "3"


class Embedder(Protocol):
    """What retrieval needs from a sentence-embedding model."""

    @property
    def model_id(self) -> str: ...

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class Hit:
    """One ranked entry with its fused, dense and lexical scores."""

    entry: KbEntry
    score: float
    dense: float
    lexical: float


@dataclass(frozen=True)
class Decision:
    """The answer band for a question: answer, suggest, or admit that nothing fits."""

    band: Band
    confidence: float
    hits: list[Hit]


@dataclass
class Calibration:
    """Fusion weight, confidence model and band thresholds fitted on data."""

    dense_weight: float = 0.6
    coef: tuple[float, ...] = (0.0,)
    intercept: float = 0.0
    confident_at: float = 0.9
    unsure_at: float = 0.3
    report: dict | None = None

    def confidence(self, feats: np.ndarray) -> float:
        """P(top-1 entry answers the question), from a logistic model on the ranking's features."""
        z = float(np.dot(self.coef, feats) + self.intercept)
        return 1.0 / (1.0 + np.exp(-z))

    def band(self, confidence: float) -> Band:
        """Map a confidence to an answer band."""
        if confidence >= self.confident_at:
            return "confident"
        if confidence >= self.unsure_at:
            return "unsure"
        return "none"


def _sha(s: str) -> str:
    return hashlib.sha1(s.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """Sentence vectors kept on disk per model and text, so re-indexing only embeds what changed."""

    def __init__(self, cache_dir: Path, model_id: str) -> None:
        self.path = Path(cache_dir) / f"emb-{_sha(model_id)[:16]}.npz"
        self.vectors: dict[str, np.ndarray] = {}
        if self.path.exists():
            try:
                with np.load(self.path) as z:
                    self.vectors = dict(zip(z["keys"].tolist(), z["vecs"]))
            except (OSError, ValueError, KeyError):
                log.warning("embedding cache %s unreadable; rebuilding", self.path)

    def encode(self, embedder: Embedder, texts: Sequence[str]) -> tuple[np.ndarray, int]:
        """Vectors for the texts (from cache where possible); also returns how many were computed."""
        keys = [_sha(t) for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts) if k not in self.vectors}.items())
        if missing:
            vecs = embedder.encode_queries([t for _, t in missing])
            for (k, _), v in zip(missing, vecs):
                self.vectors[k] = np.asarray(v, dtype=np.float32)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp.npz")
            live = set(keys) | set(self.vectors)
            np.savez(tmp, keys=np.array(sorted(live)), vecs=np.stack([self.vectors[k] for k in sorted(live)]))
            tmp.replace(self.path)
        return np.stack([self.vectors[k] for k in keys]), len(missing)


class KnowledgeBase:
    """An indexed set of entries: search() ranks them, decide() picks the answer band."""

    def __init__(self, entries: list[KbEntry], embedder: Embedder | None = None,
                 cache_dir: Path | str | None = None, calibration: Calibration | None = None) -> None:
        t0 = time.perf_counter()
        self.entries = entries
        self.by_id = {e.id: e for e in entries}
        self.embedder = embedder
        self.cache_dir = Path(cache_dir) if cache_dir else None
        views: list[str] = []
        owner: list[int] = []
        for i, e in enumerate(entries):
            for v in e.views:
                views.append(v)
                owner.append(i)
        self.views = views
        self.view_owner = np.array(owner, dtype=np.int32)
        # views of one entry are contiguous: reduceat over these starts gives per-entry maxima
        self._starts = np.flatnonzero(np.r_[True, self.view_owner[1:] != self.view_owner[:-1]])
        self.lexical = Bm25Index([kbtext.lexical_tokens(v) for v in views])
        self.view_vectors: np.ndarray | None = None
        self.embedded_now = 0
        if embedder is not None:
            normalized = [kbtext.normalize(v) for v in views]
            if self.cache_dir:
                self.view_vectors, self.embedded_now = EmbeddingCache(self.cache_dir, embedder.model_id).encode(embedder, normalized)
            else:
                self.view_vectors = embedder.encode_queries(normalized)
                self.embedded_now = len(normalized)
        self.calibration = calibration or Calibration()
        self.build_seconds = time.perf_counter() - t0

    @classmethod
    def from_content(cls, content_dir: Path | str = CONTENT_DIR, embedder: Embedder | None = None,
                     cache_dir: Path | str | None = None, calibrate: bool = True) -> "KnowledgeBase":
        """Load, index and (with a cached result when nothing changed) calibrate the content."""
        kb = cls(load_entries(content_dir), embedder, cache_dir)
        kb.fingerprint = content_fingerprint(content_dir)
        if calibrate:
            from knowledge.calibration import calibrate_cached
            kb.calibration = calibrate_cached(kb)
        return kb

    @property
    def has_dense(self) -> bool:
        """True when a sentence-embedding model is loaded."""
        return self.view_vectors is not None

    @property
    def index_key(self) -> str:
        """Identifies the index contents and model (cache key for calibration)."""
        model = self.embedder.model_id if self.embedder else "none"
        return _sha(INDEX_VERSION + model + "\n".join(self.views) + "|" + ",".join(e.id for e in self.entries))

    # --- scoring -------------------------------------------------------------------------
    def view_scores(self, query: str, query_vec: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Lexical (normalised to 0..1) and dense (cosine) scores of every view for the query."""
        toks = kbtext.lexical_tokens(query)
        lex = self.lexical.score(toks) / self.lexical.max_score(toks)
        dense = None
        if self.view_vectors is not None:
            if query_vec is None:
                query_vec = self.embedder.encode_queries([kbtext.normalize(query)])[0]
            dense = self.view_vectors @ query_vec
        return lex, dense

    def entry_scores(self, lex: np.ndarray, dense: np.ndarray | None, mode: Mode) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-entry fused, dense and lexical scores (each entry's best view)."""
        lex_e = np.maximum.reduceat(lex, self._starts)
        if dense is None or mode == "lexical":
            dense_e = np.zeros_like(lex_e)
            fused = lex_e
        else:
            dense_e = np.maximum.reduceat(dense, self._starts)
            w = self.calibration.dense_weight
            fused = dense_e if mode == "dense" else w * dense_e + (1 - w) * lex_e
        return fused, dense_e, lex_e

    def features(self, fused: np.ndarray, dense_e: np.ndarray, lex_e: np.ndarray) -> np.ndarray:
        """Features of a ranking used to estimate whether its top entry is right."""
        order = np.argsort(-fused)[:2]
        top, second = fused[order[0]], fused[order[1]] if len(order) > 1 else 0.0
        agree = float(np.argmax(dense_e) == np.argmax(lex_e)) if dense_e.any() else 1.0
        return np.array([top, top - second, dense_e[order[0]], lex_e[order[0]], agree], dtype=np.float64)

    def search(self, query: str, k: int = 5, mode: Mode | None = None) -> list[Hit]:
        """The k best entries for the question."""
        mode = mode or ("hybrid" if self.has_dense else "lexical")
        lex, dense = self.view_scores(query) if mode != "lexical" else (self.view_scores_lexical(query), None)
        fused, dense_e, lex_e = self.entry_scores(lex, dense, mode)
        return self._hits(fused, dense_e, lex_e, k)

    def view_scores_lexical(self, query: str) -> np.ndarray:
        """Lexical view scores only (no model call)."""
        toks = kbtext.lexical_tokens(query)
        return self.lexical.score(toks) / self.lexical.max_score(toks)

    def _hits(self, fused: np.ndarray, dense_e: np.ndarray, lex_e: np.ndarray, k: int) -> list[Hit]:
        order = np.argsort(-fused)[:k]
        return [Hit(self.entries[i], float(fused[i]), float(dense_e[i]), float(lex_e[i])) for i in order]

    def decide(self, query: str, k: int = 3) -> Decision:
        """Rank the entries and choose a band: confident (answer), unsure (suggest), none."""
        query = (query or "").strip()
        if not kbtext.lexical_tokens(query):
            return Decision("none", 0.0, [])
        mode: Mode = "hybrid" if self.has_dense else "lexical"
        lex, dense = self.view_scores(query) if self.has_dense else (self.view_scores_lexical(query), None)
        fused, dense_e, lex_e = self.entry_scores(lex, dense, mode)
        conf = self.calibration.confidence(self.features(fused, dense_e, lex_e))
        return Decision(self.calibration.band(conf), conf, self._hits(fused, dense_e, lex_e, k))

    def save_calibration(self, path: Path) -> None:
        """Write the calibration as JSON (for inspection and docs)."""
        path.write_text(json.dumps(self.calibration.__dict__, ensure_ascii=False, indent=2), encoding="utf-8")
