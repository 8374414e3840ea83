"""Linker decisions when every clipping has many reprints: decide_batch time per decision as
the copies of each story grow (a wire story runs in tens of papers; bench.e2e cycles 600
clippings, so by its end each has ~45 copies indexed).

    python -m bench.linker_reprints                  # -> bench/results/linker_reprints.json
    python -m bench.linker_reprints --copies 4 40 80

Per cell: `--stories` random story vectors at the shipped news model's vector length, each
copied --copies times (`--spread`: noise per dimension between copies; 0 = the same vector,
as bench.e2e's cycled clippings), shuffled and decided in batches of 64 from an empty
partition, with the shipped news manifest's decision rule and the linker's FAISS settings.
The figure is the mean time a decision over the second half of the run (from the batch that
crosses it), when each new clipping meets most of its copies.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench.common import add_common_args, machine, results_path, table, write_json
from bench.linker import make_items


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--copies", nargs="+", type=int, default=[4, 40, 80], help="reprints of each story")
    p.add_argument("--stories", type=int, default=300)
    p.add_argument("--spread", type=float, default=0.0, help="noise per dimension between copies (0: identical)")
    p.add_argument("--batch", type=int, default=64, help="decide_batch size (the linker's batch_max_events)")
    add_common_args(p, "linker_reprints")
    args = p.parse_args(argv)
    if args.quick:
        args.copies, args.stories = [2, 8], 20
    args.out = results_path(args, "linker_reprints")
    return args


def cell(copies: int, args, rule, dim: int) -> dict:
    from clippings.services.linker.decide import decide_batch
    from clippings.services.linker.partition import PartitionState

    rng = np.random.default_rng(copies)
    stories = rng.normal(size=(args.stories, dim)).astype(np.float32)
    vectors = np.repeat(stories, copies, axis=0)
    vectors += args.spread * rng.normal(size=vectors.shape).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    items = make_items(vectors[rng.permutation(len(vectors))], f"r{copies}-", rule.model_version)
    state = PartitionState("bench.embedded", 0, dim, "Flat", rule.model_version)
    timed, n = 0.0, 0
    for b in range(0, len(items), args.batch):
        chunk = items[b:b + args.batch]
        start = time.perf_counter()
        outcomes = decide_batch(state, chunk, {}, rule, 0)
        if b + len(chunk) > len(items) // 2:  # the second half, and the batch across its start
            timed, n = timed + time.perf_counter() - start, n + len(chunk)
        assert len(outcomes) == len(chunk)
    entities = len({state.entity_of(it.event.id) for it in items})
    return {"section": "reprints", "copies": copies, "stories": args.stories, "spread": args.spread,
            "decisions_timed": n, "ms_per_decision": 1e3 * timed / n, "entities": entities}


def main(argv: list[str] | None = None) -> int:
    from clippings.runtime.manifest import Manifest
    from clippings.runtime.onnx_model import resolve_model
    from clippings.services.config import LinkerSettings, load_settings
    from clippings.services.linker.index import configure_faiss
    from clippings.services.linker.service import decision_rule

    args, started = parse_args(argv), time.time()
    settings, manifest = load_settings(LinkerSettings), Manifest.load(resolve_model("news"))
    dim = manifest.served_dim
    configure_faiss(settings.faiss_threads, settings.faiss_blas_min_queries, dim)
    rule = decision_rule(settings, manifest)
    rows = [cell(c, args, rule, dim) for c in args.copies]
    print(table(rows, [("copies", "copies", "d"), ("ms_per_decision", "ms a decision", ".3f"),
                       ("entities", "entities", "d")]))
    write_json(args.out, "linker_reprints", {"copies": args.copies, "stories": args.stories, "spread": args.spread,
                                             "batch": args.batch, "model_version": manifest.version, "dim": dim},
               rows, {"ms_per_decision": {r["copies"]: r["ms_per_decision"] for r in rows}}, machine(), started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
