"""The match probability (runtime/probability.py): fitted on labelled candidate pairs, and scored.

A candidate pair is a clipping and one of its K most similar others (a query and one of its K
most similar corpus entries, on a linking set): the pairs a linker's search returns and its
link events name, so the curve is fitted where it is read, not on the millions of far pairs
that any curve gets right.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression

from clippings.errors import ConfigError
from clippings.runtime.manifest import MatchCurve, TextEvidence, Thresholds
from clippings.runtime.modality import cut_table, pattern_codes
from clippings.runtime.probability import match_probability
from clippings.runtime.text_evidence import DEFAULT_DIM as TEXT_DIM

if TYPE_CHECKING:
    from clippings.evaluation.scoring import TowerSet

K = 5  # candidates per clipping


def candidate_pairs(vectors: np.ndarray, entities: Sequence[str | None], codes: np.ndarray,
                    cuts: tuple[float, float | None, float | None], splits: Sequence[str] | None = None,
                    k: int = K) -> tuple[np.ndarray, np.ndarray]:
    """-> (margins, same): each candidate pair's cosine minus its pair's cut, and whether the two
    are one entity. `codes`: runtime.modality.pattern_codes of the clippings. With `splits`
    holding "query" and "corpus", queries are paired with corpus entries only."""
    split_a = np.asarray(splits if splits is not None else ["all"] * len(vectors))
    if {"query", "corpus"} <= set(split_a):
        rows, cols = np.flatnonzero(split_a == "query"), np.flatnonzero(split_a == "corpus")
    else:
        rows = cols = np.arange(len(vectors))
    sims = vectors[rows] @ vectors[cols].T  # (R, C)
    if rows is cols:
        np.fill_diagonal(sims, -np.inf)  # never a clipping with itself
    k = min(k, len(cols) - 1 if rows is cols else len(cols))
    if k < 1:
        return np.empty(0), np.empty(0, bool)
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]  # (R, k) column positions
    i, j = np.repeat(rows, k), cols[top.ravel()]
    if rows is cols:  # one row per unordered pair
        i, j = np.minimum(i, j), np.maximum(i, j)
        i, j = np.unique(np.stack([i, j], 1), axis=0).T
    cut = cut_table(*cuts)[codes[i], codes[j]]
    keep = np.isfinite(cut)
    i, j, cut = i[keep], j[keep], cut[keep]
    margins = np.einsum("nd,nd->n", vectors[i], vectors[j]) - cut
    ent = np.asarray(entities, object)
    same = np.array([a is not None and a == b for a, b in zip(ent[i], ent[j])], bool)
    return margins, same


def fit_curve(margins: np.ndarray, same: np.ndarray, cut: str) -> MatchCurve:
    """The logistic curve of P(same) over the margin, by maximum likelihood (barely
    regularised: the margin is one feature, and thousands of pairs fit two numbers)."""
    if same.all() or not same.any():
        raise ValueError(f"the match probability needs matching and non-matching candidate pairs; "
                         f"{len(same)} pairs, {int(same.sum())} matching")
    lr = LogisticRegression(C=1e4).fit(margins[:, None], same)
    return {"cut": cut, "slope": round(float(lr.coef_[0, 0]), 4), "intercept": round(float(lr.intercept_[0]), 4),
            "pairs": int(len(same))}


def fit_match_curve(sets: Sequence[TowerSet], image_weight: float, thresholds: Thresholds,
                    text_evidence: TextEvidence | None = None) -> MatchCurve:
    """The match probability's curve (runtime/probability.py) over the candidate pairs of every
    set, served as the decision serves them."""
    kind = "link" if sets[0].task == "link" else "dedup"
    cuts = (thresholds["link"], None, None) if kind == "link" else (
        thresholds["dedup"], thresholds.get("text_only"), thresholds.get("image_only"))
    lam, dim = (text_evidence["weight"], text_evidence["dim"]) if text_evidence else (0.0, TEXT_DIM)
    pairs = [candidate_pairs(s.served(image_weight, lam, dim), s.entities, pattern_codes(s.image_present, s.text_present),
                             cuts, s.splits) for s in sets]
    try:
        return fit_curve(np.concatenate([m for m, _ in pairs]), np.concatenate([y for _, y in pairs]), kind)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def curve_scores(margins: np.ndarray, same: np.ndarray, curve: MatchCurve) -> dict:
    """How well the curve's probabilities fit labelled pairs: Brier score and log loss (lower is
    better), and the mean probability beside the share that match, overall and in five bins."""
    p = match_probability(margins, 0.0, curve) if len(margins) else np.empty(0)
    if not len(p):
        return {"pairs": 0}
    eps = 1e-12
    bins = []
    for lo, hi in ((0, 0.2), (0.2, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.0001)):
        sel = (p >= lo) & (p < hi)
        if sel.any():
            bins.append({"from": lo, "to": min(hi, 1.0), "pairs": int(sel.sum()), "mean_probability": round(float(p[sel].mean()), 4),
                         "matching": round(float(same[sel].mean()), 4)})
    return {"pairs": int(len(p)), "matching": round(float(same.mean()), 4),
            "mean_probability": round(float(p.mean()), 4),
            "brier": round(float(np.mean((p - same) ** 2)), 4),
            "log_loss": round(float(-np.mean(np.where(same, np.log(p + eps), np.log(1 - p + eps)))), 4),
            "bins": bins}
