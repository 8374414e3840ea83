"""`clippings shift`: evaluation sets made by a pipeline independent of the training generator."""

from __future__ import annotations

import argparse

KINDS = ("jp-firms", "news")  # kept here too: registering the command must not import the builder
OCR_ENGINES = ("tesseract", "ppocr")  # likewise (clippings.data.shift.news.OCR_ENGINES)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "shift", help="build a shift evaluation set: other names, fonts, damage and photos, real OCR text",
        description="Build an evaluation set by a pipeline that shares nothing with `clippings synth`. "
        "jp-firms: a LINK set (corpus + query) of firm names from a dictionary, other typefaces, its own renderer "
        "and damage, each record's text read by tesseract from its image. news: a DEDUP set (val + test) of "
        "press photos and long captions reprinted by many papers, captions from its own grammar, set in other "
        "typefaces, damaged and read back by tesseract (or PP-OCR: --ocr ppocr), photos from its own generator and "
        "printing, with hard negatives. Believe it over in-distribution figures.",
    )
    p.add_argument("kind", choices=KINDS)
    p.add_argument("out", help="output folder (must be empty unless --overwrite)")
    p.add_argument("--entities", type=int, default=300,
                   help="jp-firms: listed entities (corpus records); news: stories; default 300")
    p.add_argument("--queries", type=int, default=None, help="jp-firms: queries per entity, 1..Q; default 2")
    p.add_argument("--instances", type=int, default=None,
                   help="news: reprints per story, 1..M (45%% singletons); default 6")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ocr", choices=OCR_ENGINES, default=None,
                   help="news: the engine that reads the caption scans: tesseract (default) or ppocr (PP-OCRv6 "
                   "det + rec from the rapidocr wheel); the same seed gives the same scans either way")
    p.add_argument("--workers", type=int, default=1, help="rendering + OCR processes; default 1")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from clippings.data.shift.build import build

    path = build(args.kind, args.out, args.entities, seed=args.seed, queries=args.queries,
                 workers=args.workers, overwrite=args.overwrite, progress=not args.no_progress,
                 instances=args.instances, ocr_engine=args.ocr)
    print(f"wrote {path}")
    return 0
