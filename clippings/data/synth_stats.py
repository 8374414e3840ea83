"""Figures that check a synthetic data set is in the intended regime.

    python -m clippings.data.synth_stats DATASET [DATASET ...]

Prints records per split, the OCR character error rate against the printed truth (from
meta.jsonl) by split and orientation, the share of empty texts and vertical crops, image
sizes, and the string-matching baselines the data are tuned against: for a link task the
Levenshtein top-1 accuracy on queries whose entity is in the corpus (the paper's real data:
0.731 for the best string matching), and for a dedup task the best adjusted Rand index of
single-linkage clustering on caption character-trigram Jaccard similarity and on the
cosine of 16x16 grey thumbnails (a naive image baseline).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from clippings.data.dataset import Dataset, load_dataset
from clippings.data.synth_ocr import char_error_rate


def levenshtein_top1(ds: Dataset) -> tuple[float, int]:
    """Top-1 accuracy of normalised Levenshtein similarity, queries with a corpus entity."""
    from rapidfuzz import process
    from rapidfuzz.distance import Levenshtein

    corpus = ds.split("corpus")
    listed = {r.entity for r in corpus}
    queries = [q for q in ds.split("query") if q.entity in listed]
    choices = [r.text for r in corpus]
    hits = 0
    for q in queries:
        best = process.extractOne(q.text, choices, scorer=Levenshtein.normalized_similarity)
        hits += best is not None and corpus[best[2]].entity == q.entity
    return hits / max(1, len(queries)), len(queries)


def trigram_jaccard_ari(texts: list[str], labels: list[str]) -> tuple[float, float]:
    """Best ARI over thresholds of single-linkage on character-trigram Jaccard; -> (ari, threshold)."""
    from scipy.sparse.csgraph import connected_components
    from sklearn.metrics import adjusted_rand_score

    grams = [{t[i:i + 3] for i in range(max(1, len(t) - 2))} if t else set() for t in texts]
    n = len(texts)
    sim = np.zeros((n, n), np.float32)
    for i in range(n):
        for j in range(i + 1, n):
            if grams[i] and grams[j]:
                sim[i, j] = sim[j, i] = len(grams[i] & grams[j]) / len(grams[i] | grams[j])
    best = (-1.0, 0.0)
    for thr in np.arange(0.1, 0.95, 0.05):
        _, comp = connected_components(sim >= thr, directed=False)
        best = max(best, (adjusted_rand_score(labels, comp), float(thr)))
    return best


def thumbnail_ari(images: list[Path | None], labels: list[str]) -> tuple[float, float]:
    """Best ARI of single-linkage on the cosine of 16x16 grey thumbnails: a naive image
    baseline, to check image-only matching is not trivial either."""
    from scipy.sparse.csgraph import connected_components
    from sklearn.metrics import adjusted_rand_score

    vecs = np.zeros((len(images), 256), np.float32)
    for i, path in enumerate(images):
        if path is not None:
            with Image.open(path) as im:
                v = np.asarray(im.convert("L").resize((16, 16), Image.Resampling.BOX), np.float32).ravel()
            v -= v.mean()
            vecs[i] = v / (np.linalg.norm(v) + 1e-6)
    sim = vecs @ vecs.T
    best = (-1.0, 0.0)
    for thr in np.arange(0.5, 0.995, 0.02):
        _, comp = connected_components(sim >= thr, directed=False)
        best = max(best, (adjusted_rand_score(labels, comp), float(thr)))
    return best


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
    for split in ("val", "test"):
        recs = ds.split(split)
        if recs and len(recs) <= 3000:
            ari, thr = trigram_jaccard_ari([r.text for r in recs], [r.entity for r in recs])
            print(f"text trigram-Jaccard single-linkage best ARI on {split}: {ari:.3f} (threshold {thr:.2f})")
            ari, thr = thumbnail_ari([r.image for r in recs], [r.entity for r in recs])
            print(f"image 16x16-thumbnail cosine single-linkage best ARI on {split}: {ari:.3f} (threshold {thr:.2f})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="+", type=Path)
    for path in parser.parse_args(argv).datasets:
        describe(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
