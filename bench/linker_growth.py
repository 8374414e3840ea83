"""Linker bench, grown from empty: one partition's block fed batch by batch through the
service's decide_batch with the service's growth policy (services/linker/growth.py), from 0 to
--size vectors. At each checkpoint: the decision latency of single events (decide_batch of
one clipping, search and add included) and the batches' decisions per second since the last
checkpoint; at the end, the link recall of the final index against exact search on fresh
queries (the share of exact neighbour pairs at or above the threshold that the linker found).

    python -m bench.linker_growth              # -> bench/results/linker_growth.json: 1e6 vectors, growing at the default CLIPPINGS_INDEX_GROW_AT (2e4) (long: see docs/performance.md)
    python -m bench.linker_growth --quick      # 2e4 vectors, growing at 5e3, seconds
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench.common import add_common_args, machine, pct, results_path, table, write_json
from bench.linker import make_items
from bench.linker_data import Corpus, exact_neighbours


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=1_000_000, help="vectors fed from empty (1e6)")
    p.add_argument("--grow-at", type=int, default=None, help="the policy's size (default: the linker's setting)")
    p.add_argument("--threshold", type=float, default=0.85)
    p.add_argument("--batch", type=int, default=64, help="clippings a batch (64)")
    p.add_argument("--single-queries", type=int, default=200, help="single events timed at each checkpoint")
    p.add_argument("--recall-queries", type=int, default=500, help="fresh queries of the final recall check")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dim", type=int, default=None,
                   help="vector length (default: what the shipped news model serves, its manifest's served_dim)")
    add_common_args(p, "linker-growth")
    args = p.parse_args(argv)
    args.out = results_path(args, "linker_growth")
    if args.quick:
        args.size, args.grow_at, args.single_queries, args.recall_queries = 20_000, 5_000, 50, 100
    return args


def checkpoints(size: int, grow_at: int) -> list[int]:
    """Where single events are timed: fixed sizes, and the policy's size and its multiples by 4,
    where the IVF index is rebuilt with twice the lists, so that checkpoints fall while an
    index is being built."""
    builds = [grow_at * 4**k for k in range(12)] if grow_at > 0 else []
    marks = [m for m in (10_000, 100_000, 200_000, 500_000, 1_000_000, *builds) if 0 < m < size] + [size]
    return sorted(set(marks))


def single_events(state, rule, queries: np.ndarray, tag: str) -> np.ndarray:
    """Seconds per decide_batch of one clipping (each is added: the next sees it)."""
    from clippings.services.linker.decide import decide_batch

    times = []
    for item in make_items(queries, tag, "bench"):
        t = time.perf_counter()
        decide_batch(state, [item], {}, rule, now_ms=0)
        times.append(time.perf_counter() - t)
    return np.asarray(times)


def final_recall(block, exact: list[set[int]], queries: np.ndarray, threshold: float) -> dict:
    """Link recall of the block's index against `exact`, brute force over every vector it holds."""
    position = {cid: i for i, cid in enumerate(block.ids)}
    found = block.search(queries, "range", threshold, 32)
    wanted = sum(len(e) for e in exact)
    hit = sum(len(e & {position[c] for c, _ in f}) for e, f in zip(exact, found))
    return {"exact_pairs": wanted, "found_pairs": hit, "link_recall": hit / wanted if wanted else 1.0}


def grow(args, corpus: Corpus, state, rule, grow_at: int) -> tuple[list[dict], np.ndarray]:
    from clippings.services.linker.decide import decide_batch
    from clippings.services.linker.growth import approximate_params

    rows, added, fed, last = [], [], 0, (0, time.perf_counter())
    for mark in checkpoints(args.size, grow_at):
        while fed < mark:
            chunk = corpus.vectors[fed : min(mark, fed + args.batch)]
            decide_batch(state, make_items(chunk, f"v{fed}-", "bench"), {}, rule, now_ms=0)
            added.append(chunk)
            fed += len(chunk)
        block = state.blocks["default"]
        rate = (fed - last[0]) / (time.perf_counter() - last[1])
        singles = corpus.queries(args.single_queries)
        ms = single_events(state, rule, singles, f"s{mark}-") * 1000
        added.append(singles)
        nlist, nprobe = approximate_params(block.index) or (0, 0)
        rows.append({"vectors": len(block), "approximate": block.approximate, "growing": block.growing,
                     "nlist": nlist, "nprobe": nprobe,
                     "link_recall_at_switch": block.link_recall, "batch_decisions_per_s": rate,
                     "decide1_p50_ms": pct(ms, 50), "decide1_p99_ms": pct(ms, 99)})
        print(table(rows[-1:], COLUMNS), flush=True)
        last = (len(block), time.perf_counter())
    return rows, np.concatenate(added)


COLUMNS = [("vectors", "vectors", "d"), ("approximate", "approx", ""), ("growing", "building", ""),
           ("nlist", "nlist", "d"), ("nprobe", "nprobe", "d"),
           ("link_recall_at_switch", "recall@switch", ".4f"), ("batch_decisions_per_s", "batch dec/s", ".0f"),
           ("decide1_p50_ms", "1 event p50 ms", ".2f"), ("decide1_p99_ms", "p99 ms", ".2f")]


def main(argv: list[str] | None = None) -> int:
    from clippings.services.config import LinkerSettings
    from clippings.services.linker.decide import DecisionRule
    from clippings.services.linker.growth import GrowthPolicy, approximate_params
    from clippings.services.linker.index import configure_faiss
    from clippings.services.linker.partition import PartitionState
    from clippings.services.ops.threads import numpy_blas_in_caller
    from clippings.runtime.manifest import Manifest
    from clippings.runtime.onnx_model import resolve_model

    args, started, info = parse_args(argv), time.time(), machine()
    dim = args.dim or Manifest.load(resolve_model("news")).served_dim
    s = LinkerSettings()
    grow_at = s.index_grow_at if args.grow_at is None else args.grow_at
    configure_faiss(s.faiss_threads, s.faiss_blas_min_queries, dim)
    numpy_blas_in_caller()  # as the linker service does (services/cli.py)
    policy = GrowthPolicy(grow_at, args.threshold, s.index_recall_target, s.index_nprobe)
    state = PartitionState("clippings.embedded", 0, dim, s.index_spec, "bench", growth=policy)
    rule = DecisionRule(args.threshold, "range", s.knn_k, s.neighbours_in_event, "bench", s.neighbours_below)
    corpus = Corpus(args.size, np.random.default_rng(args.seed), dim=dim)
    rows, added = grow(args, corpus, state, rule, grow_at)
    block, queries = state.blocks["default"], corpus.queries(args.recall_queries)
    _, exact = exact_neighbours(added, queries, 1, args.threshold)  # once: the vectors do not change below
    recall = final_recall(block, exact, queries, args.threshold)
    print(f"\nfinal index: {len(added)} vectors, link recall {recall['link_recall']:.4f} "
          f"({recall['found_pairs']} of {recall['exact_pairs']} exact pairs)")
    # A build still running at the end (behind the decisions, it falls behind on a busy machine)
    # is waited for and measured too: what the block serves once it catches up.
    block.finish_growth()
    nlist, nprobe = approximate_params(block.index) or (0, 0)
    after = {"approximate": block.approximate, "nlist": nlist, "nprobe": nprobe,
             **final_recall(block, exact, queries, args.threshold)}
    print(f"after the builds in progress: nlist {nlist}, nprobe {nprobe}, link recall {after['link_recall']:.4f}")
    summary = {"at_largest": rows[-1], "final": recall, "after_growth": after,
               "meets_10ms_p99": rows[-1]["decide1_p99_ms"] <= 10.0, "meets_recall_0_99": recall["link_recall"] >= 0.99}
    config = vars(args) | {"dim": dim, "grow_at": grow_at, "recall_target": policy.recall_target, "nprobe_start": policy.nprobe,
                           "index_spec": s.index_spec, "faiss_threads": s.faiss_threads}
    write_json(args.out, "linker_growth", config, rows, summary, info, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
