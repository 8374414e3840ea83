"""Selects the demo's sample feed (clippings/assets/sample_feed) from a pool of the generator's
news clippings: clear-cut wire-service reprints only, as judged by a model's embeddings.

    clippings synth news POOL --task dedup --entities 80 --seed 4
    python scripts/make_sample_feed.py POOL --model news --out clippings/assets/sample_feed

The feed shows the mechanics of the stream, not the model's error rate, so a story is kept
only when each pair of its reprints has cosine >= --within (every pair, not a chain: the
linker decides in arrival order, and a reprint that reaches its story only through one that
has not arrived yet is flagged new) and each of them has cosine < --across to every
other story's reprints; by default 0.08 above and 0.02 below the model's dedup cut, in the
vectors the embedder serves. Stories are taken in pool order while they fit in --records
clippings (one that would overflow is passed over), then
shuffled with random.Random(0) so that duplicates do not arrive side by side. A retrained
model needs the selection redone: it decides what "clear-cut" means.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from clippings.data.dataset import load_dataset, prepare_output_dir
from clippings.errors import ClippingsError
from clippings.evaluation.evaluate import towers
from clippings.runtime.onnx_model import OnnxEmbedder

REPRINTS = ("wire", "truncated")  # meta.jsonl `variant`: the same photo and caption printed again


def weakest_pair(sim: np.ndarray) -> float:
    """The smallest similarity between two different records of a group; 1 for one record.
    A story whose every pair reaches the cut is flagged right in any arrival order."""
    if len(sim) < 2:
        return 1.0
    return float(sim[~np.eye(len(sim), dtype=bool)].min())


def clear_cut_stories(entities: list[str], vectors: np.ndarray, within: float, across: float) -> list[str]:
    """Stories, in first-seen order, whose reprints pass both cuts (see the module doc)."""
    members: dict[str, list[int]] = defaultdict(list)
    for i, e in enumerate(entities):
        members[e].append(i)
    sim = vectors @ vectors.T
    ent = np.asarray(entities, dtype=object)
    kept = []
    for e, idx in members.items():
        others = np.flatnonzero(ent != e)
        if others.size and sim[np.ix_(idx, others)].max() >= across:
            continue
        if weakest_pair(sim[np.ix_(idx, idx)]) >= within:
            kept.append(e)
    return kept


def describe(vectors: np.ndarray, entities: list[str]) -> str:
    """The selection's margins: its weakest within-story link and strongest cross-story cosine."""
    ent = np.asarray(entities, dtype=object)
    sim = vectors @ vectors.T
    other = ent[:, None] != ent[None, :]
    weakest = min(weakest_pair(sim[np.ix_(m, m)]) for m in (np.flatnonzero(ent == e) for e in set(entities)))
    stories = len(set(entities))
    return (f"{len(entities)} clippings, {stories} stories, {len(entities) - stories} duplicates; weakest "
            f"within-story pair {weakest:.3f}, strongest cross-story similarity {sim[other].max():.3f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("pool", type=Path, help="a `clippings synth news --task dedup` folder")
    p.add_argument("--model", default="news", help="shipped model name or exported model folder")
    p.add_argument("--image-weight", type=float, default=None, help="default: the manifest's")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--records", type=int, default=44)
    p.add_argument("--within", type=float, default=None, help="default: the model's dedup cut + 0.08")
    p.add_argument("--across", type=float, default=None, help="default: the model's dedup cut - 0.02")
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)

    ds = load_dataset(args.pool)
    meta = {m["id"]: m for m in map(json.loads, (args.pool / "meta.jsonl").read_text().splitlines())}
    records = [r for r in ds.records if meta.get(r.id, {}).get("variant") in REPRINTS]
    if not records:
        sys.exit(f"{args.pool}: no wire or truncated reprints in meta.jsonl")
    emb = OnnxEmbedder(args.model)
    w = emb.image_weight if args.image_weight is None else args.image_weight
    vectors = emb.served(*towers(emb, records), [r.text or "" for r in records], image_weight=w)
    entities = [r.entity for r in records]
    cut = emb.manifest.thresholds["dedup"]
    within = round(cut + 0.08, 4) if args.within is None else args.within
    across = round(cut - 0.02, 4) if args.across is None else args.across

    chosen: list[str] = []
    for story in clear_cut_stories(entities, vectors, within, across):
        size = entities.count(story)
        if len(chosen) + size <= args.records:  # a story too big to fit is passed over, not cut
            chosen += [r.id for r in records if r.entity == story]
    if len(chosen) < args.records:
        print(f"only {len(chosen)} clippings pass the cuts (asked for {args.records})", file=sys.stderr)
    random.Random(0).shuffle(chosen)

    try:
        out = prepare_output_dir(args.out, ("records.jsonl", "meta.jsonl", "images"), args.overwrite)
    except ClippingsError as exc:
        sys.exit(str(exc))
    by_id = {r.id: r for r in records}
    raw = {json.loads(line)["id"]: line for line in (args.pool / "records.jsonl").read_text().splitlines()}
    with open(out / "records.jsonl", "w") as rec, open(out / "meta.jsonl", "w") as met:
        for rid in chosen:
            src = by_id[rid].image
            shutil.copyfile(src, out / "images" / src.name)
            rec.write(raw[rid] + "\n")
            met.write(json.dumps(meta[rid]) + "\n")
    at = {r.id: i for i, r in enumerate(records)}
    print(f"{out}: {describe(vectors[[at[i] for i in chosen]], [by_id[i].entity for i in chosen])} (w {w})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
