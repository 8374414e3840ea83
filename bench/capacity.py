"""Capacity model: how many embedder and linker replicas a feed of N clippings/s and an index of
M clippings need, computed from the measured figures in bench/results/*.json.

    python -m bench.capacity                           # the standard table (docs/performance.md)
    python -m bench.capacity --feed 500 --index 2e7    # one case

Embedder: a replica of k cores embeds E(k) clippings/s, the service batch path measured by
bench.embedder (section pipeline: parse, decode, preprocess, inference, serialise, produce).
Replicas = ceil(N / (utilisation x E(k))).

Linker: one partition is one sequential state machine, so its rate at m vectors per partition
is 1 / t(m), with t(m) = decide_batch time per decision at that index size (bench.linker,
batch rows, interpolated log-log between the measured sizes, extrapolated past the largest)
plus the per-decision cost of parsing and the Redis round trips (bench.linker, pipeline row).
Partitions P: the fewest with N / P <= utilisation / t(M / P). A replica is one core: it can
hold several partitions while their load fits; replicas = ceil(N x t(M / P) / utilisation).
Memory per replica: its share of M x (index bytes per vector + Python state bytes per clipping).
GPU rows appear when bench/gpu.sh has written embedder-gpu.json / linker-gpu.json.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from bench.common import RESULTS_DIR, table, write_json

FEEDS = (50, 200, 1_000, 5_000)
INDEX_SIZES = (100_000, 1_000_000, 10_000_000)


def load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def embedder_rates(data: dict, model: str) -> dict[str, float]:
    """Replica kind -> clippings/s of the service batch path, the best image-pool size per thread count."""
    rows = [r for r in data["results"] if r["section"] == "pipeline" and r["model"] == model]
    kind = "gpu" if data["config"].get("provider") == "cuda" else "cpu"
    out: dict[str, float] = {}
    for r in rows:
        key = f"{kind}, {r['threads']} thread{'s' if r['threads'] > 1 else ''}"
        out[key] = max(out.get(key, 0.0), r["clippings_per_s"])
    return out


class LinkerCost:
    """Seconds per decision against the vectors per partition, for one index type."""

    def __init__(self, index: str, sizes: list[float], seconds: list[float], bytes_per_vector: float, base: dict):
        self.index = index
        self.sizes, self.seconds = np.array(sizes, float), np.array(seconds, float)
        self.bytes_per_vector = bytes_per_vector
        pipe = [r for r in base["results"] if r["section"] == "pipeline"]
        # Parse and the two Redis round trips, per decision; decide_batch is in self.seconds already.
        self.overhead = ((pipe[0]["parse_ms"] + pipe[0]["redis_read_ms"] + pipe[0]["redis_write_ms"])
                         / 1e3 / pipe[0]["batch"]) if pipe else 0.0
        mem = [r for r in base["results"] if r["section"] == "state_memory"]
        self.state_bytes = mem[0]["bytes_per_clipping"] if mem else 0.0

    @classmethod
    def measured(cls, data: dict, index: str) -> "LinkerCost":
        """One index type of bench.linker's figures."""
        rows = sorted((r for r in data["results"] if r["section"] == "index" and r["index"] == index),
                      key=lambda r: r["size"])
        if not rows:
            raise KeyError(index)
        return cls(index, [r["size"] for r in rows], [1.0 / r["decisions_per_s"] for r in rows],
                   rows[-1]["bytes_per_vector"] or 0.0, data)

    @classmethod
    def grown(cls, growth: dict, base: dict) -> "LinkerCost":
        """The shipped default: a flat block (bench.linker's flat rows, the shipped BLAS setting)
        up to index_grow_at, then the IVF index bench.linker_growth measured growing from empty
        (not the sizes while it is being built: they last one build, not the partition's life)."""
        grow_at = growth["config"]["grow_at"]
        flat = sorted((r for r in base["results"] if r["section"] == "index" and r["index"] == "flat"
                       and r["size"] <= grow_at), key=lambda r: r["size"])
        ivf = [r for r in growth["results"] if r["approximate"] and not r["growing"]]
        return cls(f"default (flat, IVF from {grow_at:,})", [r["size"] for r in flat] + [r["vectors"] for r in ivf],
                   [1.0 / r["decisions_per_s"] for r in flat] + [1.0 / r["batch_decisions_per_s"] for r in ivf],
                   flat[-1]["bytes_per_vector"] if flat else 0.0, base)

    def per_decision(self, m: float) -> tuple[float, bool]:
        """-> (seconds, extrapolated)."""
        x, y = np.log(self.sizes), np.log(self.seconds)
        lm = math.log(max(m, 1.0))
        if len(x) == 1:
            return float(self.seconds[0]) + self.overhead, m > self.sizes[0]
        if lm <= x[-1]:
            return float(np.exp(np.interp(lm, x, y))) + self.overhead, False
        slope = (y[-1] - y[-2]) / (x[-1] - x[-2])
        return float(np.exp(y[-1] + slope * (lm - x[-1]))) + self.overhead, True


def linker_plan(cost: LinkerCost, feed: float, index: float, utilisation: float) -> dict:
    partitions = 1
    while True:
        t, extrapolated = cost.per_decision(index / partitions)
        if feed / partitions <= utilisation / t or partitions >= 4096:
            break
        partitions += 1
    replicas = max(1, math.ceil(feed * t / utilisation))
    replicas = min(replicas, partitions)  # a partition is never split between replicas
    per_replica = index / replicas * (cost.bytes_per_vector + cost.state_bytes)
    return {"linker_index": cost.index, "linker_partitions": partitions, "linker_replicas": replicas,
            "linker_ms_per_decision": t * 1e3, "linker_gib_per_replica": per_replica / 2**30,
            "linker_extrapolated": extrapolated}


def machine_of_figures(data: dict) -> dict:
    """The capacity rows hold for the machine the figures were measured on."""
    return data["machine"]


def main(argv: list[str] | None = None) -> int:
    started = time.time()
    p = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--feed", type=float, nargs="+", default=list(FEEDS), help="clippings/s")
    p.add_argument("--index", type=float, nargs="+", default=list(INDEX_SIZES), help="clippings in the index")
    p.add_argument("--model", default="news")
    p.add_argument("--utilisation", type=float, default=0.7,
                   help="planned load per replica: headroom below the point where latency climbs")
    p.add_argument("--results", type=Path, default=RESULTS_DIR)
    p.add_argument("--embedder", default="embedder.json",
                   help="bench.embedder's figures in --results, with its pipeline section (default: %(default)s)")
    p.add_argument("--linker", default="linker-flat-blas.json",
                   help="linker figures in --results, measured with the shipped BLAS setting (default: %(default)s)")
    p.add_argument("--growth", default="linker_growth.json",
                   help="bench.linker_growth's figures in --results: the default index growing from empty")
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "capacity.json")
    args = p.parse_args(argv)

    emb = {}
    for name in (args.embedder, "embedder-gpu.json"):
        data = load(args.results / name)
        if data:
            emb |= embedder_rates(data, args.model)
    lnk = load(args.results / args.linker)
    if not emb or lnk is None:
        print(f"need {args.results}/{args.embedder} and {args.linker} (run python -m bench.embedder, bench.linker)",
              file=sys.stderr)
        return 2
    costs = []
    for index in ("flat", "hnsw"):
        try:
            costs.append(LinkerCost.measured(lnk, index))
        except KeyError:
            pass
    growth = load(args.results / args.growth)
    if growth is not None:
        costs.append(LinkerCost.grown(growth, lnk))
    emb_rows = [{"feed_per_s": feed, "embedder": kind, "embedder_per_s_per_replica": rate,
                 "embedder_replicas": max(1, math.ceil(feed / (args.utilisation * rate)))}
                for feed in args.feed for kind, rate in sorted(emb.items())]
    lnk_rows = [{"feed_per_s": feed, "index_clippings": int(size)} | linker_plan(cost, feed, size, args.utilisation)
                for feed in args.feed for size in args.index for cost in costs]
    for r in lnk_rows:
        r["linker_ms"] = f"{r['linker_ms_per_decision']:.3f}{'*' if r['linker_extrapolated'] else ''}"
    print(f"capacity at {args.utilisation:.0%} planned utilisation, model {args.model}\n\nembedder replicas")
    print(table(emb_rows, [("feed_per_s", "feed/s", ".0f"), ("embedder", "replica", "s"),
                           ("embedder_per_s_per_replica", "clippings/s each", ".0f"),
                           ("embedder_replicas", "replicas", "d")]))
    print("\nlinker (1 core per replica; * = extrapolated past the largest measured index)")
    print(table(lnk_rows, [("feed_per_s", "feed/s", ".0f"), ("index_clippings", "index", ",d"),
                           ("linker_index", "index type", "s"), ("linker_ms", "ms/decision", "s"),
                           ("linker_partitions", "partitions", "d"), ("linker_replicas", "replicas", "d"),
                           ("linker_gib_per_replica", "GiB/replica", ".2f")]))
    rows = emb_rows + lnk_rows
    write_json(args.out, "capacity", {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
               rows, {"embedder_rates": emb, "linker_from": lnk["command"]}, machine_of_figures(lnk), started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
