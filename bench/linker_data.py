"""The linker bench's synthetic vectors (bench/linker.py): clustered unit vectors like the
embeddings of noisy duplicates, and exact neighbours to score approximate indexes against."""

from __future__ import annotations

import numpy as np

DIM = 128


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


class Corpus:
    """Clustered unit vectors: each entity's centre at cosine ~0.6 to a random topic's centre
    (entities of one topic at ~0.36 to each other), its members scattered around it."""

    def __init__(self, n: int, rng: np.random.Generator, dim: int = DIM, mean_cluster: float = 2.4):
        self.dim, self.rng = dim, rng
        self.n_entities = max(1, int(n / mean_cluster))
        self.topics = _unit(rng.standard_normal((max(16, self.n_entities // 200), dim)))
        self.centres = self._centres(self.n_entities)
        self.entity = rng.integers(0, self.n_entities, n)  # (n,) entity of each vector
        self.vectors = np.empty((n, dim), np.float32)
        for s in range(0, n, 100_000):  # chunks: the noise of 1e6 vectors at once is 0.5 GB
            self.vectors[s:s + 100_000] = self._members(self.centres[self.entity[s:s + 100_000]])

    def _centres(self, m: int) -> np.ndarray:
        t = self.topics[self.rng.integers(0, len(self.topics), m)]
        return _unit(0.6 * t + 0.8 * self.rng.standard_normal((m, self.dim)) / np.sqrt(self.dim))

    def _members(self, centres: np.ndarray) -> np.ndarray:
        spread = self.rng.uniform(0.15, 0.45, (len(centres), 1))  # per member: cosine to its centre 0.91..0.99
        return _unit(centres + spread * self.rng.standard_normal(centres.shape) / np.sqrt(self.dim))

    def queries(self, q: int) -> np.ndarray:
        """Half duplicates of indexed entities, half new entities, shuffled."""
        dups = self._members(self.centres[self.entity[self.rng.integers(0, len(self.entity), q // 2)]])
        fresh = self._members(self._centres(q - q // 2))
        out = np.concatenate([dups, fresh])
        return out[self.rng.permutation(q)]


def exact_neighbours(x: np.ndarray, q: np.ndarray, k: int, threshold: float) -> tuple[np.ndarray, list[set[int]]]:
    """Brute force over chunks: top-k positions per query and every position at cosine >= threshold."""
    cut = np.float32(threshold)
    best_s = np.full((len(q), k), -np.inf, np.float32)
    best_i = np.zeros((len(q), k), np.int64)
    links: list[set[int]] = [set() for _ in range(len(q))]
    for s in range(0, len(x), 65_536):
        sims = q @ x[s:s + 65_536].T  # (Q, chunk)
        for r, c in zip(*np.nonzero(sims >= cut)):
            links[r].add(s + int(c))
        kk = min(k, sims.shape[1])
        part = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
        cand_s = np.concatenate([best_s, np.take_along_axis(sims, part, 1)], axis=1)
        cand_i = np.concatenate([best_i, part + s], axis=1)
        order = np.argsort(-cand_s, axis=1, kind="stable")[:, :k]
        best_s, best_i = np.take_along_axis(cand_s, order, 1), np.take_along_axis(cand_i, order, 1)
    return best_i, links
