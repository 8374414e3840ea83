"""Scores over embeddings of a dataset's records: top-1 linking and ARI of noisy-duplicate
clusters. Shared by validation during training and by `clippings eval`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.metrics import adjusted_rand_score

from clippings.linking import labels_of, single_linkage, top1, top1_accuracy, tune_dedup_threshold, tune_link_threshold


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


def dedup_scores(
    val_vectors: np.ndarray, val_entities: Sequence[str | None],
    test_vectors: np.ndarray, test_entities: Sequence[str | None],
) -> dict:
    """ARI on test at the cosine cut that maximises ARI on val."""
    threshold, val_ari = tune_dedup_threshold(val_vectors, val_entities)
    ari = adjusted_rand_score(labels_of(test_entities), single_linkage(test_vectors, threshold))
    return {"ari": float(ari), "threshold": threshold, "val_ari": val_ari, "n": len(test_entities)}
