"""The caption's own characters beside the model's vector, when a manifest asks for them.

A served vector is then the model's pooled vector and a hashed vector of the caption's
character pairs, side by side with weights sqrt(1 - lam) and sqrt(lam), normalised: the cosine
of two served vectors that both have text is

    (1 - lam) x the model's cosine + lam x the cosine of their character-pair sets,

a string similarity (close to char-bigram Jaccard) weighed in by a share that
`clippings calibrate --text-evidence` tunes on labelled clippings. Folded into the vector and
not kept as a second score so that everything downstream of the embedder is unchanged: the
linker's index, its single linkage, its snapshots and the review page's similarities, and
online equals offline (`clippings eval`) by construction.

A clipping without text keeps its pooled vector (the pair part is zero and drops out of the
normalisation), so against a clipping with text its cosine is sqrt(1 - lam) x the model's.
The pairs are hashed with signs (feature hashing): collisions add noise of about
1/sqrt(dim) to the pair cosine instead of a bias.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from clippings.runtime.preprocess import normalize_text, pair_hashes, text_hashes

DEFAULT_DIM = 256
# Two mixing constants of splitmix64: one pair hash -> a bucket and a sign that look independent.
_MIX_A = np.uint64(0xBF58476D1CE4E5B9)
_MIX_B = np.uint64(0x94D049BB133111EB)


def char_pair_vectors(texts: Sequence[str], dim: int) -> np.ndarray:
    """(N, dim) float32: each text's set of neighbouring-character pairs (NFKC, casefolded,
    whitespace collapsed) as a signed hashed vector of unit length; zeros for a text of fewer
    than two characters."""
    out = np.zeros((len(texts), dim), np.float32)
    for row, text in enumerate(texts):
        h = text_hashes(normalize_text(text or "").casefold())
        if len(h) < 2:
            continue
        pairs = np.unique(pair_hashes(h))
        mixed = (pairs * _MIX_A) ^ (pairs >> np.uint64(31))
        mixed = mixed * _MIX_B  # wraps modulo 2**64, on purpose
        buckets = ((mixed >> np.uint64(32)) % np.uint64(dim)).astype(np.int64)
        signs = ((mixed >> np.uint64(7)) & np.uint64(1)).astype(np.float32) * 2 - 1
        np.add.at(out[row], buckets, signs)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)


def with_text_evidence(pooled: np.ndarray, texts: Sequence[str], weight: float, dim: int) -> np.ndarray:
    """(N, D) pooled unit vectors and their texts -> (N, D + dim) served unit vectors."""
    if len(pooled) != len(texts):
        raise ValueError(f"{len(pooled)} vectors but {len(texts)} texts")
    pairs = char_pair_vectors(texts, dim)
    served = np.concatenate([np.sqrt(1.0 - weight) * pooled, np.sqrt(weight) * pairs], axis=1)
    norms = np.linalg.norm(served, axis=1, keepdims=True)
    return np.divide(served, norms, out=np.zeros_like(served), where=norms > 0).astype(np.float32)
