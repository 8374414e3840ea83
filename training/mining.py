"""Hard-negative batches: each batch holds k classes that the current model finds close to
one another, m instances each, so SupCon spends its gradient on the confusable pairs.

The paper's code mines once, before stage 2; here the neighbours are re-mined from the
current model's exemplar embeddings at the start of every epoch.
"""

from __future__ import annotations

import faiss
import numpy as np


class HardNegativeSampler:
    def __init__(self, labels: np.ndarray, classes_per_batch: int, instances: int, seed: int):
        self.labels = labels
        self.k = classes_per_batch
        self.m = instances
        self.rng = np.random.default_rng(seed)
        self.classes = np.unique(labels)
        self.members = {c: np.flatnonzero(labels == c) for c in self.classes}

    def exemplars(self) -> np.ndarray:
        """One record index per class: the first instance, embedded to find neighbours."""
        return np.array([self.members[c][0] for c in self.classes])

    def batches(self, exemplar_emb: np.ndarray | None) -> list[np.ndarray]:
        """One epoch of batches; exemplar_emb (n_classes, D) in self.classes order, or None for
        random class groups (before the model has learnt anything worth mining)."""
        n = len(self.classes)
        order = self.rng.permutation(n)
        if exemplar_emb is None:
            groups = [order[i : i + self.k] for i in range(0, n, self.k)]
        else:
            groups = self._neighbour_groups(exemplar_emb, order)
        return [self._sample(g) for g in groups if len(g) >= 2]

    def _neighbour_groups(self, emb: np.ndarray, order: np.ndarray) -> list[np.ndarray]:
        index = faiss.IndexFlatIP(emb.shape[1])
        index.add(np.ascontiguousarray(emb, dtype=np.float32))
        n_search = min(len(emb), 4 * self.k)
        _, nbrs = index.search(np.ascontiguousarray(emb, dtype=np.float32), n_search)
        used = np.zeros(len(emb), bool)
        groups = []
        for anchor in order:
            if used[anchor]:
                continue
            group = [anchor]
            used[anchor] = True
            for c in nbrs[anchor]:
                if len(group) == self.k:
                    break
                if c >= 0 and not used[c]:
                    group.append(c)
                    used[c] = True
            groups.append(np.array(group))
        return groups

    def _sample(self, class_positions: np.ndarray) -> np.ndarray:
        # Up to m distinct instances a class; a class with fewer still serves as negatives.
        return np.concatenate([self.rng.permutation(self.members[c])[: self.m] for c in self.classes[class_positions]])
