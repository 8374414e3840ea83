"""One FAISS index per block: inner product over unit vectors (= cosine), ids by insertion order.

The FAISS id of a vector is its position in `ids`, so the index and the id list rebuild
identically from the same sequence of adds (replay after a restart gives the same ids).

With `gpu_min_vectors` > 0 a block that grows to that many vectors moves to the GPU when
FAISS sees one (faiss-gpu: `pip install 'clippings[gpu]'`), and stays on the CPU with one
log line otherwise. FAISS has no range search on GPU, so only "knn" search uses it (the
service passes 0 for "range"). Snapshots are always written from a CPU copy.
"""

from __future__ import annotations

import logging
from pathlib import Path

import faiss
import numpy as np

from clippings.errors import ConfigError
from clippings.services.ops.logfmt import kv

log = logging.getLogger(__name__)

Hits = list[tuple[str, float]]  # (clipping id, cosine), most similar first


def configure_faiss(threads: int, blas_min_queries: int, dim: int) -> None:
    """FAISS's process-wide knobs, set once at linker start-up. FAISS compares queries x dim
    with its BLAS threshold (default 128,000: 1,000 queries of 128 dims) before it switches a
    batched search from its scalar loop to BLAS."""
    faiss.omp_set_num_threads(threads)
    faiss.cvar.distance_compute_blas_threshold = blas_min_queries * dim


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


def to_gpu(index: faiss.Index) -> faiss.Index | None:
    """A GPU copy of `index` on the first GPU, or None (logged) when FAISS has none or cannot
    place this index type there."""
    gpus = faiss.get_num_gpus() if hasattr(faiss, "StandardGpuResources") else 0
    if gpus < 1:
        log.info(kv("faiss_index_on_cpu", vectors=index.ntotal, reason="FAISS sees no GPU (CPU build or no device)"))
        return None
    try:
        return faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
    except RuntimeError as exc:  # an index type without a GPU implementation (HNSW, ...)
        log.warning(kv("faiss_index_on_cpu", vectors=index.ntotal, reason=str(exc).splitlines()[0]))
        return None


class BlockIndex:
    def __init__(self, dim: int, spec: str, index: faiss.Index | None = None, ids: list[str] | None = None,
                 gpu_min_vectors: int = 0):
        self.dim = dim
        self.spec = spec
        self.index = index if index is not None else new_faiss_index(dim, spec)
        self.ids: list[str] = ids if ids is not None else []
        if self.index.ntotal != len(self.ids):
            raise ValueError(f"index holds {self.index.ntotal} vectors but {len(self.ids)} ids")
        self.on_gpu = False
        self.use_gpu_from(gpu_min_vectors)

    def use_gpu_from(self, min_vectors: int) -> None:
        """Move to the GPU at `min_vectors` vectors (0: stay on the CPU), now if already that large."""
        self.gpu_min_vectors = min_vectors
        self._place()

    def _place(self) -> None:
        """Move to the GPU once the block is large enough; one try per block (a refusal is final)."""
        if self.gpu_min_vectors <= 0 or self.on_gpu or len(self.ids) < self.gpu_min_vectors:
            return
        gpu_index = to_gpu(self.index)
        self.gpu_min_vectors = 0 if gpu_index is None else self.gpu_min_vectors
        if gpu_index is not None:
            self.index, self.on_gpu = gpu_index, True

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, vectors: np.ndarray, ids: list[str]) -> None:
        """vectors (n, D) float32 unit rows."""
        start = len(self.ids)
        self.index.add_with_ids(vectors, np.arange(start, start + len(ids), dtype=np.int64))
        self.ids.extend(ids)
        self._place()

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
        faiss.write_index(faiss.index_gpu_to_cpu(self.index) if self.on_gpu else self.index, str(path))

    @classmethod
    def load(cls, path: Path, dim: int, spec: str, ids: list[str], gpu_min_vectors: int = 0) -> "BlockIndex":
        return cls(dim, spec, faiss.read_index(str(path)), ids, gpu_min_vectors)
