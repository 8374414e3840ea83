"""Render-and-read jobs of a shift set, in order, on one process or a pool, with a progress bar;
and the files a finished set is written to."""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
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


def write_set(out: Path, results: list[tuple[dict, dict]], info: dict) -> Path:
    """(record, meta) per clipping -> meta.jsonl, shift.json, then records.jsonl (last, by rename:
    an interrupted run never loads)."""
    with (out / "meta.jsonl").open("w", encoding="utf-8") as fh:
        for _, meta in results:
            fh.write(json.dumps(meta, ensure_ascii=False) + "\n")
    (out / "shift.json").write_text(json.dumps(info, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    tmp = out / "records.jsonl.tmp"
    with tmp.open("w", encoding="utf-8") as fh:
        for record, _ in results:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    tmp.replace(out / "records.jsonl")
    return out
