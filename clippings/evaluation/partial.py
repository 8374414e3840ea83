"""Clippings missing one modality: does a caption without its photo, or a photo without its
caption, still link to its full reprint at the served threshold?

Each clipping that has both is scored twice more, once pooled from its text alone and once
from its image alone, against the full clippings of the rest of the set (for a linking set:
the queries against the corpus). A partial clipping "links" when its most similar clipping is
of its own entity at cosine >= the pair's cut (the threshold, or the manifest's `text_only` /
`image_only` cut: runtime/modality.py); "false" counts those whose most similar one, at or
above that cut, is of another entity. `clippings calibrate` chooses those cuts from the same
figures (export/recalibrate.py).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from clippings.runtime.manifest import Manifest
from clippings.runtime.modality import CODES, IMAGE_ONLY, TEXT_ONLY, cut_table, pattern_codes
from clippings.runtime.onnx_model import pool, served_vectors


Serve = Callable[[np.ndarray, Sequence[str]], np.ndarray]  # pooled vectors and their captions -> served vectors


def partial_tops(
    img: np.ndarray, txt: np.ndarray, ip: np.ndarray, tp: np.ndarray, entities: Sequence[str | None],
    image_weight: float, queries: np.ndarray | None = None, targets: np.ndarray | None = None,
    texts: Sequence[str] | None = None, serve: Serve | None = None, pooling: str = "sum",
) -> dict:
    """For each clipping that has both modalities and another clipping of its entity among the
    targets, pooled again from its text alone and from its image alone: its most similar
    target. -> {"n", "target_patterns": (T,) pattern codes, and per partial pattern
    "text_only"/"image_only": {"top": (P,) cosine, "best": (P,) target index into targets,
    "right": (P,) of its entity, "own": (P,) cosine to its nearest own-entity target,
    "itself": (P,) cosine to its own full vector}}."""
    n = len(entities)
    queries = np.arange(n) if queries is None else queries
    targets = np.arange(n) if targets is None else targets
    texts = list(texts) if texts is not None else [""] * n
    serve = serve or (lambda pooled, _texts: pooled)
    full = serve(pool(img, txt, ip, tp, image_weight, pooling), texts)
    ent = np.asarray([e if e is not None else f"\0{i}" for i, e in enumerate(entities)], dtype=object)
    both = queries[(ip[queries] > 0) & (tp[queries] > 0)]
    same = ent[both][:, None] == ent[targets][None, :]  # (P, T): own entity
    same &= targets[None, :] != both[:, None]  # never itself
    both, same = both[same.any(axis=1)], same[same.any(axis=1)]
    out: dict = {"n": int(len(both)), "target_patterns": pattern_codes(ip[targets], tp[targets])}
    for name, on in {"text_only": (0.0, 1.0), "image_only": (1.0, 0.0)}.items():
        part = serve(pool(img[both], txt[both], np.full(len(both), on[0], np.float32),
                          np.full(len(both), on[1], np.float32), image_weight, pooling),
                     [texts[i] if on[1] else "" for i in both])
        sims = part @ full[targets].T  # (P, T)
        sims[targets[None, :] == both[:, None]] = -np.inf  # not against itself
        best = sims.argmax(axis=1) if len(both) else np.zeros(0, np.int64)
        rows = np.arange(len(both))
        out[name] = {"top": sims[rows, best], "best": best, "right": same[rows, best],
                     "own": np.where(same, sims, -np.inf).max(axis=1) if len(both) else np.zeros(0),
                     "itself": np.sum(part * full[both], axis=1)}
    return out


def partial_link_rates(tops: dict, name: str, threshold: float, text_only: float | None = None,
                       image_only: float | None = None) -> tuple[float, float]:
    """-> (links, false links) of partial_tops' `name` clippings at these cuts: each is held to
    the cut of its pair with its most similar target."""
    t = tops[name]
    if not len(t["top"]):
        return 0.0, 0.0
    mine = CODES[TEXT_ONLY if name == "text_only" else IMAGE_ONLY]
    cuts = cut_table(threshold, text_only, image_only)[mine, tops["target_patterns"][t["best"]]]
    linked = t["top"] >= cuts
    return float(np.mean(t["right"] & linked)), float(np.mean(~t["right"] & linked))


def missing_modality(
    img: np.ndarray, txt: np.ndarray, ip: np.ndarray, tp: np.ndarray, entities: Sequence[str | None],
    image_weight: float, threshold: float, queries: np.ndarray | None = None, targets: np.ndarray | None = None,
    texts: Sequence[str] | None = None, manifest: Manifest | None = None,
) -> dict:
    """queries/targets: index arrays (default: every clipping against every other). With a
    manifest, its cuts for clippings missing a modality apply (runtime/modality.py) and, when it
    has text evidence, the vectors are the served ones (the captions' character pairs beside
    the pooled vector: texts needed); a photo without its caption has none."""
    serve = None if manifest is None else (lambda pooled, rows_texts: served_vectors(pooled, rows_texts, manifest))
    tops = partial_tops(img, txt, ip, tp, entities, image_weight, queries, targets, texts, serve,
                        manifest.pooling if manifest is not None else "sum")
    cuts = {k: manifest.thresholds.get(k) for k in ("text_only", "image_only")} if manifest is not None else {}
    out: dict = {"n": tops["n"], "threshold": threshold, "median_cosine_to_itself": {}}
    out |= {f"{k}_threshold": v for k, v in cuts.items() if v is not None}
    for name in ("text_only", "image_only"):
        t = tops[name]
        links, false_links = partial_link_rates(tops, name, threshold, **cuts)
        out[name] = {"links": links, "false_links": false_links,
                     "median_cosine_to_own": float(np.median(t["own"])) if len(t["own"]) else 0.0}
        out["median_cosine_to_itself"][name] = float(np.median(t["itself"])) if len(t["itself"]) else 0.0
    return out
