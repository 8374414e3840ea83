"""One FAISS index per block: inner product over unit vectors (= cosine), ids by insertion order.

The FAISS id of a vector is its position in `ids`, so the index and the id list rebuild
identically from the same sequence of adds (replay after a restart gives the same ids).
"""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

from clippings.errors import ConfigError

Hits = list[tuple[str, float]]  # (clipping id, cosine), most similar first


def new_faiss_index(dim: int, spec: str) -> faiss.Index:
    try:
        index = faiss.index_factory(dim, f"IDMap,{spec}", faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise ConfigError(f"index_spec {spec!r} is no FAISS index_factory string: {exc}") from None
    if not index.is_trained:
        raise ConfigError(
            f"index_spec {spec!r} needs training before use; the linker adds vectors as they come, "
            "so use an index that needs none (Flat, HNSW32, ...)"
        )
    return index


class BlockIndex:
    def __init__(self, dim: int, spec: str, index: faiss.Index | None = None, ids: list[str] | None = None):
        self.dim = dim
        self.spec = spec
        self.index = index if index is not None else new_faiss_index(dim, spec)
        self.ids: list[str] = ids if ids is not None else []
        if self.index.ntotal != len(self.ids):
            raise ValueError(f"index holds {self.index.ntotal} vectors but {len(self.ids)} ids")

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, vectors: np.ndarray, ids: list[str]) -> None:
        """vectors (n, D) float32 unit rows."""
        start = len(self.ids)
        self.index.add_with_ids(vectors, np.arange(start, start + len(ids), dtype=np.int64))
        self.ids.extend(ids)

    def search(self, vectors: np.ndarray, mode: str, threshold: float, k: int) -> list[Hits]:
        """Neighbours of each row at cosine >= threshold: all of them ("range") or among the top k ("knn")."""
        n = len(vectors)
        if n == 0 or not self.ids:
            return [[] for _ in range(n)]
        cut = np.float32(threshold)  # compared in float32, as offline single_linkage does
        out: list[Hits] = []
        if mode == "range":
            # FAISS keeps inner products strictly above the radius: one float below keeps ">=".
            radius = float(np.nextafter(cut, np.float32(-np.inf)))
            lims, sims, fids = self.index.range_search(vectors, radius)
            for i in range(n):
                lo, hi = int(lims[i]), int(lims[i + 1])
                order = np.argsort(-sims[lo:hi], kind="stable")
                out.append([(self.ids[fids[lo + j]], float(sims[lo + j])) for j in order if sims[lo + j] >= cut])
        else:
            sims, fids = self.index.search(vectors, min(k, len(self.ids)))
            for row_s, row_f in zip(sims, fids):
                out.append([(self.ids[f], float(s)) for s, f in zip(row_s, row_f) if f >= 0 and s >= cut])
        return out

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path, dim: int, spec: str, ids: list[str]) -> "BlockIndex":
        return cls(dim, spec, faiss.read_index(str(path)), ids)
