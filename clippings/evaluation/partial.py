"""Clippings missing one modality: does a caption without its photo, or a photo without its
caption, still link to its full reprint at the served threshold?

Each clipping that has both is scored twice more, once pooled from its text alone and once
from its image alone, against the full clippings of the rest of the set (for a linking set:
the queries against the corpus). A partial clipping "links" when its most similar full
clipping is of its own entity at cosine >= threshold; "false" counts those whose most similar
one, at or above the threshold, is of another entity.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from clippings.runtime.manifest import Manifest
from clippings.runtime.onnx_model import pool, served_vectors


def missing_modality(
    img: np.ndarray, txt: np.ndarray, ip: np.ndarray, tp: np.ndarray, entities: Sequence[str | None],
    image_weight: float, threshold: float, queries: np.ndarray | None = None, targets: np.ndarray | None = None,
    texts: Sequence[str] | None = None, manifest: Manifest | None = None,
) -> dict:
    """queries/targets: index arrays (default: every clipping against every other). With a
    manifest that has text evidence, the vectors are the served ones (the captions' character
    pairs beside the pooled vector: texts needed); a photo without its caption has none."""
    n = len(entities)
    queries = np.arange(n) if queries is None else queries
    targets = np.arange(n) if targets is None else targets
    texts = list(texts) if texts is not None else [""] * n

    def served(pooled: np.ndarray, rows_texts: Sequence[str]) -> np.ndarray:
        return pooled if manifest is None else served_vectors(pooled, rows_texts, manifest)

    full = served(pool(img, txt, ip, tp, image_weight), texts)
    ent = np.asarray([e if e is not None else f"\0{i}" for i, e in enumerate(entities)], dtype=object)
    both = queries[(ip[queries] > 0) & (tp[queries] > 0)]
    same = ent[both][:, None] == ent[targets][None, :]  # (P, T): own entity
    same &= targets[None, :] != both[:, None]  # never itself
    both, same = both[same.any(axis=1)], same[same.any(axis=1)]
    out: dict = {"n": int(len(both)), "threshold": threshold, "median_cosine_to_itself": {}}
    for name, on in {"text_only": (0.0, 1.0), "image_only": (1.0, 0.0)}.items():
        if not len(both):
            out[name] = {"links": 0.0, "false_links": 0.0, "median_cosine_to_own": 0.0}
            out["median_cosine_to_itself"][name] = 0.0
            continue
        part = served(pool(img[both], txt[both], np.full(len(both), on[0], np.float32),
                           np.full(len(both), on[1], np.float32), image_weight),
                      [texts[i] if on[1] else "" for i in both])
        sims = part @ full[targets].T  # (P, T)
        sims[targets[None, :] == both[:, None]] = -np.inf  # not against itself
        best = sims.argmax(axis=1)
        top = sims[np.arange(len(both)), best]
        right = same[np.arange(len(both)), best]
        out[name] = {
            "links": float(np.mean(right & (top >= threshold))),
            "false_links": float(np.mean(~right & (top >= threshold))),
            "median_cosine_to_own": float(np.median(np.where(same, sims, -np.inf).max(axis=1))),
        }
        out["median_cosine_to_itself"][name] = float(np.median(np.sum(part * full[both], axis=1)))
    return out
