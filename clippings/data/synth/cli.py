"""`clippings synth`: the command line of the generators (clippings/data/synth/generate.py),
imported only when the command runs (they pull in NumPy and Pillow)."""

from __future__ import annotations

import argparse
from pathlib import Path

from clippings.data.synth.options import (
    CAPTION_STYLES, DEGRADATION_SETS, FONT_SETS, KINDS, OCR_ENGINES, SIBLING_PHOTOS, TASKS,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "synth",
        help="generate a synthetic data set (jp-firms crops or news photos with captions)",
        description="Generate a synthetic data set in the dataset format (records.jsonl + images/).",
    )
    p.add_argument("kind", choices=KINDS, help="jp-firms: firm-name crops + OCR text; news: photos + captions")
    p.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="output folder (must be empty unless --overwrite)")
    p.add_argument("--task", choices=TASKS, default="train",
                   help="train: N x M instances; link: corpus + queries; dedup: clusters in val/test (default train)")
    p.add_argument("--entities", type=int, required=True, metavar="N", help="number of entities (firms, stories)")
    p.add_argument("--instances", type=int, default=None, metavar="M",
                   help="train: instances per entity (4); link: most queries per entity (2); "
                        "dedup: largest cluster (jp-firms 5, news 6)")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same data set (0)")
    p.add_argument("--fonts", choices=FONT_SETS, default=None, help="jp-firms font set (train)")
    p.add_argument("--degradations", choices=DEGRADATION_SETS, default="train",
                   help="print-and-scan degradation family (train)")
    p.add_argument("--ocr", choices=OCR_ENGINES, default="simulated",
                   help="each record's text is the generator's simulated OCR, or tesseract's reading as a real "
                        "feed's would be: jp-firms, of the crop (about 0.15 s a crop); news, of the caption printed "
                        "in a column and scanned (saved under captions/; about 0.4 s a caption). Needs the "
                        "tesseract-ocr packages")
    p.add_argument("--captions", choices=CAPTION_STYLES, default="short",
                   help="news: short (dateline, one description, credit) or long (a paragraph: added sentences "
                        "that reprints drop or reorder and other photos of the event share) (short)")
    p.add_argument("--sibling-photos", choices=SIBLING_PHOTOS, default="other",
                   help="news: the photo of another story of the same event is another scene of its kind (other) "
                        "or another shot of the same place: the same ground and buildings, other passers-by and "
                        "props, another framing (same-place); the photo then tells them apart less (other)")
    p.add_argument("--workers", type=int, default=1, metavar="K", help="rendering processes (1)")
    p.add_argument("--overwrite", action="store_true", help="replace a data set already in OUT_DIR")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from clippings.data.synth.generate import generate

    generate(
        args.kind, args.out_dir, task=args.task, entities=args.entities, instances=args.instances,
        seed=args.seed, fonts=args.fonts, degradations=args.degradations, ocr=args.ocr, captions=args.captions,
        sibling_photos=args.sibling_photos,
        workers=args.workers,
        overwrite=args.overwrite,
    )
    return 0
