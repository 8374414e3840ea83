"""The indexes under test in the linker bench (bench/linker.py): the service's BlockIndex over
a flat, IVF or HNSW FAISS index, on CPU or GPU."""

from __future__ import annotations

import time

import numpy as np



class GpuContext:
    def __init__(self):
        import faiss

        if not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() < 1:
            raise SystemExit("no FAISS GPU support here (install faiss-gpu; see docs/performance.md)")
        self.res = faiss.StandardGpuResources()
        self.keep: list = []  # Python references the GPU indexes need alive


def build_index(kind: str, x: np.ndarray, ids: list[str], args, gpu: GpuContext | None):
    """-> (BlockIndex holding x, spec, search mode, build seconds)."""
    import faiss

    from clippings.services.linker.index import BlockIndex

    n, dim = x.shape
    faiss.omp_set_num_threads(args.build_threads)
    start = time.perf_counter()
    if kind == "flat":
        spec, mode = "Flat", ("knn" if gpu else "range")  # range: the service default (exact single linkage)
        if gpu:
            inner = faiss.GpuIndexFlatIP(gpu.res, dim)
            gpu.keep.append(inner)
            index = faiss.IndexIDMap(inner)
        else:
            index = None
    elif kind == "ivf":
        nlist = args.ivf_nlist or max(16, int(np.sqrt(n)))
        spec, mode = f"IVF{nlist},Flat", "knn"
        train = x[np.random.default_rng(1).choice(n, min(n, max(args.ivf_train, 40 * nlist)), replace=False)]
        if gpu:
            index = faiss.GpuIndexIVFFlat(gpu.res, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            index.train(train)
            faiss.GpuParameterSpace().set_index_parameter(index, "nprobe", args.ivf_nprobe)
        else:
            index = faiss.index_factory(dim, f"IDMap,{spec}", faiss.METRIC_INNER_PRODUCT)
            index.train(train)
            faiss.extract_index_ivf(index).nprobe = args.ivf_nprobe
    else:
        spec, mode = f"HNSW{args.hnsw_m}", "knn"  # the service config: HNSW needs search="knn"
        index = None
    block = BlockIndex(dim, spec, index=index, ids=[])
    if kind == "hnsw":
        hnsw = faiss.downcast_index(block.index.index).hnsw
        hnsw.efConstruction, hnsw.efSearch = args.hnsw_ef_construction, args.hnsw_ef_search
    for s in range(0, n, 50_000):
        block.add(x[s:s + 50_000], ids[s:s + 50_000])
    build_s = time.perf_counter() - start
    faiss.omp_set_num_threads(args.threads)
    return block, spec, mode, build_s


def bytes_per_vector(block) -> float | None:
    import faiss

    try:
        return faiss.serialize_index(block.index).nbytes / max(1, len(block))
    except RuntimeError:  # GPU indexes do not serialise
        return None
