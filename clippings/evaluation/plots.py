"""Score distributions of `clippings eval --plots`: how far apart matches and non-matches lie,
and where the threshold cuts them. Matplotlib is imported only when a plot is asked for."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from clippings.evaluation.linking import top1

MAX_PAIRS = 400_000  # non-match pairs drawn for a dedup plot; all match pairs are kept


def plot_link_scores(vectors: np.ndarray, splits: Sequence[str], entities: Sequence[str | None],
                     threshold: float, path: Path) -> None:
    """Each query's top-1 cosine: right links, wrong links, and queries with no true match."""
    splits_a = np.asarray(splits)
    c_idx, q_idx = np.flatnonzero(splits_a == "corpus"), np.flatnonzero(splits_a == "query")
    nn_idx, nn_sim = top1(vectors[q_idx], vectors[c_idx])
    known = {entities[i] for i in c_idx if entities[i] is not None}
    right = np.array([entities[c_idx[j]] == entities[q] for j, q in zip(nn_idx, q_idx)], bool)
    absent = np.array([entities[q] not in known for q in q_idx], bool)
    groups = {
        "top-1 is the right entity": nn_sim[right],
        "top-1 is a wrong entity": nn_sim[~right & ~absent],
        "entity not in the corpus": nn_sim[absent],
    }
    _histograms(groups, threshold, "top-1 cosine of each query", path)


def plot_dedup_scores(vectors: np.ndarray, entities: Sequence[str | None], threshold: float, path: Path,
                      seed: int = 0) -> None:
    """Cosine of every same-entity pair against a sample of different-entity pairs."""
    sims = vectors @ vectors.T
    iu, ju = np.triu_indices(len(vectors), k=1)
    same = np.array([entities[i] is not None and entities[i] == entities[j] for i, j in zip(iu, ju)], bool)
    other = np.flatnonzero(~same)
    if len(other) > MAX_PAIRS:
        other = np.random.default_rng(seed).choice(other, MAX_PAIRS, replace=False)
    groups = {"same entity": sims[iu[same], ju[same]], "different entities": sims[iu[other], ju[other]]}
    _histograms(groups, threshold, "cosine of clipping pairs", path)


def _histograms(groups: dict[str, np.ndarray], threshold: float, xlabel: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    bins = np.linspace(-0.2, 1.0, 61)
    for label, values in groups.items():
        if len(values):
            # Densities, not counts: non-match pairs outnumber matches by orders of magnitude.
            ax.hist(np.clip(values, bins[0], bins[-1]), bins=bins, density=True, alpha=0.5,
                    label=f"{label} (n={len(values)})")
    ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.2f}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
