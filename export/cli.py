"""`clippings export`: a training checkpoint -> a served model folder, verified and calibrated.

Two steps: convert (ONNX graphs, variants, the parity gate against PyTorch) then calibrate
(image weight and thresholds through the exported graph); the manifest is written once, whole.
"""

from __future__ import annotations

import argparse
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from clippings.runtime.manifest import Manifest


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
    p.add_argument("--int8", action="store_true", help="also write an int8 variant (convolutions statically quantised, calibrated on the held-out sample; small family only)")
    p.add_argument("--link-threshold", type=float, help="override the tuned top-1 'no match' cosine")
    p.add_argument("--dedup-threshold", type=float, help="override the tuned clustering cosine")
    p.set_defaults(func=run)

    c = sub.add_parser(
        "calibrate", help="tune an exported model's image weight and thresholds again on labelled sets",
        description="Copies MODEL's graphs to OUT with a new manifest: the image weight w and the link and dedup "
        "cuts chosen for the mean score over every --data set (dedup sets: all splits but test and train; "
        "linking sets: corpus + query). The version changes with the decision. No checkpoint or PyTorch needed.",
    )
    c.add_argument("model", help="a shipped model name or an exported model folder")
    c.add_argument("--data", required=True, type=Path, action="append",
                   help="a labelled set to tune on (repeat for several: the mean score over them is maximised)")
    c.add_argument("--out", required=True, type=Path, help="model folder to write")
    c.add_argument("--link-threshold", type=float, help="set the top-1 'no match' cosine instead of tuning it")
    c.add_argument("--dedup-threshold", type=float, help="set the clustering cosine instead of tuning it")
    c.add_argument("--splits", type=lambda s: [x for x in s.split(",") if x], metavar="SPLIT[,SPLIT]",
                   help="dedup sets: the splits to tune on (default: all but test and train; a labels export's "
                        "train split is fair for a model that was not fine-tuned on it: --splits train,val)")
    c.add_argument("--text-evidence", action="store_true",
                   help="also weigh the captions' character pairs into the served vector, at the weight (0 to "
                        "0.6) that scores best on the sets: string similarity beside the model's, for feeds "
                        "whose OCR the model has not learned (docs/model.md, \"Text evidence\")")
    c.add_argument("--pooling", choices=["sum", "concat"],
                   help="how the towers become one vector: sum (the paper's, what training uses) or concat (each "
                        "tower in its own half: a pair's cosine is w x photo cosine + (1 - w) x caption cosine; "
                        "docs/model.md, \"Pooling\"); default: the model's")
    c.add_argument("--set-size", type=int, metavar="N",
                   help="dedup sets: tune the cut for sets of N clippings, drawn from the sets given (default 700, "
                        "about the size of an evaluation set; 0: tune on the sets as given). Single linkage chains "
                        "more in a larger set, so its best cut is higher (docs/model.md, \"Calibrating for a set's "
                        "size\")")
    c.add_argument("--variant", choices=["fp32", "fp16", "int8"],  # runtime.manifest.Variant
                   help="the graph to serve, where exported: the decision is tuned on its vectors and the "
                        "embedder and `clippings eval` load it unless told otherwise (default: the model's)")
    c.add_argument("--keep-decision", action="store_true",
                   help="keep MODEL's image weight, cuts and version; fit only the match probability that link "
                        "events carry (docs/model.md, \"Match probability\")")
    c.set_defaults(func=run_calibrate)


def run(args: argparse.Namespace) -> int:
    variants = ("fp32",) + (("fp16",) if args.fp16 else ()) + (("int8",) if args.int8 else ())
    m = export_model(args.checkpoint, args.out, args.data, name=args.name, variants=variants,
                     link_threshold=args.link_threshold, dedup_threshold=args.dedup_threshold)
    for variant, p in m.parity.items():
        print(f"{variant}: max_abs_diff={p['max_abs_diff']:.2e} min_cosine={p['min_cosine']:.6f} "
              f"pair_drift image={p['image_pair_drift']:.4f} text={p['text_pair_drift']:.4f}")
    print(f"exported {m.name} version {m.version} to {args.out} (thresholds: {m.thresholds})")
    return 0


def run_calibrate(args: argparse.Namespace) -> int:
    from clippings.export.recalibrate import recalibrate

    m, tuned = recalibrate(args.model, args.data, args.out, args.link_threshold, args.dedup_threshold, args.splits,
                           text_evidence=args.text_evidence, keep_decision=args.keep_decision,
                           pooling=args.pooling, set_size=args.set_size, variant=args.variant)
    scores = " ".join(f"{k}={v:.3f}" for k, v in tuned.items() if k.startswith("val_"))
    evidence = f" text_evidence={m.text_evidence['weight']}" if m.text_evidence else ""
    curve = m.match_probability
    size = f" set_size={m.calibrated_set_size}" if m.calibrated_set_size else ""
    print(f"calibrated {m.name} version {m.version} to {args.out}: variant={m.variant} pooling={m.pooling}{size} image_weight={m.image_weight}{evidence} "
          f"thresholds={m.thresholds} match_probability=(slope {curve['slope']}, intercept {curve['intercept']}, "
          f"{curve['pairs']} pairs)" + (f" ({scores})" if scores else ""))
    return 0


def export_model(
    checkpoint: Path, out_dir: Path, data_dir: Path | None = None, name: str | None = None, variants: tuple[str, ...] = ("fp32",),
    link_threshold: float | None = None, dedup_threshold: float | None = None, n_verify: int = 256,
) -> Manifest:
    """Checkpoint -> out_dir with the graphs and their manifest; out_dir is replaced only when
    every step passed."""
    # Heavy imports (torch, ONNX) when an export runs, not when the CLI lists its commands.
    from clippings.data.dataset import load_dataset, record_image
    from clippings.export.calibrate import UNTUNED_THRESHOLDS, Decision, calibrate, verification_data
    from clippings.export.convert import convert
    from clippings.models.factory import load_checkpoint
    from clippings.runtime.onnx_model import OnnxEmbedder

    model, cfg, ckpt = load_checkpoint(checkpoint)
    train_config = ckpt.get("train_config", {})
    records = load_dataset(verification_data(train_config, data_dir)).records
    if data_dir is None and train_config.get("val_split"):  # --labels: its val split, never train or test
        records = [r for r in records if r.split == train_config["val_split"]]
    images = [record_image(r) for r in records]
    texts = [r.text for r in records]
    untuned = Decision(cfg.image_weight, UNTUNED_THRESHOLDS)
    with _staged(out_dir) as staging:
        graphs = convert(model, cfg, staging, variants, name, untuned.image_weight, untuned.thresholds,
                         images[:n_verify], texts[:n_verify])
        emb = OnnxEmbedder(staging, providers=["CPUExecutionProvider"], manifest=graphs)
        decision = calibrate(emb, records, images, texts, untuned, link_threshold, dedup_threshold)
        manifest = graphs.model_copy(update=decision.manifest_fields())
        manifest.save(staging)
    return manifest


@contextmanager
def _staged(final_dir: Path) -> Iterator[Path]:
    """A folder beside final_dir that replaces it when the block succeeds: a failed export
    leaves the old model intact."""
    staging = final_dir.parent / f".{final_dir.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    yield staging
    if final_dir.exists():
        shutil.rmtree(final_dir)
    staging.rename(final_dir)
