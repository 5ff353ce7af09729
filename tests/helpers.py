"""Test doubles for unit tests (never used by the running system)."""
from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from knowledge import text as kbtext


class CharHashEmbedder:
    """A deterministic stand-in embedding: hashed character bigrams, L2-normalised.

    Behaves like a (weak) sentence encoder: texts sharing characters are close. Counts calls so
    tests can check that re-indexing embeds only what changed.
    """

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim
        self.encoded: list[str] = []

    @property
    def model_id(self) -> str:
        return f"char-hash-{self.dim}"

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode_queries(texts)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            self.encoded.append(t)
            for tok in kbtext.chars(t):
                h = int(hashlib.md5(tok.encode()).hexdigest()[:8], 16)
                out[i, h % self.dim] += 1.0
            n = np.linalg.norm(out[i])
            if n:
                out[i] /= n
        return out
