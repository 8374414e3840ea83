"""What every bench shares: the machine's description, timing loops, tables, JSON, real inputs."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
SCHEMA = 1  # of the JSON every bench writes: {"bench", "schema", "command", "machine", "config", "results", "summary"}

# Real clippings for the embedder and end-to-end benches: the held-out test sets the lead
# generated, or (fresh clone) a small synthetic set made on first use.
DATASETS = {"news": "news-test", "jp-firms": "jp-test"}
_SYNTH = {"news": ("news", "dedup", 120), "jp-firms": ("jp-firms", "link", 120)}


def add_common_args(p: argparse.ArgumentParser, name: str) -> None:
    p.add_argument("--out", type=Path, help=f"JSON output (default: {RESULTS_DIR.relative_to(REPO)}/{name}.json, "
                                            f"with --quick {RESULTS_DIR.relative_to(REPO)}/quick-{name}.json)")
    p.add_argument("--quick", action="store_true", help="smallest sizes, a few seconds (the smoke test)")


def results_path(args: argparse.Namespace, name: str) -> Path:
    """--out, else bench/results/<name>.json; a --quick run never replaces those committed figures
    (quick-<name>.json is git-ignored)."""
    if args.out is not None:
        return args.out
    return RESULTS_DIR / (f"quick-{name}.json" if args.quick else f"{name}.json")


def command_line() -> str:
    """How this run was started, as a command a reader can paste."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    start = ["python -m", spec.name] if spec is not None else ["python", sys.argv[0]]
    return " ".join(start + sys.argv[1:])


def _first_cpu() -> dict[str, str]:
    """/proc/cpuinfo's fields of the first CPU, {} where there is none."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if not line.strip():
                break  # the first CPU only
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def _cpu_model(cpu: dict[str, str]) -> str:
    return cpu.get("model name") or platform.processor() or platform.machine()


SIMD_FLAGS = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile")


def _cpu_id(cpu: dict[str, str]) -> dict:
    """Family, model, stepping and the vector extensions of the first CPU: the VM calls every
    host's CPU "AMD EPYC", and the project's machine has run on Zen 3 (family 25) and on Zen 1
    (family 23, which splits each 256-bit AVX2 operation in two) under that one name."""
    if not cpu:
        return {}
    flags = set(cpu.get("flags", "").split())
    ident = {k: int(cpu[k]) for k in ("cpu family", "model", "stepping") if cpu.get(k, "").isdigit()}
    return {k.replace(" ", "_"): v for k, v in ident.items()} | {"simd": [f for f in SIMD_FLAGS if f in flags]}


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for mod in ("numpy", "onnxruntime", "faiss", "torch", "confluent_kafka", "redis", "PIL"):
        m = sys.modules.get(mod)  # only what this bench imported: never import torch just to name it
        if m is not None:
            out[mod] = getattr(m, "__version__", None) or (m.version()[0] if mod == "confluent_kafka" else "?")
    return out


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def machine() -> dict:
    import psutil

    import clippings

    cpu = _first_cpu()
    return {
        "cpu_model": _cpu_model(cpu),
        "cpu_id": _cpu_id(cpu),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
        "speed_probe": speed_probe(),
        "os": platform.platform(),
        "versions": _versions(),
        "git_commit": _git_commit(),
        "clippings_from": str(Path(clippings.__file__).parent),  # a patched copy shows here
    }


def speed_probe() -> dict:
    """Milliseconds this machine takes now for two fixed pieces of work on one thread (the
    median of repeats): a 512 x 512 float32 matrix product (vector arithmetic, what inference
    and search spend) and a Python loop (the interpreter, what the services' glue spends).
    Sessions run on different hosts under one CPU name, some twice as fast as others at the
    same bench (docs/performance.md, "The machine"): figures of two runs compare only beside
    their probes and `_cpu_id`."""
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(0).random((512, 512), dtype=np.float32)
    with threadpool_limits(limits=1):
        matmul = timed(lambda: a @ a, min_s=0.2)
    loop = timed(lambda: sum(range(200_000)), min_s=0.2)
    return {"matmul_512_ms": round(pct(matmul, 50) * 1000, 3), "python_loop_ms": round(pct(loop, 50) * 1000, 3)}


def timed(fn: Callable[[], object], min_s: float = 0.3, min_reps: int = 3, max_reps: int = 100_000,
          warmup: int = 1) -> np.ndarray:
    """Seconds per call of fn: at least min_reps calls and min_s seconds, after warm-up calls."""
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < max_reps and (len(times) < min_reps or time.perf_counter() - start < min_s):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return np.asarray(times)


def pct(xs: Sequence[float] | np.ndarray, q: float) -> float:
    return float(np.percentile(np.asarray(xs, dtype=np.float64), q)) if len(xs) else float("nan")


def table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """columns: (key, header, format spec); a missing value prints as '-'."""
    def cell(row: dict, key: str, fmt: str) -> str:
        v = row.get(key)
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return "-"
        return format(v, fmt)

    cells = [[h for _, h, _ in columns]] + [[cell(r, k, f) for k, _, f in columns] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(line, widths)) for line in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_json(path: Path, bench: str, config: dict, results: list[dict], summary: dict, machine_info: dict,
               started: float) -> Path:
    payload = {
        "bench": bench,
        "schema": SCHEMA,
        "command": command_line(),
        "started_at": dt.datetime.fromtimestamp(started, dt.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(time.time() - started, 1),
        "machine": machine_info | {"load_avg_1m_at_end": round(os.getloadavg()[0], 2)},
        "config": config,
        "results": results,
        "summary": summary,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1, default=_jsonable) + "\n", encoding="utf-8")
    print(f"\nwrote {path}")
    return path


def _jsonable(v):
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    if isinstance(v, Path):
        return str(v)
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


def dataset_dir(model: str) -> Path:
    """Real clippings for `model` (a shipped name or a model folder, by its manifest's name):
    data/<name>-test, else data/bench-<name> (synthesised once, small)."""
    from clippings.runtime.manifest import Manifest
    from clippings.runtime.onnx_model import resolve_model

    model = Manifest.load(resolve_model(model)).name
    real = REPO / "data" / DATASETS[model]
    if (real / "records.jsonl").is_file():
        return real
    made = REPO / "data" / f"bench-{model}"
    if not (made / "records.jsonl").is_file():
        from clippings.data.synth.generate import generate

        kind, task, entities = _SYNTH[model]
        print(f"no {real}: synthesising {entities} entities into {made} (once)", file=sys.stderr)
        generate(kind, made, task=task, entities=entities, seed=7, overwrite=True, progress=False)
    return made


def load_records(model: str, n: int) -> list:
    """The first n records of the model's dataset (cycled when it has fewer)."""
    from clippings.data.dataset import load_dataset

    records = load_dataset(dataset_dir(model)).records
    return [records[i % len(records)] for i in range(n)]
