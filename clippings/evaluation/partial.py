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

from clippings.runtime.onnx_model import pool


def missing_modality(
    img: np.ndarray, txt: np.ndarray, ip: np.ndarray, tp: np.ndarray, entities: Sequence[str | None],
    image_weight: float, threshold: float, queries: np.ndarray | None = None, targets: np.ndarray | None = None,
) -> dict:
    """queries/targets: index arrays (default: every clipping against every other)."""
    n = len(entities)
    queries = np.arange(n) if queries is None else queries
    targets = np.arange(n) if targets is None else targets
    full = pool(img, txt, ip, tp, image_weight)
    ent = np.asarray([e if e is not None else f"\0{i}" for i, e in enumerate(entities)], dtype=object)
    both = queries[(ip[queries] > 0) & (tp[queries] > 0)]
    has_match = np.array([np.any((ent[targets] == ent[q]) & (targets != q)) for q in both], bool)
    both = both[has_match]
    out: dict = {"n": int(len(both)), "threshold": threshold}
    ones, zeros = np.ones(len(both), np.float32), np.zeros(len(both), np.float32)
    for name, (i_on, t_on) in {"text_only": (zeros, ones), "image_only": (ones, zeros)}.items():
        part = pool(img[both], txt[both], i_on, t_on, image_weight)
        sims = part @ full[targets].T  # (P, T)
        sims[targets[None, :] == both[:, None]] = -np.inf  # not against itself
        best = sims.argmax(axis=1)
        top = sims[np.arange(len(both)), best]
        right = ent[targets[best]] == ent[both]
        own = np.array([sims[k, ent[targets] == ent[q]].max() for k, q in enumerate(both)]) if len(both) else zeros
        out[name] = {
            "links": float(np.mean(right & (top >= threshold))) if len(both) else 0.0,
            "false_links": float(np.mean(~right & (top >= threshold))) if len(both) else 0.0,
            "median_cosine_to_own": float(np.median(own)) if len(both) else 0.0,
        }
    self_full = full[both]
    out["median_cosine_to_itself"] = {
        name: float(np.median(np.sum(pool(img[both], txt[both], i_on, t_on, image_weight) * self_full, axis=1)))
        if len(both) else 0.0
        for name, (i_on, t_on) in {"text_only": (zeros, ones), "image_only": (ones, zeros)}.items()
    }
    return out
