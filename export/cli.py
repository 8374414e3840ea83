"""`clippings export`: a training checkpoint -> a served model folder, verified."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="export a checkpoint to ONNX (model.onnx + manifest.json), verified against PyTorch",
        description="Writes OUT/model.onnx (opset pinned, dynamic batch), optional fp16/int8 variants and "
        "OUT/manifest.json. Each variant is checked against PyTorch on real clippings; export fails past tolerance.",
    )
    p.add_argument("checkpoint", type=Path, help="a checkpoint file, or a run folder (uses best.pt)")
    p.add_argument("--out", required=True, type=Path, help="model folder to write")
    p.add_argument("--data", type=Path, help="dataset whose clippings verify the export (default: the run's val data)")
    p.add_argument("--name", help="model name in the manifest (default: the preset's)")
    p.add_argument("--fp16", action="store_true", help="also write a float16 variant")
    p.add_argument("--int8", action="store_true", help="also write a dynamically quantised int8 variant")
    p.add_argument("--link-threshold", type=float, help="override the tuned top-1 'no match' cosine")
    p.add_argument("--dedup-threshold", type=float, help="override the tuned clustering cosine")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from clippings.export.onnx_export import export_model

    variants = ("fp32",) + (("fp16",) if args.fp16 else ()) + (("int8",) if args.int8 else ())
    m = export_model(args.checkpoint, args.out, args.data, name=args.name, variants=variants,
                     link_threshold=args.link_threshold, dedup_threshold=args.dedup_threshold)
    for variant, p in m.parity.items():
        print(f"{variant}: max_abs_diff={p['max_abs_diff']:.2e} min_cosine={p['min_cosine']:.6f}")
    print(f"exported {m.name} version {m.version} to {args.out} (thresholds: {m.thresholds})")
    return 0
