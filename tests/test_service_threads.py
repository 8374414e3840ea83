"""A service process keeps NumPy's BLAS in the calling thread: its pool of spinning workers took
CPU from the stack and ran the index rebuild's products at normal priority
(services/ops/threads.py)."""

from __future__ import annotations

import signal

import numpy  # noqa: F401 (loads the BLAS this test looks at)
import pytest

from clippings.services.ops.threads import pthreads_blas

pytestmark = pytest.mark.integration


def pthreads_blas_threads() -> set[int]:
    return {lib.num_threads for lib in pthreads_blas().lib_controllers}


@pytest.fixture
def process_wide_state():
    """What the command changes for the whole test process, put back afterwards: the BLAS
    threads (two here, as a fresh process has them) and the stop signals' handlers."""
    blas = pthreads_blas().limit(limits=2)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield
    blas.restore_original_limits()
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


def test_a_service_command_runs_numpy_blas_in_one_thread(process_wide_state, monkeypatch, tmp_path):
    """The command a service process runs (here without a broker, so it gives up after 2 s)."""
    from clippings.services.__main__ import main
    from clippings.services.local.stack import free_port

    assert pthreads_blas_threads() == {2}, "NumPy's BLAS is no pthreads pool"
    monkeypatch.setenv("CLIPPINGS_BROKER_TIMEOUT_S", "2")
    monkeypatch.chdir(tmp_path)
    assert main(["embedder", "--bootstrap", f"127.0.0.1:{free_port()}", "--metrics-port", str(free_port())]) != 0
    assert pthreads_blas_threads() == {1}
