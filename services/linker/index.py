"""One FAISS index per block: inner product over unit vectors (= cosine), ids by insertion order.

The FAISS id of a vector is its position in `ids`, so the index and the id list rebuild
identically from the same sequence of adds (replay after a restart gives the same ids).

With a GrowthPolicy a flat block moves to an approximate IVF index past a size, built in a
worker thread while decisions go on (growth.py).

With `gpu_min_vectors` > 0 a block that grows to that many vectors moves to the GPU when
FAISS sees one (faiss-gpu: `pip install 'clippings[gpu]'`), and stays on the CPU with one
log line otherwise. FAISS has no range search on GPU, so only "knn" search uses it (the
service passes 0 for "range"). Snapshots are always written from a CPU copy.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import faiss
import numpy as np

from clippings.errors import ConfigError
from clippings.services.linker.growth import (
    GrowthPolicy, Grown, ListCopy, approximate_params, build_ivf, regrowth_due, yield_to_decisions,
)
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


def _build_in_background(vectors: np.ndarray, policy: GrowthPolicy) -> Grown:
    """The worker thread's job: build_ivf, behind the decisions (growth.yield_to_decisions)."""
    yield_to_decisions()
    return build_ivf(vectors, policy)


class BlockIndex:
    def __init__(self, dim: int, spec: str, index: faiss.Index | None = None, ids: list[str] | None = None,
                 gpu_min_vectors: int = 0, growth: GrowthPolicy | None = None, link_recall: float | None = None):
        self.dim = dim
        self.spec = spec
        self.index = index if index is not None else new_faiss_index(dim, spec)
        self.ids: list[str] = ids if ids is not None else []
        if self.index.ntotal != len(self.ids):
            raise ValueError(f"index holds {self.index.ntotal} vectors but {len(self.ids)} ids")
        self.growth = growth
        self.link_recall = link_recall  # of the approximate index, measured when it was built
        # Kept, not asked of FAISS: the service reads it for every block after every batch.
        self.approximate = approximate_params(self.index) is not None
        self._build: Future | None = None
        self._copy: ListCopy | None = None  # a rebuild's copy of the lists, taken over several adds
        self._added_since: list[np.ndarray] = []  # vectors added after the copy began: the build's tail
        self._worker: ThreadPoolExecutor | None = None
        self.on_gpu = False
        self.use_gpu_from(gpu_min_vectors)

    @property
    def growing(self) -> bool:
        return self._build is not None

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

    def _flat(self) -> faiss.IndexFlat | None:
        inner = faiss.downcast_index(self.index.index) if isinstance(self.index, faiss.IndexIDMap) else None
        return inner if isinstance(inner, faiss.IndexFlat) else None

    def _grow(self) -> None:
        """Start building the approximate index once a flat block reaches the policy's size, or
        again once an IVF block has quadrupled since its lists were fitted. The vectors are
        copied here, in the decision thread: the worker must not read the index while later
        batches add to it (an IVF block's copy is taken over several adds: ListCopy)."""
        g = self.growth
        if g is None or g.grow_at <= 0 or self._build is not None or self.on_gpu or len(self.ids) < g.grow_at:
            if self._build is None:  # growth stopped or moved to the GPU meanwhile: no build will follow
                self._copy, self._added_since = None, []
            return
        flat = self._flat()
        if flat is not None:
            vectors, self._added_since = flat.reconstruct_n(0, len(self.ids)), []
        else:
            params = approximate_params(self.index) if self.approximate else None
            if params is None or (self._copy is None and not regrowth_due(len(self.ids), params[0])):
                return  # an index_spec other than Flat, or IVF lists that still fit the block
            if self._copy is None:
                self._copy, self._added_since = ListCopy(self.index, len(self.ids)), []
            if not self._copy.step(self.index, g.copy_per_add):
                return  # more lists at the next add
            vectors, self._copy = self._copy.out, None
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="index-growth")
        self._build = self._worker.submit(_build_in_background, vectors, g)
        log.info(kv("index_growth_started", vectors=len(vectors), regrowth=flat is None))

    def _swap_if_built(self, wait: bool = False) -> None:
        """Between batches: swap a finished build in, after adding what came since its copy."""
        if self._build is None or not (wait or self._build.done()):
            return
        future, self._build = self._build, None
        added, self._added_since = self._added_since, []
        try:
            grown: Grown = future.result()
        except Exception as exc:  # noqa: BLE001 - a failed build leaves the index serving as it was
            log.error(kv("index_growth_failed", vectors=len(self.ids), detail=str(exc)))
            self.growth = None
            return
        finally:
            self._worker.shutdown(wait=False)
        if self.on_gpu:  # moved to the GPU meanwhile (knn): its exact search stays; IVF would be a step back
            log.info(kv("index_growth_dropped", vectors=len(self.ids), reason="block moved to the GPU"))
            return
        if len(self.ids) > grown.n:
            grown.index.add_with_ids(np.concatenate(added), np.arange(grown.n, len(self.ids), dtype=np.int64))
        self.index, self.link_recall, self.approximate = grown.index, grown.link_recall, True
        log.info(kv("index_grown", vectors=len(self.ids), nlist=grown.nlist, nprobe=grown.nprobe,
                    link_recall=round(grown.link_recall, 4), build_s=round(grown.build_s, 2)))

    def grow_with(self, policy: GrowthPolicy | None) -> None:
        """Set the growth policy (a restored block gets the running linker's), growing now if due."""
        self.growth = policy
        self._grow()

    def finish_growth(self) -> None:
        """Finish a rebuild's copy, wait for a build in progress and swap it in (benches, tests;
        the service never waits)."""
        while self._copy is not None:
            self._grow()
        self._swap_if_built(wait=True)

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, vectors: np.ndarray, ids: list[str]) -> None:
        """vectors (n, D) float32 unit rows."""
        self._swap_if_built()
        start = len(self.ids)
        self.index.add_with_ids(vectors, np.arange(start, start + len(ids), dtype=np.int64))
        self.ids.extend(ids)
        if self._copy is not None or self._build is not None:
            self._added_since.append(np.array(vectors, dtype=np.float32))
        self._place()
        self._grow()

    def search(self, vectors: np.ndarray, mode: str, threshold: float, k: int) -> list[Hits]:
        """Neighbours of each row at cosine >= threshold: all of them ("range") or among the top k ("knn")."""
        self._swap_if_built()
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
                row_s, row_f = sims[lims[i]:lims[i + 1]], fids[lims[i]:lims[i + 1]]
                order = np.argsort(-row_s, kind="stable")
                order = order[row_s[order] >= cut]
                # Whole arrays to Python at once: a wire story's reprints are many neighbours each.
                out.append([(self.ids[f], s) for f, s in zip(row_f[order].tolist(), row_s[order].tolist())])
        else:
            sims, fids = self.index.search(vectors, min(k, len(self.ids)))
            for row_s, row_f in zip(sims, fids):
                out.append([(self.ids[f], float(s)) for s, f in zip(row_s, row_f) if f >= 0 and s >= cut])
        return out

    def save(self, path: Path) -> None:
        faiss.write_index(faiss.index_gpu_to_cpu(self.index) if self.on_gpu else self.index, str(path))

    @classmethod
    def load(cls, path: Path, dim: int, spec: str, ids: list[str], gpu_min_vectors: int = 0,
             link_recall: float | None = None) -> "BlockIndex":
        """A saved block (one saved while its build ran was saved flat: grow_with starts it again)."""
        return cls(dim, spec, faiss.read_index(str(path)), ids, gpu_min_vectors, link_recall=link_recall)
