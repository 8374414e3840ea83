"""Offline linking over embeddings: top-1 nearest neighbour, single-linkage clustering and
threshold tuning. The online linker must agree with `single_linkage` (a test checks it).
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import faiss
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.metrics import adjusted_rand_score

from clippings.runtime.modality import cut_table, lowest_cut


def _edges_at_or_above(vectors: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs (i, j, cosine) with cosine >= threshold, from one FAISS range search."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    # FAISS keeps inner products strictly above the radius; step one float below to keep ">=".
    radius = float(np.nextafter(np.float32(threshold), np.float32(-np.inf)))
    lims, sims, cols = index.range_search(x, radius)
    rows = np.repeat(np.arange(len(x)), np.diff(lims).astype(np.int64))
    return rows, cols.astype(np.int64), sims


def _components(n: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    graph = coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def single_linkage(vectors: np.ndarray, threshold: float, patterns: np.ndarray | None = None,
                   text_only: float | None = None, image_only: float | None = None) -> np.ndarray:
    """Cluster labels (N,): i and j share a cluster when a chain of pairs at cosine >= threshold
    joins them (DBSCAN with min_samples=1, as in the paper). With patterns (modality.pattern_codes)
    and a text_only or image_only cut, each pair is held to its own cut (modality.pair_cut), as
    the linker holds it."""
    if len(vectors) == 0:
        return np.zeros(0, np.int64)
    return _components(len(vectors), *_decision_edges(vectors, threshold, patterns, text_only, image_only))


def _decision_edges(vectors: np.ndarray, threshold: float, patterns: np.ndarray | None,
                    text_only: float | None, image_only: float | None) -> tuple[np.ndarray, np.ndarray]:
    """The pairs (rows, cols) single linkage joins, each pair held to its own cut."""
    rows, cols, sims = _edges_at_or_above(vectors, lowest_cut(threshold, text_only, image_only))
    if patterns is not None and (text_only is not None or image_only is not None):
        keep = sims >= cut_table(threshold, text_only, image_only)[patterns[rows], patterns[cols]]
        rows, cols = rows[keep], cols[keep]
    return rows, cols


def link_errors(vectors: np.ndarray, entities: Sequence[str | None], threshold: float,
                patterns: np.ndarray | None = None, text_only: float | None = None,
                image_only: float | None = None) -> dict:
    """Which of single linkage's two errors costs more ARI at a decision: links between two
    entities (each merges two clusters, so the cut wants to rise) or pairs of one entity left
    apart (the cut wants to fall). The ARI with every wrong link removed, and with every
    entity's clippings joined on top of the links made, bound what fixing each would gain."""
    truth = labels_of(entities)
    n = len(truth)
    if n == 0:
        return {}
    rows, cols = _decision_edges(vectors, threshold, patterns, text_only, image_only)
    same = truth[rows] == truth[cols]
    clusters = _components(n, rows, cols)
    _, firsts, entity = np.unique(truth, return_index=True, return_inverse=True)
    first = firsts[entity]  # each clipping's entity's first clipping
    joined = _components(n, np.concatenate([rows, np.arange(n)]), np.concatenate([cols, first]))

    def pairs(*labels: np.ndarray) -> int:
        counts = np.unique(np.stack(labels), axis=1, return_counts=True)[1]
        return int((counts * (counts - 1) // 2).sum())

    entity_pairs = pairs(truth)
    return {"wrong_links": int(((rows < cols) & ~same).sum()),
            "missed_pairs": entity_pairs - pairs(truth, clusters),
            "entity_pairs": entity_pairs,
            "ari_without_wrong_links": float(adjusted_rand_score(truth, _components(n, rows[same], cols[same]))),
            "ari_without_missed_pairs": float(adjusted_rand_score(truth, joined))}


def labels_of(entities: Sequence[str | None]) -> np.ndarray:
    """Entity labels as ints; a record without an entity is its own singleton."""
    ids: dict[str, int] = {}
    out = np.empty(len(entities), np.int64)
    for i, e in enumerate(entities):
        key = f"\0singleton{i}" if e is None else e
        out[i] = ids.setdefault(key, len(ids))
    return out


def grid_search(grid: Iterable[float], score: Callable[[float], float]) -> tuple[float, float]:
    """The grid value with the highest score -> (value, score). Ties go to the earliest value,
    so a grid's order is its tie-break; scores at or below -1 (ARI's floor) never win over
    the first value."""
    # The values go to score as given: a NumPy float64 compares with float32 cosines in float64,
    # where a Python float would be cast down to float32 (NEP 50) and move the cut.
    grid = list(grid)
    best = (float(grid[0]), -1.0)
    for v in grid:
        s = float(score(v))
        if s > best[1]:
            best = (float(v), s)
    return best


DEDUP_GRID = np.round(np.arange(0.30, 0.991, 0.01), 2)


def dedup_curve(vectors: np.ndarray, entities: Sequence[str | None], grid: np.ndarray = DEDUP_GRID) -> np.ndarray:
    """ARI against the entity labels of single linkage at each cut of grid -> (G,)."""
    truth = labels_of(entities)
    rows, cols, sims = _edges_at_or_above(vectors, float(grid.min()))
    return np.array([adjusted_rand_score(truth, _components(len(vectors), rows[sims >= t], cols[sims >= t]))
                     for t in grid])


def plateau(grid: np.ndarray, scores: np.ndarray, window: float) -> np.ndarray:
    """Each cut's score as the mean over the cuts within +-window of it -> (G,)."""
    near = np.abs(grid[:, None] - grid[None, :]) <= window + 1e-9  # (G, G)
    return (near * scores[None, :]).sum(axis=1) / near.sum(axis=1)


def best_cut(grid: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """grid_search over precomputed scores (one per grid value) -> (value, score)."""
    at = {float(t): float(s) for t, s in zip(grid, scores)}
    return grid_search(grid, lambda t: at[float(t)])


def tune_dedup_threshold(
    vectors: np.ndarray, entities: Sequence[str | None], grid: np.ndarray | None = None, window: float = 0.0,
) -> tuple[float, float]:
    """The cosine cut that maximises ARI against the entity labels -> (threshold, score).

    window > 0: the score of a cut is the mean ARI over the cuts within +-window of it, so the
    cut chosen sits on a plateau rather than at a peak beside a cliff. Where duplicates lie
    further apart than in the tuning data (other OCR, other copy desks), the best cut moves
    down, and a peak next to a steep fall loses most (docs/model.md, "Calibration")."""
    grid = DEDUP_GRID if grid is None else grid
    curve = dedup_curve(vectors, entities, grid)
    return best_cut(grid, plateau(grid, curve, window) if window > 0 else curve)


def top1(queries: np.ndarray, corpus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest corpus row for each query -> (index (Q,), cosine (Q,))."""
    index = faiss.IndexFlatIP(corpus.shape[1])
    index.add(np.ascontiguousarray(corpus, dtype=np.float32))
    sims, idx = index.search(np.ascontiguousarray(queries, dtype=np.float32), 1)
    return idx[:, 0], sims[:, 0]


def top1_accuracy(
    predicted: Sequence[str | None], query_entities: Sequence[str | None], corpus_entities: set[str]
) -> tuple[float, int]:
    """Share of queries whose entity is in the corpus that got it -> (accuracy, n scored)."""
    scored = [(p, q) for p, q in zip(predicted, query_entities) if q in corpus_entities]
    if not scored:
        return 0.0, 0
    return sum(p == q for p, q in scored) / len(scored), len(scored)


def tune_link_threshold(
    best_sims: np.ndarray, correct: np.ndarray, in_corpus: np.ndarray
) -> tuple[float, float]:
    """The "no match" cut on the top-1 cosine that maximises decision accuracy over all
    queries: a query is right when it links to its entity, or when it links to nothing and its
    entity is not in the corpus. -> (threshold, accuracy)."""
    return grid_search(np.round(np.arange(0.0, 1.0, 0.01), 2),
                       lambda t: np.mean(np.where(best_sims >= t, correct, ~in_corpus)))


def cluster_dense(sim: np.ndarray, threshold: float) -> np.ndarray:
    """Single linkage over a dense (N, N) similarity matrix, for the string baselines."""
    rows, cols = np.nonzero(np.triu(sim >= threshold, k=1))
    return _components(len(sim), rows, cols)


def tune_dense_threshold(sim: np.ndarray, entities: Sequence[str | None]) -> tuple[float, float]:
    truth = labels_of(entities)
    return grid_search(np.round(np.arange(0.05, 1.0, 0.025), 3),
                       lambda t: adjusted_rand_score(truth, cluster_dense(sim, t)))
