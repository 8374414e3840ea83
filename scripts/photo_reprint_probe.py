"""How a model's photo vectors tell reprints of one photo from other photos, for real photos
beside the shift generator's drawn ones: the one check of the photo tower on photographs this
project did not make.

    pip install --no-deps --target /tmp/sk scikit-image==0.26.0   # only for its bundled photos
    python scripts/photo_reprint_probe.py --photos /tmp/sk/skimage/data \
        --faces /tmp/sk/skimage/data/lfw_subset.npy --model news

Every photo is printed and scanned --reprints times by the shift pipeline's press
(clippings/data/shift/news_print.py: crop, screen, paper, blur, archive scale, JPEG; not the
training generator's) and embedded as a clipping without a caption. Per group of photos:
the cosine of two reprints of one photo and of two different photos, how many of each reach
the model's photo-alone cut (manifest `thresholds.image_only`), each reprint's nearest other
reprint, and the ROC AUC. --photos takes every .png/.jpg in a folder; --faces a NumPy array
of grey faces (N x H x W; scikit-image's LFW subset holds 100 faces, then 100 non-faces);
"drawn" is --drawn photos of the shift generator, for comparison.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from clippings.data.shift.news_photos import PhotoSpec
from clippings.data.shift.news_print import encode, print_photo
from clippings.data.shift.news_subjects import draw_photo
from clippings.data.shift.news_topics import TOPICS
from clippings.runtime.onnx_model import OnnxEmbedder

# scikit-image's photos that are not photographs of a scene (drawings, charts, text, test patterns).
NOT_PHOTOS = {"chessboard_GRAY", "chessboard_RGB", "color", "horse", "logo", "page", "phantom", "text",
              "no_time_for_that_tiny", "motorcycle_disp", "multipage", "multipage_rgb"}


def folder_photos(folder: Path) -> list[Image.Image]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg") and p.stem not in NOT_PHOTOS)
    return [Image.open(p).convert("RGB") for p in files]


def face_photos(path: Path, n: int) -> list[Image.Image]:
    faces = np.load(path)[:n]
    scale = 255.0 if faces.max() <= 1.0 else 1.0
    return [Image.fromarray((f * scale).astype(np.uint8)).convert("RGB").resize((120, 120), Image.Resampling.BICUBIC)
            for f in faces]


def drawn_photos(n: int, seed: int) -> list[Image.Image]:
    rng, topics = np.random.default_rng(seed), list(TOPICS)
    out = []
    for i in range(n):
        name = topics[i % len(topics)]
        seeds = [int(s) for s in rng.integers(1 << 30, size=3)]
        out.append(draw_photo(PhotoSpec(TOPICS[name].scene, seeds[0], seeds[1], TOPICS[name].subjects,
                                        seeds[2] if name == "portrait" else None)))
    return out


def reprints(photo: Image.Image, k: int, seed: int) -> list[Image.Image]:
    rng, out = np.random.default_rng(seed), []
    for _ in range(k):
        img, done = print_photo(photo, rng, float(rng.uniform(0.2, 0.8)))
        out.append(Image.open(io.BytesIO(encode(img, done["jpeg_quality"]))).convert("RGB"))  # as the shift set saves it
    return out


def score(emb: OnnxEmbedder, photos: list[Image.Image], k: int, seed: int) -> dict:
    images, owner = [], []
    for i, photo in enumerate(photos):
        images += reprints(photo, k, seed + i)
        owner += [i] * k
    vectors, _, _, _ = emb.embed_towers(images, [""] * len(images))  # unit rows
    sims, owner_a = vectors @ vectors.T, np.array(owner)
    same, other = owner_a[:, None] == owner_a[None, :], ~np.eye(len(owner_a), dtype=bool)
    pos, neg = sims[same & other], sims[~same]
    np.fill_diagonal(sims, -2.0)
    ranks = np.searchsorted(np.sort(neg), pos)  # AUC: how many other-photo pairs each same-photo pair beats
    cut = emb.manifest.thresholds.get("image_only", emb.manifest.thresholds["dedup"])
    return {"photos": len(photos), "reprints": len(images), "same_median": float(np.median(pos)),
            "same_p10": float(np.percentile(pos, 10)), "other_median": float(np.median(neg)),
            "other_p99": float(np.percentile(neg, 99)), "other_max": float(neg.max()), "cut": cut,
            "same_at_cut": float(np.mean(pos >= cut)), "other_at_cut": float(np.mean(neg >= cut)),
            "top1": float(np.mean(owner_a[sims.argmax(1)] == owner_a)), "auc": float(ranks.mean() / len(neg))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="news", help="shipped model name or exported folder (default: %(default)s)")
    p.add_argument("--photos", type=Path, help="a folder of real photos (.png, .jpg)")
    p.add_argument("--faces", type=Path, help="a .npy of grey faces, N x H x W")
    p.add_argument("--n-faces", type=int, default=100, help="faces to take from --faces (default: %(default)s)")
    p.add_argument("--drawn", type=int, default=60, help="the shift generator's photos to compare with (default: %(default)s)")
    p.add_argument("--reprints", type=int, default=4, help="prints of each photo (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args(argv)
    if not (args.photos or args.faces or args.drawn):
        p.error("nothing to score: give --photos, --faces or --drawn N")
    emb = OnnxEmbedder(args.model)
    groups = {"photos": folder_photos(args.photos) if args.photos else [],
              "faces": face_photos(args.faces, args.n_faces) if args.faces else [],
              "drawn": drawn_photos(args.drawn, args.seed)}
    results = {}
    for name, photos in groups.items():
        if len(photos) < 2:
            continue
        r = results[name] = score(emb, photos, args.reprints, args.seed + 1000)
        print(f"{name:7s} {r['photos']:4d} photos x {args.reprints}: same photo cos median {r['same_median']:.3f} "
              f"(p10 {r['same_p10']:.3f}); other photos median {r['other_median']:.3f} (p99 {r['other_p99']:.3f}); "
              f"at the photo-alone cut {r['cut']}: same {r['same_at_cut']:.2f}, other {r['other_at_cut']:.4f}; "
              f"top-1 {r['top1']:.3f}; AUC {r['auc']:.3f}")
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "version": emb.version, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
