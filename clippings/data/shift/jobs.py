"""Render-and-read jobs of a shift set, in order, on one process or a pool, with a progress bar."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from typing import Callable, TypeVar

J, R = TypeVar("J"), TypeVar("R")


def run_jobs(fn: Callable[[J], R], jobs: list[J], workers: int, progress: bool, desc: str, unit: str) -> list[R]:
    """fn over jobs, results in the jobs' order (what makes a set byte-identical whatever `workers`)."""
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc=desc, unit=unit)
    results = []
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            for r in pool.map(fn, jobs, chunksize=4):
                results.append(r)
                bar and bar.update()
    else:
        for job in jobs:
            results.append(fn(job))
            bar and bar.update()
    if bar:
        bar.close()
    return results
