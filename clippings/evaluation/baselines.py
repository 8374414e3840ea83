"""String-matching baselines on the OCR text: Levenshtein (rapidfuzz) and n-gram Jaccard.

Each returns a dense similarity matrix (rows: a, columns: b) in [0, 1], so linking (argmax
per row) and clustering (edges at or above a cut) treat every method alike.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein
from scipy.sparse import csr_matrix

from clippings.runtime.preprocess import normalize_text


def levenshtein_similarity(a: Sequence[str], b: Sequence[str]) -> np.ndarray:
    """Normalised edit similarity; 0 where either text is empty (two missing captions are no
    evidence of a duplicate, though two empty strings are equal)."""
    a_n = [normalize_text(t).strip() for t in a]
    b_n = [normalize_text(t).strip() for t in b]
    sim = process.cdist(a_n, b_n, scorer=Levenshtein.normalized_similarity, dtype=np.float32, workers=-1)
    sim[np.array([not t for t in a_n], bool)] = 0.0
    sim[:, np.array([not t for t in b_n], bool)] = 0.0
    return sim


def _ngrams(text: str, n: int, unit: str) -> set[str]:
    t = normalize_text(text).strip()
    if unit == "word":
        words = t.split()
        return {" ".join(words[i : i + n]) for i in range(max(1, len(words) - n + 1))} if words else set()
    return {t[i : i + n] for i in range(max(1, len(t) - n + 1))} if t else set()


def jaccard_similarity(a: Sequence[str], b: Sequence[str], n: int = 2, unit: str = "char") -> np.ndarray:
    """|A & B| / |A | B| over n-gram sets, via one sparse product instead of a Python loop per pair."""
    grams_a = [_ngrams(t, n, unit) for t in a]
    grams_b = [_ngrams(t, n, unit) for t in b]
    vocab: dict[str, int] = {}
    for gs in grams_a + grams_b:
        for g in gs:
            vocab.setdefault(g, len(vocab))

    def matrix(grams: list[set[str]]) -> csr_matrix:
        rows = np.repeat(np.arange(len(grams)), [len(g) for g in grams])
        cols = np.fromiter((vocab[g] for gs in grams for g in gs), np.int64, count=len(rows))
        return csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(grams), max(1, len(vocab))))

    ma, mb = matrix(grams_a), matrix(grams_b)
    inter = (ma @ mb.T).toarray()
    size_a = np.asarray(ma.sum(axis=1)).ravel()
    size_b = np.asarray(mb.sum(axis=1)).ravel()
    union = size_a[:, None] + size_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0).astype(np.float32)


STRING_METHODS = {
    "levenshtein": levenshtein_similarity,
    "jaccard_char": lambda a, b: jaccard_similarity(a, b, n=2, unit="char"),
    "jaccard_word": lambda a, b: jaccard_similarity(a, b, n=1, unit="word"),
}
