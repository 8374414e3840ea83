"""NumPy's BLAS in the services: one thread, the caller's.

Why: NumPy's OpenBLAS (a pthreads build) keeps a pool of worker threads that spin for a while
after each call before they sleep. The services' own NumPy products are small (a batch's
Gram matrix; FAISS searches with its own OpenMP threads, `CLIPPINGS_FAISS_THREADS`), so the
pool gained nothing and its spinning took CPU from the rest of the stack: in bench.e2e's burst
the linker spent 1.27 ms of CPU a clipping with it and 0.18 without (docs/performance.md,
"NumPy's BLAS threads"). And the linker's index rebuild, which runs at the lowest priority,
did its recall check's products on that pool at normal priority, beside the decisions.
"""

from __future__ import annotations

from threadpoolctl import ThreadpoolController


def pthreads_blas() -> ThreadpoolController:
    """The BLAS libraries loaded in the process that run their own thread pool (NumPy's)."""
    return ThreadpoolController().select(threading_layer="pthreads")


def numpy_blas_in_caller() -> None:
    """Limit every pthreads BLAS in the process (NumPy's OpenBLAS) to the calling thread. Call
    it from the main thread: a count set from another thread did not take (OpenBLAS 0.3.31).
    FAISS's own OpenBLAS is an OpenMP build and keeps following FAISS's thread count."""
    pthreads_blas().limit(limits=1)
