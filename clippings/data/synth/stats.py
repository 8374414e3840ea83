"""Figures that check a synthetic data set is in the intended regime.

    python -m clippings.data.synth.stats DATASET [DATASET ...]

Prints records per split, the OCR character error rate against the printed truth (from
meta.jsonl) by split and orientation, the share of empty texts and vertical crops, image
sizes, and the naive baselines the data are tuned against, scored as `clippings eval`
scores them (clippings.evaluation.baselines, thresholds tuned on val, ARI on test): for a link task
the Levenshtein top-1 accuracy (the paper's real data: 0.731 for the best string
matching); for a dedup task the n-gram Jaccard ARI, and the ARI of the cosine of 16x16
grey thumbnails, a naive image baseline that should not solve the task either.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from clippings.evaluation.baselines import STRING_METHODS
from clippings.data.dataset import Dataset, Record, load_dataset
from clippings.data.synth.ocr import char_error_rate


def levenshtein_top1(ds: Dataset) -> tuple[float, int]:
    """Top-1 accuracy of Levenshtein similarity, over queries whose entity is in the corpus."""
    corpus = ds.split("corpus")
    listed = {r.entity for r in corpus}
    queries = [q for q in ds.split("query") if q.entity in listed]
    sim = STRING_METHODS["levenshtein"]([q.text for q in queries], [c.text for c in corpus])
    best = sim.argmax(axis=1)
    return float(np.mean([corpus[j].entity == q.entity for j, q in zip(best, queries)])), len(queries)


def thumbnail_similarity(a: Sequence[Record], b: Sequence[Record]) -> np.ndarray:
    """Cosine of mean-centred 16x16 grey thumbnails."""

    def vectors(records: Sequence[Record]) -> np.ndarray:
        out = np.zeros((len(records), 256), np.float32)
        for i, r in enumerate(records):
            if r.image is not None:
                with Image.open(r.image) as im:
                    v = np.asarray(im.convert("L").resize((16, 16), Image.Resampling.BOX), np.float32).ravel()
                v -= v.mean()
                out[i] = v / (np.linalg.norm(v) + 1e-6)
        return out

    return vectors(a) @ vectors(b).T


def dedup_ari(ds: Dataset, similarity: Callable[[Sequence[Record], Sequence[Record]], np.ndarray]) -> tuple[float, float]:
    """ARI on test of single linkage at the cut tuned on val; -> (ari, threshold)."""
    from sklearn.metrics import adjusted_rand_score

    from clippings.evaluation.linking import cluster_dense, labels_of, tune_dense_threshold

    val, test = ds.split("val"), ds.split("test")
    threshold, _ = tune_dense_threshold(similarity(val, val), [r.entity for r in val])
    labels = cluster_dense(similarity(test, test), threshold)
    return float(adjusted_rand_score(labels_of([r.entity for r in test]), labels)), threshold


def _text_similarity(method: str):
    return lambda a, b: STRING_METHODS[method]([r.text for r in a], [r.text for r in b])


def describe(path: Path) -> None:
    ds = load_dataset(path)
    meta = {}
    if (path / "meta.jsonl").is_file():
        for line in (path / "meta.jsonl").open(encoding="utf-8"):
            m = json.loads(line)
            meta[m["id"]] = m
    print(f"== {path}")
    print("records per split:", dict(Counter(r.split for r in ds.records)))
    print(f"entities: {len({r.entity for r in ds.records})}")
    cer: dict[str, list[float]] = defaultdict(list)
    for r in ds.records:
        m = meta.get(r.id)
        truth = m and (m.get("truth") or m.get("caption"))
        if truth and r.text:
            key = f"{r.split}/{'vertical' if m.get('vertical') else 'horizontal'}"
            cer[key].append(char_error_rate(truth, r.text))
    for key in sorted(cer):
        v = np.array(cer[key])
        print(f"CER {key:<20} n={len(v):<6} mean={v.mean():.3f} median={np.median(v):.3f} "
              f"changed={np.mean(v > 0):.2f}")
    print(f"empty text: {np.mean([not r.text for r in ds.records]):.3f}")
    if meta:
        print(f"vertical: {np.mean([bool(m.get('vertical')) for m in meta.values()]):.3f}")
    sizes = [Image.open(r.image).size for r in ds.records[:500] if r.image]
    if sizes:
        w, h = np.array(sizes).T
        print(f"image px (first 500): width median {np.median(w):.0f}, height median {np.median(h):.0f}")
    files = [r.image.stat().st_size for r in ds.records if r.image]
    print(f"image bytes: mean {np.mean(files) / 1024:.1f} KiB, total {sum(files) / 2**20:.1f} MiB")
    splits = {r.split for r in ds.records}
    if {"corpus", "query"} <= splits:
        acc, n = levenshtein_top1(ds)
        print(f"Levenshtein top-1 (queries with a corpus entity): {acc:.3f} (n={n})")
    if {"val", "test"} <= splits:
        for name in ("jaccard_char", "jaccard_word", "levenshtein"):
            ari, thr = dedup_ari(ds, _text_similarity(name))
            print(f"{name} single-linkage ARI on test (cut {thr:.3f} tuned on val): {ari:.3f}")
        ari, thr = dedup_ari(ds, thumbnail_similarity)
        print(f"16x16-thumbnail cosine single-linkage ARI on test (cut {thr:.3f} tuned on val): {ari:.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="+", type=Path)
    for path in parser.parse_args(argv).datasets:
        describe(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
