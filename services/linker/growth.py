"""An index that grows: a block starts exact (flat) and, past a size, moves to an approximate
IVF index trained on its own vectors.

Why: a flat index scans every vector per query, so its latency grows with the block (decision
p99 7.5 ms at 1e5 vectors of 128 dimensions, 59 ms at 1e6, one core:
bench/results/linker-flat-blas.json), while an IVF index scans nprobe of its lists. Built beside the flat
index, in a worker thread (FAISS releases the GIL while it trains and adds), so decisions go
on during the build; the block swaps the new index in between two batches and first adds the
vectors that came meanwhile. Before the swap the new index is checked against exact search on
a sample of the block's own vectors, at the decision threshold: link recall = the share of the
exact neighbour pairs at or above the threshold that the approximate search also returns.
nprobe doubles until that recall reaches the target (or every list is probed). An IVF block
that has quadrupled since its lists were fitted is rebuilt the same way with twice the lists,
so a search keeps scanning about the same number of vectors as the block grows.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from dataclasses import dataclass

import faiss
import numpy as np


@dataclass(frozen=True)
class GrowthPolicy:
    grow_at: int  # vectors at which a flat block moves to IVF; 0: it stays exact
    threshold: float  # the decision cut, where link recall is measured
    recall_target: float = 0.99
    nprobe: int = 16  # where the nprobe search starts
    sample: int = 256  # queries of the recall check
    seed: int = 0
    copy_per_add: int = 4096  # vectors a rebuild's copy takes from the IVF lists per add (see ListCopy)


@dataclass(frozen=True)
class Grown:
    """An approximate index holding the block's first n vectors (FAISS ids 0..n-1)."""

    index: faiss.Index
    n: int
    nlist: int
    nprobe: int
    link_recall: float
    build_s: float


def nlist_for(n: int) -> int:
    """About 4 sqrt(n) lists (FAISS's guidance), with 39+ training points each."""
    return int(max(1, min(4 * math.sqrt(n), n // 39)))


def link_recall(index: faiss.Index, vectors: np.ndarray, queries: np.ndarray, threshold: float) -> float:
    """Share of the exact pairs (query row, other row) at cosine >= threshold that a range
    search of `index` returns; a row's pair with itself is not counted. 1.0 when there are none."""
    cut, n = np.float32(threshold), len(vectors)
    exact = []
    for lo in range(0, n, 65536):  # a block of columns at a time: Q x 65,536 cosines
        rows, cols = np.nonzero(vectors[queries] @ vectors[lo : lo + 65536].T >= cut)
        exact.append(rows.astype(np.int64) * n + cols + lo)
    wanted = np.concatenate(exact)
    wanted = wanted[wanted % n != queries[wanted // n]]  # not itself
    if len(wanted) == 0:
        return 1.0
    lims, sims, ids = index.range_search(vectors[queries], float(np.nextafter(cut, np.float32(-np.inf))))
    rows = np.repeat(np.arange(len(queries), dtype=np.int64), np.diff(lims).astype(np.int64))
    found = (rows * n + ids)[sims >= cut]
    return float(np.isin(wanted, found).mean())


BACKGROUND_NICE = 19


def yield_to_decisions() -> None:
    """Make the calling thread (a build's worker) give way to the decision thread.

    Why: on the 2-core machine a build with FAISS's OpenMP threads on both cores raised one
    decision's p99 to 29 ms at 1e5 vectors (13 ms with no build) and to 19 ms at 5e4. Here its
    k-means and adds take one OpenMP thread (FAISS's thread count is per calling thread) at
    the lowest priority, so a decision gets a core when it needs one (p99 15 and 7-11 ms); the
    build takes longer, and the index it replaces serves meanwhile. Linux sets a nice value per thread;
    elsewhere only the thread count changes (the call would renice the whole process).
    """
    faiss.omp_set_num_threads(1)
    if sys.platform.startswith("linux"):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)


def build_ivf(vectors: np.ndarray, policy: GrowthPolicy) -> Grown:
    """Train and fill an IVF index on `vectors` (n, D), tuned until the recall check passes.
    Runs in a worker thread: touches nothing but its arguments."""
    start = time.perf_counter()
    n, dim = vectors.shape
    nlist = nlist_for(n)
    index = faiss.index_factory(dim, f"IDMap,IVF{nlist},Flat", faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(policy.seed)
    train = vectors[np.sort(rng.choice(n, size=min(n, 64 * nlist), replace=False))]
    index.train(train)
    index.add_with_ids(vectors, np.arange(n, dtype=np.int64))
    ivf = faiss.extract_index_ivf(index)
    queries = np.sort(rng.choice(n, size=min(n, policy.sample), replace=False))
    nprobe = min(policy.nprobe, nlist)
    while True:
        ivf.nprobe = nprobe
        recall = link_recall(index, vectors, queries, policy.threshold)
        if recall >= policy.recall_target or nprobe >= nlist:
            break
        nprobe = min(2 * nprobe, nlist)
    return Grown(index, n, nlist, nprobe, recall, time.perf_counter() - start)


class ListCopy:
    """A rebuild's copy of an IVF block's first n vectors, taken a few lists per add.

    Why: the copy must be taken in the decision thread (a batch's add may move a list while a
    worker reads it), and at 1e6 vectors of 256 floats the whole copy took 1.1-1.6 s: one pause
    of every decision. Each add appends to the end of its lists in id order, so a list's
    entries with ids below n are its first ones and stay as they are; copying them a slice of
    lists at a time gives the same array.
    """

    def __init__(self, index: faiss.Index, n: int):
        self.n, self.next_list = n, 0
        self.out = np.empty((n, faiss.extract_index_ivf(index).d), dtype=np.float32)

    def step(self, index: faiss.Index, budget: int) -> bool:
        """Copy lists until about `budget` vectors are taken; True once every list is copied."""
        ivf = faiss.extract_index_ivf(index)
        lists, taken = ivf.invlists, 0
        while self.next_list < ivf.nlist and taken < budget:
            size = lists.list_size(self.next_list)
            if size:
                ids = faiss.rev_swig_ptr(lists.get_ids(self.next_list), size)
                keep = int(np.searchsorted(ids, self.n))
                codes = faiss.rev_swig_ptr(lists.get_codes(self.next_list), keep * lists.code_size)
                self.out[ids[:keep]] = codes.view(np.float32).reshape(keep, ivf.d)
                taken += keep
            self.next_list += 1
        return self.next_list >= ivf.nlist


def regrowth_due(n: int, nlist: int) -> bool:
    """An IVF index fitted for fewer vectors is rebuilt once it would get twice the lists
    (n has quadrupled): its lists grow with the block, and so does the time of a search."""
    return nlist_for(n) >= 2 * nlist


def approximate_params(index: faiss.Index) -> tuple[int, int] | None:
    """(nlist, nprobe) of an IVF index (IDMap-wrapped or not); None for any other kind."""
    try:
        ivf = faiss.extract_index_ivf(index)
    except RuntimeError:
        return None
    return int(ivf.nlist), int(ivf.nprobe)
