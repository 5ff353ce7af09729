"""BM25 over jieba words and characters, with an inverted index (pure Python + numpy)."""
from __future__ import annotations

import math
from collections import Counter, defaultdict

import numpy as np


class Bm25Index:
    """Okapi BM25 over pre-tokenised documents; score() returns one score per document."""

    def __init__(self, docs: list[list[str]], k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.n_docs = len(docs)
        self.doc_len = np.array([len(d) for d in docs], dtype=np.float32)
        self.avgdl = float(self.doc_len.mean()) if docs else 1.0
        df: Counter[str] = Counter()
        postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for i, d in enumerate(docs):
            for term, tf in Counter(d).items():
                postings[term].append((i, tf))
                df[term] += 1
        self.idf = {t: math.log(1 + (self.n_docs - n + 0.5) / (n + 0.5)) for t, n in df.items()}
        norm = self.k1 * (1 - self.b + self.b * self.doc_len / max(self.avgdl, 1e-6))
        # precompute each posting's BM25 term weight: idf * tf*(k1+1)/(tf+norm)
        self._postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for t, plist in postings.items():
            ids = np.fromiter((p[0] for p in plist), dtype=np.int32, count=len(plist))
            tfs = np.fromiter((p[1] for p in plist), dtype=np.float32, count=len(plist))
            w = self.idf[t] * tfs * (self.k1 + 1) / (tfs + norm[ids])
            self._postings[t] = (ids, w.astype(np.float32))

    def score(self, query: list[str]) -> np.ndarray:
        """BM25 score of every document for the query tokens (repeated query tokens count once)."""
        scores = np.zeros(self.n_docs, dtype=np.float32)
        for t in set(query):
            p = self._postings.get(t)
            if p is not None:
                np.add.at(scores, p[0], p[1])
        return scores

    def max_score(self, query: list[str]) -> float:
        """An upper bound of the score any document can reach: the query's idf mass times (k1+1)."""
        return float(sum(self.idf.get(t, 0.0) for t in set(query)) * (self.k1 + 1)) or 1.0
