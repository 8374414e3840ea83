"""Scores over embeddings of a dataset's records: top-1 linking and ARI of noisy-duplicate
clusters. Shared by validation during training and by `clippings eval`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.metrics import adjusted_rand_score

from clippings.evaluation.linking import (
    grid_search, labels_of, single_linkage, top1, top1_accuracy, tune_dedup_threshold, tune_link_threshold,
)


def link_scores(vectors: np.ndarray, splits: Sequence[str], entities: Sequence[str | None]) -> dict:
    """Top-1 of each query among the corpus, scored over queries whose entity is in the corpus;
    plus the tuned "no match" threshold over all queries."""
    splits_a = np.asarray(splits)
    c_idx, q_idx = np.flatnonzero(splits_a == "corpus"), np.flatnonzero(splits_a == "query")
    corpus_entities = [entities[i] for i in c_idx]
    query_entities = [entities[i] for i in q_idx]
    nn_idx, nn_sim = top1(vectors[q_idx], vectors[c_idx])
    predicted = [corpus_entities[j] for j in nn_idx]
    known = {e for e in corpus_entities if e is not None}
    acc, n = top1_accuracy(predicted, query_entities, known)
    correct = np.array([p == q for p, q in zip(predicted, query_entities)])
    in_corpus = np.array([q in known for q in query_entities])
    threshold, decision_acc = tune_link_threshold(nn_sim, correct, in_corpus)
    return {"top1": acc, "n": n, "threshold": threshold, "decision_accuracy": decision_acc}


def link_decision_accuracy(
    vectors: np.ndarray, splits: Sequence[str], entities: Sequence[str | None], threshold: float
) -> float:
    """Share of all queries decided right at a given "no match" cut: linked to their entity, or
    linked to nothing when their entity is not in the corpus."""
    splits_a = np.asarray(splits)
    c_idx, q_idx = np.flatnonzero(splits_a == "corpus"), np.flatnonzero(splits_a == "query")
    nn_idx, nn_sim = top1(vectors[q_idx], vectors[c_idx])
    known = {entities[i] for i in c_idx if entities[i] is not None}
    right = [
        (sim >= threshold and entities[c_idx[j]] == entities[q]) or (sim < threshold and entities[q] not in known)
        for j, sim, q in zip(nn_idx, nn_sim, q_idx)
    ]
    return float(np.mean(right)) if right else 0.0


def dedup_scores(
    val_vectors: np.ndarray, val_entities: Sequence[str | None],
    test_vectors: np.ndarray, test_entities: Sequence[str | None],
) -> dict:
    """ARI on test at the cosine cut that maximises ARI on val."""
    threshold, val_ari = tune_dedup_threshold(val_vectors, val_entities)
    ari = adjusted_rand_score(labels_of(test_entities), single_linkage(test_vectors, threshold))
    return {"ari": float(ari), "threshold": threshold, "val_ari": val_ari, "n": len(test_entities)}


WEIGHT_GRID = np.round(np.arange(0.0, 1.01, 0.1), 2)
# A served dedup cut (and a dedup set's w) is chosen for the mean ARI of the cuts within 0.04
# of it on validation, not its own (linking.tune_dedup_threshold). Chosen after the news shift
# set showed the peak's cliff: docs/model.md, "Calibration".
SERVING_WINDOW = 0.04


def link_margin(vectors: np.ndarray, splits: Sequence[str], entities: Sequence[str | None]) -> float:
    """Mean, over queries whose entity is in the corpus (and not alone in it), of (best cosine
    to a corpus record of its own entity) - (best cosine to another entity's): in [-2, 2]."""
    splits_a = np.asarray(splits)
    c_idx, q_idx = np.flatnonzero(splits_a == "corpus"), np.flatnonzero(splits_a == "query")
    corpus_ent = np.asarray([entities[i] for i in c_idx], dtype=object)
    own = corpus_ent[None, :] == np.asarray([entities[i] for i in q_idx], dtype=object)[:, None]  # (Q, C)
    scored = own.any(axis=1) & ~own.all(axis=1) & np.array([entities[i] is not None for i in q_idx], bool)
    if not scored.any():
        return 0.0
    sims = vectors[q_idx[scored]] @ vectors[c_idx].T
    own = own[scored]
    return float(np.mean(np.where(own, sims, -np.inf).max(axis=1) - np.where(own, -np.inf, sims).max(axis=1)))


def tune_serving(
    image_emb: np.ndarray, text_emb: np.ndarray, image_present: np.ndarray, text_present: np.ndarray,
    splits: Sequence[str], entities: Sequence[str | None],
) -> dict:
    """The image weight w and the two thresholds a served model uses, chosen on a validation
    set: w maximises top-1 (linking set; among equal top-1, the mean margin of link_margin) or
    ARI (dedup set); remaining ties go to the w nearer 0.5."""
    def pooled(w: float) -> np.ndarray:
        from clippings.runtime.onnx_model import pool

        return pool(image_emb, text_emb, image_present, text_present, w)

    order = sorted(WEIGHT_GRID, key=lambda w: abs(w - 0.5))  # grid_search keeps the first of equals
    if {"corpus", "query"} <= set(splits):
        # Top-1 first; among equal top-1 (common: a few hundred queries, a coarse grid), the w
        # that keeps each query's own entity furthest above its best other one.
        def objective(w: float) -> float:
            v = pooled(float(w))
            return link_scores(v, splits, entities)["top1"] + 1e-6 * link_margin(v, splits, entities)

        w, _ = grid_search(order, objective)
        chosen = link_scores(pooled(w), splits, entities)
        dedup_threshold, _ = tune_dedup_threshold(pooled(w), entities, window=SERVING_WINDOW)
        return {"image_weight": w, "link": chosen["threshold"], "dedup": dedup_threshold, "val_top1": chosen["top1"]}
    w, _ = grid_search(order, lambda w: tune_dedup_threshold(pooled(float(w)), entities, window=SERVING_WINDOW)[1])
    threshold, plateau = tune_dedup_threshold(pooled(w), entities, window=SERVING_WINDOW)
    ari = adjusted_rand_score(labels_of(entities), single_linkage(pooled(w), threshold))
    # A dedup set has no corpus: the nearest-neighbour cut is the clustering cut.
    return {"image_weight": w, "link": threshold, "dedup": threshold, "val_ari": float(ari), "val_plateau": plateau}
