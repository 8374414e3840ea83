"""The serving defaults that docs/performance.md measured: ONNX Runtime threads sleep between
batches and fit the process's CPU share; a linker's batched FAISS search uses BLAS."""

import os

import faiss
import pytest

from clippings.runtime.onnx_model import OnnxEmbedder, cpu_budget
from clippings.services.linker.index import configure_faiss


def test_onnx_threads_do_not_spin_and_fit_the_cpu_share():
    emb = OnnxEmbedder("news")
    opts = emb.session.get_session_options()
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert opts.intra_op_num_threads == cpu_budget()
    assert OnnxEmbedder("news", intra_op_threads=1).session.get_session_options().intra_op_num_threads == 1


def test_cpu_budget_is_the_affinity_capped_by_the_cgroup_quota():
    n = len(os.sched_getaffinity(0))
    try:
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()[:2]
    except OSError:
        quota = "max"
    expected = n if quota == "max" else max(1, min(n, -(-int(quota) // int(period))))
    assert cpu_budget() == expected


@pytest.fixture
def faiss_knobs():
    saved = faiss.cvar.distance_compute_blas_threshold, faiss.omp_get_max_threads()
    yield
    faiss.cvar.distance_compute_blas_threshold = saved[0]
    faiss.omp_set_num_threads(saved[1])


def test_linker_search_switches_to_blas_from_a_few_queries(faiss_knobs):
    configure_faiss(threads=1, blas_min_queries=8, dim=128)
    assert faiss.cvar.distance_compute_blas_threshold == 8 * 128  # FAISS counts queries x dim
    assert faiss.omp_get_max_threads() == 1
