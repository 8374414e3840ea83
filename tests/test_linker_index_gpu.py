"""The linker's GPU FAISS path (services/linker/index.py) on a machine whose FAISS has no GPU:
a block past `gpu_min_vectors` says once that it stays on the CPU and answers exactly as a
CPU-only block does, snapshots included. (On a GPU machine the same test runs the GPU path.)"""

from __future__ import annotations

import logging

import faiss
import numpy as np

from clippings.services.linker.index import BlockIndex


def _unit_rows(n: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_a_block_past_the_gpu_size_searches_like_a_cpu_block(tmp_path, caplog):
    dim, x, queries = 16, _unit_rows(40, 16, 0), _unit_rows(5, 16, 1)
    ids = [f"c{i}" for i in range(len(x))]
    cpu = BlockIndex(dim, "Flat")
    placed = BlockIndex(dim, "Flat", gpu_min_vectors=30)
    with caplog.at_level(logging.INFO, logger="clippings.services.linker.index"):
        for block in (cpu, placed):
            block.add(x[:20], ids[:20])
            block.add(x[20:], ids[20:])
    has_gpu = hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0
    assert placed.on_gpu == has_gpu and not cpu.on_gpu
    said = [r.getMessage() for r in caplog.records if "faiss_index_on_cpu" in r.getMessage()]
    assert len(said) == (0 if has_gpu else 1) and (has_gpu or "vectors=40" in said[0])
    want = cpu.search(queries, "knn", -1.0, 5)
    got = placed.search(queries, "knn", -1.0, 5)
    assert [[i for i, _ in hits] for hits in got] == [[i for i, _ in hits] for hits in want]
    np.testing.assert_allclose([[s for _, s in h] for h in got], [[s for _, s in h] for h in want], atol=1e-5)
    placed.save(tmp_path / "block.faiss")
    again = BlockIndex.load(tmp_path / "block.faiss", dim, "Flat", ids)
    assert [[i for i, _ in h] for h in again.search(queries, "knn", -1.0, 5)] == [[i for i, _ in h] for h in want]


def test_below_the_gpu_size_nothing_moves_or_logs(caplog):
    with caplog.at_level(logging.INFO, logger="clippings.services.linker.index"):
        block = BlockIndex(8, "Flat", gpu_min_vectors=100)
        block.add(_unit_rows(10, 8, 2), [f"c{i}" for i in range(10)])
    assert not block.on_gpu and not [r for r in caplog.records if "faiss_index_on_cpu" in r.getMessage()]
