"""Linker bench: decisions/s and per-event latency against index size (1e3..1e6 vectors), for a
flat, an IVF and an HNSW index, against a NumPy brute-force baseline; the recall of the
approximate indexes against exact search; the memory per vector; and one service batch with
Redis (parse, read, decide, write).

    python -m bench.linker                              # CPU, 1e3..1e6
    python -m bench.linker --gpu --indexes flat ivf     # FAISS GPU indexes (bench/gpu.sh)

The code measured is the service's: BlockIndex.search (one FAISS call per batch) and
decide_batch (search, single-linkage decision, index add) over a PartitionState holding the
index, and RedisState for the Redis round trips (the write serialises the link events).

Vectors are synthetic (the index size matters, not the model): unit vectors in clusters like
the embeddings of noisy duplicates (members of an entity at cosine 0.82..0.98), the entities
grouped in topics (same-topic entities at cosine about 0.36), so an approximate index meets
neighbourhoods that are not uniform. Half of the queries are new duplicates of indexed
entities, half are new entities.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import uuid

import numpy as np

from bench.common import add_common_args, machine, pct, results_path, table, write_json
from bench.linker_data import Corpus, exact_neighbours
from bench.linker_indexes import GpuContext, build_index, bytes_per_vector



def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.linker", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="+", type=int, default=[1_000, 10_000, 100_000, 1_000_000])
    p.add_argument("--indexes", nargs="+", choices=["flat", "ivf", "hnsw"], default=["flat", "ivf", "hnsw"])
    p.add_argument("--threshold", type=float, help="cosine (default: the default model's dedup threshold)")
    p.add_argument("--knn-k", type=int, default=32, help="neighbours searched by knn mode (the service's knn_k)")
    p.add_argument("--batch", type=int, default=64, help="events per service batch (batch_max_events)")
    p.add_argument("--batches", type=int, default=16, help="timed decide_batch calls per cell")
    p.add_argument("--single-queries", type=int, default=200, help="one-event searches/decisions per cell")
    p.add_argument("--cell-seconds", type=float, default=6.0, help="cap on the one-event loops of a cell")
    p.add_argument("--threads", type=int, default=1, help="FAISS threads while searching (the linker's faiss_threads)")
    p.add_argument("--build-threads", type=int, default=2, help="FAISS threads while building")
    p.add_argument("--ivf-nlist", type=int, help="IVF lists (default: about sqrt(size), at least 16)")
    p.add_argument("--ivf-nprobe", type=int, default=16)
    p.add_argument("--ivf-train", type=int, default=50_000, help="training subsample for IVF")
    p.add_argument("--hnsw-m", type=int, default=32)
    p.add_argument("--hnsw-ef-construction", type=int, default=40)
    p.add_argument("--hnsw-ef-search", type=int, default=64)
    p.add_argument("--hnsw-ef-sweep", nargs="*", type=int, default=[], help="also measure recall at these efSearch")
    p.add_argument("--ivf-nprobe-sweep", nargs="*", type=int, default=[], help="also measure recall at these nprobe")
    p.add_argument("--faiss-blas-threshold", type=int,
                   help="set faiss.cvar.distance_compute_blas_threshold first (the proposed linker setting; "
                        "default: FAISS's own)")
    p.add_argument("--gpu", action="store_true", help="FAISS GPU indexes (flat, ivf; knn only: no range search on GPU)")
    p.add_argument("--redis", default="redis://127.0.0.1:6379/12", help="for the service-batch section")
    p.add_argument("--pipeline-size", type=int, default=100_000, help="index size of the service-batch section (0: skip)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dim", type=int, default=None,
                   help="vector length (default: what the shipped news model serves, its manifest's served_dim)")
    add_common_args(p, "linker")
    args = p.parse_args(argv)
    args.out = results_path(args, "linker")
    if args.quick:
        args.sizes, args.batches, args.single_queries, args.cell_seconds = [1_000], 2, 10, 1.0
        args.pipeline_size, args.ivf_train = 1_000, 1_000
    if args.gpu:
        args.indexes = [i for i in args.indexes if i != "hnsw"]  # FAISS has no GPU HNSW
    return args


# -- synthetic vectors --------------------------------------------------------------------------------
# -- the measurements -----------------------------------------------------------------------------------
def capped_loop(fn, items, seconds: float, min_items: int = 20) -> np.ndarray:
    """Time fn(item) per item, stopping after `seconds` once min_items are done."""
    times, start = [], time.perf_counter()
    for it in items:
        t = time.perf_counter()
        fn(it)
        times.append(time.perf_counter() - t)
        if len(times) >= min_items and time.perf_counter() - start > seconds:
            break
    return np.asarray(times)


def make_items(vectors: np.ndarray, prefix: str, model_version: str):
    from clippings.services.linker.decide import Item
    from clippings.services.schemas import EmbeddedClipping, KafkaPosition

    now = int(time.time() * 1000)
    items = []
    for i, v in enumerate(vectors):
        pos = KafkaPosition(topic="bench.embedded", partition=0, offset=i)
        event = EmbeddedClipping(id=f"{prefix}{i}", block="default", model="bench", model_version=model_version,
                                 dim=vectors.shape[1], vector=EmbeddedClipping.pack(v), has_image=True, has_text=True,
                                 origin=pos, raw_ts_ms=now, embedded_ts_ms=now)
        items.append(Item(pos, event, event.array()))
    return items


def base_state(corpus: Corpus, ids: list[str], model_version: str):
    """A partition that has decided every indexed vector: one entity per synthetic entity."""
    from clippings.services.linker.partition import PartitionState

    state = PartitionState("bench.embedded", 0, corpus.dim, "Flat", model_version)
    for e in range(corpus.n_entities):
        state.new_entity(f"e{e}", e)
    for cid, e in zip(ids, corpus.entity):
        state.clip_entity[cid] = f"e{e}"
    return state


def set_search_param(block, kind: str, value: int) -> None:
    import faiss

    if kind == "hnsw":
        faiss.downcast_index(block.index.index).hnsw.efSearch = value
    elif isinstance(block.index, faiss.IndexIDMap):
        faiss.extract_index_ivf(block.index).nprobe = value
    else:
        faiss.GpuParameterSpace().set_index_parameter(block.index, "nprobe", value)


def search_quality(args, block, mode: str, rule, ids: list[str], q_single: np.ndarray,
                   exact: tuple[np.ndarray, list[set[int]]]) -> dict:
    """Recall against exact search and the one-event search latency."""
    top_exact, links_exact = exact
    found_top = block.index.search(q_single, 10)[1]
    out = {"recall_at_10": float(np.mean([len(set(f[f >= 0]) & set(t[:10])) / 10
                                          for f, t in zip(found_top, top_exact)]))}
    hits = block.search(q_single, mode, rule.threshold, rule.knn_k)
    pos = {cid: i for i, cid in enumerate(ids)}
    found_links = [{pos[c] for c, _ in h} for h in hits]
    total = sum(len(x) for x in links_exact)
    out["link_recall"] = (sum(len(f & e) for f, e in zip(found_links, links_exact)) / total) if total else 1.0
    out["same_links"] = float(np.mean([f == e for f, e in zip(found_links, links_exact)]))
    out["queries_with_links"] = float(np.mean([bool(e) for e in links_exact]))
    t = capped_loop(lambda v: block.search(v[None], mode, rule.threshold, rule.knn_k), q_single, args.cell_seconds)
    return out | {"search1_p50_ms": pct(t, 50) * 1e3, "search1_p99_ms": pct(t, 99) * 1e3, "search1_n": len(t)}


def index_cell(args, size: int, kind: str, corpus: Corpus, ids: list[str], queries: np.ndarray,
               exact: tuple[np.ndarray, list[set[int]]], state, rule_args: dict, gpu) -> list[dict]:
    """-> the index row, then any search-parameter sweep rows (on the index as built)."""
    from clippings.services.linker.decide import DecisionRule, decide_batch

    block, spec, mode, build_s = build_index(kind, corpus.vectors, ids, args, gpu)
    rule = DecisionRule(search=mode, **rule_args)
    k = rule.knn_k
    row = {"section": "index", "size": size, "index": kind, "spec": spec, "mode": mode, "gpu": bool(gpu),
           "build_s": build_s, "bytes_per_vector": bytes_per_vector(block)}
    n_single = args.single_queries
    q_single, q_batch = queries[:n_single], queries[n_single:]

    # Recall and one-event search on the index as built (before decisions add to it).
    row |= search_quality(args, block, mode, rule, ids, q_single, exact)
    sweep = []
    for value in (args.hnsw_ef_sweep if kind == "hnsw" else args.ivf_nprobe_sweep if kind == "ivf" else []):
        set_search_param(block, kind, value)
        sweep.append({"section": "ann_sweep", "size": size, "index": kind, "spec": spec,
                      "param": "efSearch" if kind == "hnsw" else "nprobe", "value": value}
                     | search_quality(args, block, mode, rule, ids, q_single, exact))
    if sweep:
        set_search_param(block, kind, args.hnsw_ef_search if kind == "hnsw" else args.ivf_nprobe)

    state.blocks = {"default": block}
    singles = make_items(q_single, f"{kind}-{size}-s", rule.model_version)
    t = capped_loop(lambda it: decide_batch(state, [it], {}, rule, 0), singles, args.cell_seconds)
    row |= {"decide1_p50_ms": pct(t, 50) * 1e3, "decide1_p99_ms": pct(t, 99) * 1e3, "decide1_n": len(t),
            "decide1_per_s": 1.0 / float(np.mean(t))}

    batched = make_items(q_batch, f"{kind}-{size}-b", rule.model_version)
    bt = []
    for b in range(0, len(batched), args.batch):
        chunk = batched[b:b + args.batch]
        start = time.perf_counter()
        decide_batch(state, chunk, {}, rule, 0)
        bt.append(time.perf_counter() - start)
    row |= {"batch": args.batch, "batch_p50_ms": pct(bt, 50) * 1e3, "batch_p99_ms": pct(bt, 99) * 1e3,
            "batches": len(bt), "decisions_per_s": len(batched) / float(np.sum(bt))}
    state.blocks = {}
    del block
    gc.collect()
    return [row] + sweep


def numpy_cell(size: int, x: np.ndarray, queries: np.ndarray, threshold: float, args) -> dict:
    """The baseline: brute-force inner products in NumPy, with the same ">= threshold" cut and sort."""
    cut = np.float32(threshold)

    def one(q: np.ndarray):
        sims = x @ q  # (N,)
        hit = np.flatnonzero(sims >= cut)
        return hit[np.argsort(-sims[hit], kind="stable")]

    def many(qs: np.ndarray):
        sims = qs @ x.T  # (B, N)
        return [np.flatnonzero(row >= cut) for row in sims]

    t = capped_loop(one, queries[:args.single_queries], args.cell_seconds)
    bt = capped_loop(many, [queries[b:b + args.batch] for b in range(0, len(queries), args.batch)],
                     args.cell_seconds, min_items=3)
    return {"section": "index", "size": size, "index": "numpy", "spec": "brute force", "mode": "range",
            "gpu": False, "bytes_per_vector": float(x.itemsize * x.shape[1]),
            "search1_p50_ms": pct(t, 50) * 1e3, "search1_p99_ms": pct(t, 99) * 1e3, "search1_n": len(t),
            "batch": args.batch, "batch_p50_ms": pct(bt, 50) * 1e3, "batch_p99_ms": pct(bt, 99) * 1e3,
            "batches": len(bt), "decisions_per_s": args.batch / float(np.mean(bt)),
            "recall_at_10": 1.0, "link_recall": 1.0, "same_links": 1.0}


def state_memory(size: int, dim: int) -> dict:
    """Bytes per clipping of the linker's Python state beside the index (ids, entity maps), by tracemalloc."""
    import tracemalloc

    from clippings.services.linker.partition import PartitionState

    entities = max(1, int(size / 2.4))
    tracemalloc.start()
    ids = [f"r{i:09d}-bench" for i in range(size)]  # the index's id list, ids of a realistic length
    state = PartitionState("bench.embedded", 0, dim, "Flat", "v")
    for e in range(entities):
        state.new_entity(f"e-{ids[e]}", e)
    for i, cid in enumerate(ids):
        state.clip_entity[cid] = f"e-{ids[i % entities]}"
    used = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del state, ids
    gc.collect()
    return {"section": "state_memory", "size": size, "bytes_per_clipping": used / size}


# -- one service batch with Redis ------------------------------------------------------------------------
def pipeline_section(args, threshold: float, model_version: str) -> list[dict]:
    from clippings.services.linker.decide import DecisionRule, decide_batch
    from clippings.services.config import LinkerSettings
    from clippings.services.schemas import EmbeddedClipping
    from clippings.services.linker.store import RedisState, redis_client

    client = redis_client(args.redis, socket_timeout_s=5)
    client.ping()  # a missing Redis fails here, loudly
    redis = RedisState(client, f"bench-{uuid.uuid4().hex[:10]}")
    rng = np.random.default_rng(args.seed + 1)
    corpus = Corpus(args.pipeline_size, rng, dim=args.dim)
    ids = [f"c{i}" for i in range(args.pipeline_size)]
    state = base_state(corpus, ids, model_version)
    block, spec, mode, _ = build_index("flat", corpus.vectors, ids, args, None)
    state.blocks = {"default": block}
    rule = DecisionRule(threshold, mode, args.knn_k, 5, model_version,
                        LinkerSettings.model_fields["neighbours_below"].default)
    items = make_items(corpus.queries(args.batch * (args.batches + 1)), "p", model_version)
    payloads = [it.event.to_bytes() for it in items]
    steps: dict[str, list[float]] = {k: [] for k in ("parse", "redis_read", "decide", "redis_write", "total")}
    try:
        for b in range(0, len(items), args.batch):
            raw = payloads[b:b + args.batch]
            t0 = time.perf_counter()
            events = [EmbeddedClipping.model_validate_json(v) for v in raw]  # what _valid_item parses
            t1 = time.perf_counter()
            recorded = redis.decisions([e.id for e in events])
            t2 = time.perf_counter()
            outcomes = decide_batch(state, items[b:b + args.batch], recorded, rule, int(time.time() * 1000))
            t3 = time.perf_counter()
            redis.record(outcomes, {0: b + args.batch})
            t4 = time.perf_counter()
            if b:  # the first batch warms up
                for k, v in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0)):
                    steps[k].append(v)
    finally:
        redis.delete_all()
    mean_total = float(np.mean(steps["total"]))
    row = {"section": "pipeline", "size": args.pipeline_size, "index": "flat", "mode": mode, "batch": args.batch,
           "batches": len(steps["total"]), "batch_p50_ms": pct(steps["total"], 50) * 1e3,
           "batch_p99_ms": pct(steps["total"], 99) * 1e3, "decisions_per_s": args.batch / mean_total}
    for k in ("parse", "redis_read", "decide", "redis_write"):
        row[f"{k}_ms"] = float(np.mean(steps[k])) * 1e3
        row[f"{k}_share"] = float(np.mean(steps[k])) / mean_total
    return [row]


def summarise(rows: list[dict]) -> dict:
    """The Done-means figure: at the largest size, which index answers within 10 ms p99 per event."""
    idx = [r for r in rows if r["section"] == "index"]
    if not idx:
        return {}
    largest = max(r["size"] for r in idx)
    out: dict = {"largest_size": largest, "p99_target_ms": 10.0, "at_largest": {}}
    for r in idx:
        if r["size"] == largest:
            out["at_largest"][r["index"]] = {
                "search1_p99_ms": r.get("search1_p99_ms"), "decide1_p99_ms": r.get("decide1_p99_ms"),
                "batch_p99_ms": r.get("batch_p99_ms"), "decisions_per_s": r.get("decisions_per_s"),
                "link_recall": r.get("link_recall"),
                "meets_10ms_p99_one_event": bool((r.get("decide1_p99_ms") or r.get("search1_p99_ms") or 1e9) <= 10.0),
            }
    return out


def size_rows(args, size: int, threshold: float, model_version: str, rule_args: dict, gpu) -> list[dict]:
    """The NumPy baseline and every index at one index size."""
    rows: list[dict] = []
    rng = np.random.default_rng(args.seed)
    t = time.perf_counter()
    corpus = Corpus(size, rng, dim=args.dim)
    ids = [f"c{i}" for i in range(size)]
    queries = corpus.queries(args.single_queries + args.batch * args.batches)
    exact = exact_neighbours(corpus.vectors, queries[:args.single_queries], 10, threshold)
    state = base_state(corpus, ids, model_version)
    print(f"size {size}: data in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    if not gpu:
        rows.append(numpy_cell(size, corpus.vectors, queries, threshold, args))
    for kind in args.indexes:
        cell = index_cell(args, size, kind, corpus, ids, queries, exact, state, rule_args, gpu)
        rows += cell
        row = cell[0]
        print(f"  {kind:5s} build {row['build_s']:.1f}s  one event p99 {row['decide1_p99_ms']:.2f} ms  "
              f"{row['decisions_per_s']:.0f} decisions/s  link recall {row['link_recall']:.3f}", file=sys.stderr)
    del corpus, state, ids
    gc.collect()
    return rows


def print_tables(rows: list[dict]) -> None:
    print("\nindex sweep (one event: search alone and decide_batch of 1; batch: decide_batch of --batch)")
    print(table([r for r in rows if r["section"] == "index"], [
        ("size", "vectors", "d"), ("index", "index", "s"), ("mode", "mode", "s"), ("build_s", "build s", ".1f"),
        ("bytes_per_vector", "B/vec", ".0f"), ("search1_p50_ms", "search p50", ".3f"),
        ("search1_p99_ms", "search p99", ".3f"), ("decide1_p50_ms", "1-event p50", ".3f"),
        ("decide1_p99_ms", "1-event p99", ".3f"), ("batch_p50_ms", "batch p50", ".2f"),
        ("batch_p99_ms", "batch p99", ".2f"), ("decisions_per_s", "decisions/s", ".0f"),
        ("recall_at_10", "R@10", ".3f"), ("link_recall", "link rec", ".3f"), ("same_links", "same links", ".3f")]))
    sweep = [r for r in rows if r["section"] == "ann_sweep"]
    if sweep:
        print("\napproximate-index search parameters (one-event search; recall against exact)")
        print(table(sweep, [("size", "vectors", "d"), ("index", "index", "s"), ("param", "param", "s"),
                            ("value", "value", "d"), ("search1_p50_ms", "search p50", ".3f"),
                            ("search1_p99_ms", "search p99", ".3f"), ("recall_at_10", "R@10", ".3f"),
                            ("link_recall", "link rec", ".3f"), ("same_links", "same links", ".3f")]))
    pipe = [r for r in rows if r["section"] == "pipeline"]
    if pipe:
        print("\nservice batch with Redis: mean ms per batch in each step")
        print(table(pipe, [("size", "vectors", "d"), ("batch", "batch", "d"), ("parse_ms", "parse", ".2f"),
                           ("redis_read_ms", "redis read", ".2f"), ("decide_ms", "decide", ".2f"),
                           ("redis_write_ms", "redis write", ".2f"), ("batch_p50_ms", "total p50", ".2f"),
                           ("batch_p99_ms", "total p99", ".2f"), ("decisions_per_s", "decisions/s", ".0f")]))
    mem = [r for r in rows if r["section"] == "state_memory"]
    for r in mem:
        print(f"\nPython state beside the index: {r['bytes_per_clipping']:.0f} bytes per clipping at {r['size']}")


def main(argv: list[str] | None = None) -> int:
    started = time.time()
    args = parse_args(argv)
    import faiss

    from clippings.runtime.manifest import Manifest
    from clippings.runtime.onnx_model import resolve_model
    from clippings.services.config import LinkerSettings
    from clippings.services.ops.threads import numpy_blas_in_caller

    machine_info = machine()
    gpu = GpuContext() if args.gpu else None
    manifest = Manifest.load(resolve_model(LinkerSettings.model_fields["model"].default))
    threshold = args.threshold if args.threshold is not None else manifest.thresholds["dedup"]
    args.dim = args.dim or manifest.served_dim
    # The shipped near-miss search (CLIPPINGS_NEIGHBOURS_BELOW) is part of every decision's cost.
    near = LinkerSettings.model_fields["neighbours_below"].default
    rule_args = dict(threshold=threshold, knn_k=args.knn_k, neighbours_in_event=5, model_version=manifest.version,
                     near=near)
    faiss.omp_set_num_threads(args.threads)
    numpy_blas_in_caller()  # as the linker service does (services/cli.py)
    if args.faiss_blas_threshold is not None:
        faiss.cvar.distance_compute_blas_threshold = args.faiss_blas_threshold
    args.faiss_blas_threshold = faiss.cvar.distance_compute_blas_threshold  # recorded: the one in effect
    rows: list[dict] = []
    for size in args.sizes:
        rows += size_rows(args, size, threshold, manifest.version, rule_args, gpu)
    rows.append(state_memory(min(max(args.sizes), 1_000_000), args.dim))
    if args.pipeline_size and not gpu:
        rows += pipeline_section(args, threshold, manifest.version)

    print_tables(rows)
    summary = summarise(rows) | {"threshold": threshold}
    print("\nsummary:", summary)
    config = {k: (str(v) if hasattr(v, "__fspath__") else v) for k, v in vars(args).items()}
    write_json(args.out, "linker", config, rows, summary, machine_info, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
