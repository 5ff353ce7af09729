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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from knowledge import text as kbtext
from knowledge.lexical import Bm25Index
from knowledge.policy import Band, Calibration, Clarification, clarification, load_calibration
from knowledge.schema import CONTENT_DIR, KbEntry, content_fingerprint, load_entries

log = logging.getLogger(__name__)
Mode = Literal["lexical", "dense", "hybrid"]
INDEX_VERSION = "5"
WEIGHTS_FILE = Path(__file__).resolve().parent / "retrieval.yml"
VOTE_K = 10  # nearest wordings that vote for the top entry (a confidence feature)
TRAINSET_LABELS = Path(__file__).resolve().parent / "trainset" / "labels"
# Training questions the domain model never learns from (knowledge/trainset/README.md); like every training
# question they are index wordings and help fit the confidence model, each left out of the index in turn.
CALIBRATION_ONLY_GLOB = "batch3_*.yml"
# the bank of other matters; not calibration_negatives.yml, whose short common phrases (明天济南下雨吗, 讲个笑话)
# the evaluation writers also wrote: the bank must hold no evaluation message (tests/unit/test_policy.py)
NOT_OURS_FILES = (Path(__file__).resolve().parent / "not_ours.yml",)


def not_ours_messages(files: Sequence[Path] = NOT_OURS_FILES) -> list[str]:
    """Messages that are other 12345 matters (noise, heating, housing fund, traffic ...), chit-chat or nonsense.

    The bank the "not ours" check compares a message with (KnowledgeBase.foreign_gap). Never evaluation data.
    """
    import yaml

    out: list[str] = []
    for f in files:
        if not f.exists():
            continue
        d = yaml.safe_load(f.read_text(encoding="utf-8"))
        rows = d.get("items") or d.get("questions") or []
        out += [str(r["text"] if isinstance(r, dict) else r) for r in rows]
    return list(dict.fromkeys(t.strip() for t in out if str(t).strip()))


def citizen_wordings(labels_dir: Path = TRAINSET_LABELS) -> dict[str, list[str]]:
    """Realistic citizens' questions (knowledge/trainset) as extra index wordings of the entry that answers them.

    Each labelled question goes to the first entry its labeller listed (the one that answers it best):
    a long narrated question in the index meets the next citizen who tells a similar story. Questions no
    entry answers are not used. These wordings live in the index only, never in the entries' content.
    """
    import yaml

    out: dict[str, list[str]] = {}
    for f in sorted(labels_dir.glob("*.yml")) if labels_dir.is_dir() else []:
        for it in yaml.safe_load(f.read_text(encoding="utf-8"))["items"]:
            expected = it.get("expected") or []
            if expected:
                out.setdefault(str(expected[0]), []).append(str(it["text"]))
    return out


def trainset_questions(which: Literal["all", "model", "calibration"] = "all",
                       labels_dir: Path = TRAINSET_LABELS) -> list[tuple[str, list[str]]]:
    """Labelled training questions that have an entry: all, those the domain model learns from, or the rest."""
    import yaml

    held = {f.name for f in labels_dir.glob(CALIBRATION_ONLY_GLOB)} if labels_dir.is_dir() else set()
    out: list[tuple[str, list[str]]] = []
    for f in sorted(labels_dir.glob("*.yml")) if labels_dir.is_dir() else []:
        if which != "all" and (f.name in held) != (which == "calibration"):
            continue
        for it in yaml.safe_load(f.read_text(encoding="utf-8"))["items"]:
            if it.get("expected"):
                out.append((str(it["text"]), [str(e) for e in it["expected"]]))
    return out


@dataclass(frozen=True)
class FusionWeights:
    """How the entry score combines the dense and lexical signals (knowledge/retrieval.yml)."""

    max_view: float = 1.0
    centroid: float = 1.0
    answer: float = 1.0
    lexical: float = 0.2

    @classmethod
    def load(cls, path: Path = WEIGHTS_FILE) -> FusionWeights:
        """Read the weights file."""
        import yaml

        return cls(**yaml.safe_load(path.read_text(encoding="utf-8"))["weights"])

    def for_mode(self, mode: str) -> FusionWeights:
        """The weights restricted to one family of signals (for lexical-only and dense-only runs)."""
        if mode == "lexical":
            return FusionWeights(0.0, 0.0, 0.0, 1.0)
        if mode == "dense":
            return FusionWeights(self.max_view, self.centroid, self.answer, 0.0)
        return self


class Embedder(Protocol):
    """What retrieval needs from a sentence-embedding model."""

    @property
    def model_id(self) -> str: ...

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class Hit:
    """One ranked entry with its fused, dense and lexical scores."""

    entry: KbEntry
    score: float
    dense: float
    lexical: float


@dataclass(frozen=True)
class Decision:
    """The answer band for a question: answer, ask back, suggest, or admit that nothing fits."""

    band: Band
    confidence: float
    hits: list[Hit]
    clarify: Clarification | None = None
    margin: float = 0.0  # distance of the confidence to the nearest band boundary
    not_ours: bool = False  # band "none" because the message is another department's matter


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
                    self.vectors = dict(zip(z["keys"].tolist(), z["vecs"], strict=False))
            except (OSError, ValueError, KeyError):
                log.warning("embedding cache %s unreadable; rebuilding", self.path)

    def encode(self, embedder: Embedder, texts: Sequence[str], kind: str = "query") -> tuple[np.ndarray, int]:
        """Vectors for the texts (from cache where possible); also returns how many were computed."""
        keys = [_sha(kind + ":" + t) for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts, strict=False) if k not in self.vectors}.items())
        if missing:
            encode = embedder.encode_passages if kind == "passage" else embedder.encode_queries
            vecs = encode([t for _, t in missing])
            for (k, _), v in zip(missing, vecs, strict=False):
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
                 cache_dir: Path | str | None = None, calibration: Calibration | None = None,
                 weights: FusionWeights | None = None, mode: Mode | None = None,
                 extra_views: dict[str, list[str]] | None = None, not_ours: Sequence[str] = ()) -> None:
        t0 = time.perf_counter()
        self.not_ours = list(not_ours)
        self.not_ours_vectors: np.ndarray | None = None
        self.entries = entries
        self.by_id = {e.id: e for e in entries}
        self.embedder = embedder
        self.cache_dir = Path(cache_dir) if cache_dir else None
        extra_views = extra_views or {}
        views: list[str] = []
        owner: list[int] = []
        for i, e in enumerate(entries):
            for v in (*e.views, *extra_views.get(e.id, ())):
                views.append(v)
                owner.append(i)
        self.views = views
        self.view_owner = np.array(owner, dtype=np.int32)
        # views of one entry are contiguous: reduceat over these starts gives per-entry maxima
        self._starts = np.flatnonzero(np.r_[True, self.view_owner[1:] != self.view_owner[:-1]])
        self.lexical = Bm25Index([kbtext.lexical_tokens(v) for v in views])
        self.view_vectors: np.ndarray | None = None
        self.centroids: np.ndarray | None = None
        self.answer_vectors: np.ndarray | None = None
        self.embedded_now = 0
        self.mode: Mode = mode or ("hybrid" if embedder is not None else "lexical")
        self.weights = (weights or FusionWeights.load()).for_mode(self.mode)
        if embedder is not None and self.mode != "lexical":
            self._embed(embedder)
        self.calibration = calibration or Calibration()
        self.build_seconds = time.perf_counter() - t0

    def _embed(self, embedder: Embedder) -> None:
        """Vectors of every wording (query side), entry centroids, and question+answer passages."""
        views = [kbtext.normalize(v) for v in self.views]
        # question+answer passages are embedded only when their weight is used (they are long: slow to embed)
        passages = [kbtext.normalize(e.question + " " + e.answer) for e in self.entries] if self.weights.answer else []
        cache = EmbeddingCache(self.cache_dir, embedder.model_id) if self.cache_dir else None
        foreign = [kbtext.normalize(t) for t in self.not_ours]
        if cache:
            self.view_vectors, n1 = cache.encode(embedder, views)
            self.answer_vectors, n2 = cache.encode(embedder, passages, kind="passage") if passages else (None, 0)
            self.not_ours_vectors, n3 = cache.encode(embedder, foreign) if foreign else (None, 0)
            self.embedded_now = n1 + n2 + n3
        else:
            self.view_vectors = embedder.encode_queries(views)
            self.answer_vectors = embedder.encode_passages(passages) if passages else None
            self.not_ours_vectors = embedder.encode_queries(foreign) if foreign else None
            self.embedded_now = len(views) + len(passages) + len(foreign)
        self._view_sums = np.add.reduceat(self.view_vectors, self._starts, axis=0)
        self._view_counts = np.diff(np.r_[self._starts, len(self.views)]).astype(np.float32)
        self.centroids = self._view_sums / np.linalg.norm(self._view_sums, axis=1, keepdims=True)

    @classmethod
    def from_content(cls, content_dir: Path | str = CONTENT_DIR, embedder: Embedder | None = None,
                     cache_dir: Path | str | None = None, calibrate: bool = True) -> KnowledgeBase:
        """Load and index the content with the shipped calibration (knowledge/calibration.json).

        The calibration is never fitted here: it is fitted once, offline, by
        `python -m knowledge.cli calibrate --write`, so every machine decides alike.
        The index also holds the realistic training questions as wordings of their entries
        (`citizen_wordings`), as the shipped calibration was fitted with them.
        """
        return cls.from_entries(load_entries(content_dir), embedder, cache_dir, content_fingerprint(content_dir),
                                calibrate)

    @classmethod
    def from_entries(cls, entries: list[KbEntry], embedder: Embedder | None = None,
                     cache_dir: Path | str | None = None, fingerprint: str = "", calibrate: bool = True
                     ) -> KnowledgeBase:
        """Index given entries (the published ones of knowledge/editorial.py) as from_content does."""
        kb = cls(entries, embedder, cache_dir, extra_views=citizen_wordings(), not_ours=not_ours_messages())
        kb.fingerprint = fingerprint
        if calibrate:
            kb.calibration = load_calibration(kb.mode, kb.model_id)
        return kb

    @property
    def model_id(self) -> str:
        """The embedding model's id ("none" without one)."""
        return self.embedder.model_id if self.embedder else "none"

    @property
    def has_dense(self) -> bool:
        """True when a sentence-embedding model is loaded."""
        return self.view_vectors is not None

    @property
    def index_key(self) -> str:
        """Identifies the index contents and model (cache key for calibration)."""
        model = self.embedder.model_id if self.embedder else "none"
        answers = "\n".join(e.answer for e in self.entries)
        return _sha(INDEX_VERSION + model + self.mode + repr(self.weights) + "\n".join(self.views) + answers
                    + "|" + ",".join(e.id for e in self.entries) + "|" + "\n".join(self.not_ours))

    # --- scoring -------------------------------------------------------------------------
    def view_scores(self, query: str, query_vec: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Lexical (normalised to 0..1) and dense (cosine) scores of every wording, and the query vector."""
        lex = self.view_scores_lexical(query)
        if self.view_vectors is None or self.mode == "lexical":
            return lex, None, None
        if query_vec is None:
            query_vec = self.embedder.encode_queries([kbtext.normalize(query)])[0]
        return lex, self.view_vectors @ query_vec, query_vec

    def entry_scores(self, lex: np.ndarray, dense: np.ndarray | None, query_vec: np.ndarray | None = None,
                     held_out: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-entry fused, dense and lexical scores.

        `held_out` (calibration only) removes one wording from its entry's centroid as if it were unseen.
        """
        w = self.weights
        lex_e = np.maximum.reduceat(lex, self._starts)
        if dense is None or query_vec is None:
            return w.lexical * lex_e, np.zeros_like(lex_e), lex_e
        dense_e = w.max_view * np.maximum.reduceat(dense, self._starts)
        if w.centroid:
            cen = self.centroids @ query_vec
            if held_out is not None:
                o = self.view_owner[held_out]
                rest = self._view_sums[o] - self.view_vectors[held_out]
                cen[o] = float(rest @ query_vec / (np.linalg.norm(rest) or 1.0))
            dense_e = dense_e + w.centroid * cen
        if w.answer and self.answer_vectors is not None:
            dense_e = dense_e + w.answer * (self.answer_vectors @ query_vec)
        return dense_e + w.lexical * lex_e, dense_e, lex_e

    def features(self, fused: np.ndarray, dense_e: np.ndarray, lex_e: np.ndarray,
                 dense_views: np.ndarray | None = None) -> np.ndarray:
        """Features of a ranking used to estimate whether its top entry is right."""
        order = np.argsort(-fused)[:3]
        vote = 0.0
        if dense_views is not None and len(dense_views) >= VOTE_K:  # share of the nearest wordings owned by the top entry
            near = np.argpartition(-dense_views, VOTE_K)[:VOTE_K]
            vote = float(np.mean(self.view_owner[near] == order[0]))
        top = fused[order[0]]
        second = fused[order[1]] if len(order) > 1 else 0.0
        third = fused[order[2]] if len(order) > 2 else 0.0
        agree = float(np.argmax(dense_e) == np.argmax(lex_e)) if dense_e.any() else 1.0
        dense_first = float(np.argmax(dense_e) == order[0]) if dense_e.any() else 1.0
        lex_first = float(np.argmax(lex_e) == order[0])
        same_cat = float(len(order) > 1 and self.entries[order[0]].category == self.entries[order[1]].category)
        return np.array([top, top - second, dense_e[order[0]], lex_e[order[0]], agree, top - third,
                         dense_first, lex_first, same_cat, vote], dtype=np.float64)

    def foreign_gap(self, dense_views: np.ndarray | None, query_vec: np.ndarray | None) -> float:
        """How much nearer (cosine) the message is to the bank of other matters than to our nearest wording.

        Positive: it reads more like noise, heating, the housing fund … than like anything we answer.
        -inf without a bank or a dense model (the check is then off).
        """
        if self.not_ours_vectors is None or dense_views is None or query_vec is None or not len(dense_views):
            return float("-inf")
        return float(np.max(self.not_ours_vectors @ query_vec) - np.max(dense_views))

    def search(self, query: str, k: int = 5) -> list[Hit]:
        """The k best entries for the question."""
        lex, dense, qv = self.view_scores(query)
        return self._hits(*self.entry_scores(lex, dense, qv), k)

    def view_scores_lexical(self, query: str) -> np.ndarray:
        """Lexical view scores only (no model call)."""
        toks = kbtext.lexical_tokens(query)
        return self.lexical.score(toks) / self.lexical.max_score(toks)

    def _hits(self, fused: np.ndarray, dense_e: np.ndarray, lex_e: np.ndarray, k: int) -> list[Hit]:
        order = np.argsort(-fused)[:k]
        return [Hit(self.entries[i], float(fused[i]), float(dense_e[i]), float(lex_e[i])) for i in order]

    def decide(self, query: str, k: int = 3, strict: bool = False) -> Decision:
        """Rank the entries and choose a band: confident (answer), clarify, unsure (suggest), none.

        ``strict``: NLU did not take the message for a social-security question; answer only when sure.
        """
        query = (query or "").strip()
        if not kbtext.lexical_tokens(query):
            return Decision("none", 0.0, [])
        lex, dense, qv = self.view_scores(query)
        fused, dense_e, lex_e = self.entry_scores(lex, dense, qv)
        cal = self.calibration
        conf = cal.confidence(self.features(fused, dense_e, lex_e, dense))
        hits = self._hits(fused, dense_e, lex_e, max(k, 3))
        band: Band = cal.band(conf, strict)
        not_ours = (band != "confident" and cal.foreign_margin is not None
                    and self.foreign_gap(dense, qv) > cal.foreign_margin)
        if not_ours:
            band = "none"
        ask = None
        if band == "unsure" and len(hits) > 1:
            ask = clarification(kbtext.normalize(query), *[(h.entry.id, h.entry.question + " " + h.entry.category)
                                                           for h in hits[:2]])
            band = "clarify" if ask else band
        return Decision(band, conf, hits[:k], ask, cal.margin(conf, strict), not_ours)

    def save_calibration(self, path: Path) -> None:
        """Write the calibration as JSON (for inspection and docs)."""
        path.write_text(json.dumps(self.calibration.__dict__, ensure_ascii=False, indent=2), encoding="utf-8")
