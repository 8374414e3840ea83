"""`clippings train`: build a model from a preset, train it on dataset folders, keep the best."""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from clippings.errors import ClippingsError

if TYPE_CHECKING:
    from clippings.models.config import ModelConfig

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train a CLIPPINGS bi-encoder (stage 1 contrastive, stage 2 supervised contrastive)",
        description="Train a bi-encoder on dataset folders (see docs/data.md). Writes OUT/best.pt, "
        "OUT/last.pt and OUT/history.json; export the result with `clippings export OUT`.",
    )
    p.add_argument("--data", nargs="+", type=Path, default=[], help="training dataset folder(s)")
    p.add_argument("--labels", type=Path, metavar="DATASET",
                   help="reviewers' labels (`clippings labels export`): its train split is trained on, its val "
                        "split chooses the best checkpoint and tunes the export (unless --val), its test split is "
                        "left for `clippings eval`")
    p.add_argument("--val", type=Path, help="validation dataset folder (link or dedup); chooses the best checkpoint")
    p.add_argument("--out", required=True, type=Path, help="run folder for checkpoints")
    p.add_argument("--preset", help="model preset: reader-crops (a pretrained line reader; what jp-firms ships), "
                   "small-crops, small-photos, long-photos, bag-photos, hybrid-photos, lede-photos, lede-grid-photos, "
                   "lede-grid-grey or lede-grid-trunk (what news ships: a pretrained photo trunk beside the tower) (default: the one an exported --init model was trained with, else "
                   "chosen from the images in --data: small-crops for text crops, lede-grid-trunk for photos)")
    p.add_argument("--hf-clip", type=Path, metavar="DIR",
                   help="start from a local Hugging Face CLIPModel folder instead of a small preset")
    p.add_argument("--mode", choices=["supervised", "self-supervised"], default="supervised",
                   help="self-supervised: stage 1 (image-text contrastive) only, no labels needed")
    p.add_argument("--stage1-epochs", type=int, default=4)
    p.add_argument("--stage2-epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=128, help="stage 1 batch size")
    p.add_argument("--classes-per-batch", type=int, default=32, help="stage 2: k hard-negative classes per batch")
    p.add_argument("--instances", type=int, default=4, help="stage 2: m instances per class")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--modality-dropout", type=float, default=0.0, metavar="P",
                   help="stage 2: share of clippings pooled from their image or their text alone, so that a "
                        "clipping missing one lands nearer its full reprint (default 0)")
    p.add_argument("--photo-augment", action="store_true",
                   help="photos: each batch also cropped 75-100%%, tilted, grey or out of colour balance and "
                        "rescanned at a lower resolution (training/augment.py, reprint)")
    p.add_argument("--image-weight", type=float, help="w of the pooled embedding (default: the preset's, 0.5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="PyTorch threads (default: all cores)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--init", type=Path, help="initial weights: a checkpoint of the same preset, or an exported "
                   "reader model (a shipped name such as jp-firms, or a folder from `clippings export`)")
    p.add_argument("--device", default="auto", help="auto (CUDA when PyTorch sees a GPU, else CPU), cpu, cuda or cuda:N")
    p.add_argument("--train-on-held-out", action="store_true",
                   help="allow corpus/query/val/test records in --data (refused by default: they are for scoring)")
    p.set_defaults(func=run)


def _model_config(args: argparse.Namespace, records) -> "ModelConfig":
    from clippings.models.config import preset
    from clippings.training.inputs import infer_preset

    if args.hf_clip:
        from clippings.models.hf_clip import hf_clip_config

        model_cfg = hf_clip_config(args.hf_clip)
    else:
        name = args.preset or _init_preset(args.init)
        if not name:
            name = infer_preset(records)
            log.info("preset=%s (chosen from the images in --data; --preset overrides)", name)
        elif not args.preset:
            log.info("preset=%s (the one %s was trained with; --preset overrides)", name, args.init)
        model_cfg = preset(name)
    if args.image_weight is not None:
        if not 0.0 <= args.image_weight <= 1.0:
            raise ClippingsError("--image-weight must lie in [0, 1]")
        model_cfg = dataclasses.replace(model_cfg, image_weight=args.image_weight)
    elif args.init is not None:
        from clippings.runtime.manifest import Manifest
        from clippings.training.loop import exported_model_dir

        exported = exported_model_dir(args.init)
        if exported is not None:  # fine-tuning a served model: pool as it was served
            model_cfg = dataclasses.replace(model_cfg, image_weight=Manifest.load(exported).image_weight)
    return model_cfg


def _init_preset(init: Path | None) -> str:
    """The preset an exported model given to --init was trained with ("" when unknown)."""
    if init is None:
        return ""
    from clippings.runtime.manifest import Manifest
    from clippings.training.loop import exported_model_dir

    exported = exported_model_dir(init)
    return Manifest.load(exported).preset if exported is not None else ""


def _frozen_trunk(model_cfg: "ModelConfig", threads: int):
    """The reader family's recogniser, run once per record before training (it is frozen)."""
    if model_cfg.family != "reader":
        return None
    from clippings.models.trunk import TrunkRunner

    log.info("trunk=%s: reading every crop once (about 30 ms a crop a core)", model_cfg.trunk)
    return TrunkRunner(model_cfg.trunk, threads=threads)


def _records(args: argparse.Namespace) -> tuple[list, list | None, str | None]:
    """-> training records, validation records (None: no validation), the validation split
    when it is one split of a labels dataset (the export tunes on that split alone)."""
    from clippings.data.dataset import load_dataset
    from clippings.training.inputs import training_records

    if not args.data and not args.labels:
        raise ClippingsError("give --data (training dataset folders) or --labels (a `clippings labels export`)")
    records = training_records(args.data, args.val, allow_held_out=args.train_on_held_out)
    val_records = load_dataset(args.val).records if args.val else None
    if not args.labels:
        return records, val_records, None
    labels = load_dataset(args.labels)
    if not labels.split("train"):
        raise ClippingsError(f"--labels {args.labels} has no train records to learn from: review more decisions")
    if val_records is None and not labels.split("val"):
        raise ClippingsError(f"--labels {args.labels} has no val records to choose a checkpoint on; give --val")
    log.info("labels=%s train=%d val=%d test=%d (left out)", args.labels, len(labels.split("train")),
             len(labels.split("val")), len(labels.split("test")))
    if val_records is None:
        return records + labels.split("train"), labels.split("val"), "val"
    return records + labels.split("train"), val_records, None


def run(args: argparse.Namespace) -> int:
    import torch

    from clippings.runtime.preprocess import make_tokenizer
    from clippings.training.data import encode_records
    from clippings.training.inputs import check_val_disjoint, resolve_device
    from clippings.training.loop import Trainer, TrainConfig

    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.resume and not (args.out / "last.pt").is_file():
        raise ClippingsError(f"--resume: no {args.out / 'last.pt'} to resume from")
    records, val_records, val_split = _records(args)
    if args.mode == "supervised" and not any(r.entity for r in records):
        raise ClippingsError("supervised training needs records with an 'entity'; use --mode self-supervised")
    val_path = args.val or (args.labels if val_records is not None else None)
    if val_records is not None:
        check_val_disjoint(records, val_records, val_path)
    else:
        log.warning("no --val: the best checkpoint is chosen by training loss, and `clippings export` will need "
                    "--data with held-out labelled clippings to tune its thresholds")
    model_cfg = _model_config(args, records)
    tokenizer = make_tokenizer(model_cfg.preprocess, model_cfg.hf_path)
    trunk = _frozen_trunk(model_cfg, args.threads)
    # Text-crop presets re-lay tall crops; no photo preset does, and a photo preset may read grey.
    if args.photo_augment and (trunk is not None or model_cfg.preprocess.reflow_tall):
        raise ClippingsError(f"--photo-augment is for photos; preset {model_cfg.name!r} reads "
                             f"{'text lines through a frozen trunk' if trunk is not None else 'grayscale crops'}")
    cache = args.out / "features"
    train = encode_records(records, model_cfg.preprocess, tokenizer, desc="preprocess train", trunk=trunk, cache_dir=cache)
    val = encode_records(val_records, model_cfg.preprocess, tokenizer, desc="preprocess val",
                         trunk=trunk, cache_dir=cache) if val_records else None
    val_splits = [r.split for r in val_records] if val_records else None
    log.info("train records=%d entities=%d val=%s device=%s", len(train), len({e for e in train.entities if e}),
             len(val) if val else 0, device)

    cfg = TrainConfig(
        out_dir=str(args.out), data=tuple(str(d) for d in [*args.data, *([args.labels] if args.labels else [])]),
        val_data=str(val_path) if val_path else None, val_split=val_split,
        mode=args.mode, stage1_epochs=args.stage1_epochs, stage2_epochs=args.stage2_epochs,
        batch_size=args.batch_size, classes_per_batch=args.classes_per_batch, instances=args.instances,
        lr=args.lr, seed=args.seed, threads=args.threads, device=device,
        augment=trunk is None,  # pixel noise means nothing to features computed once per crop
        modality_dropout=args.modality_dropout, photo_augment=args.photo_augment,
    )
    trainer = Trainer(model_cfg, cfg, train, val, val_splits)
    if args.resume:
        trainer.resume(args.out / "last.pt")
    elif args.init:
        trainer.init_from(args.init)
    result = trainer.run()
    what = "best validation score" if val is not None else "best (lowest) training loss"
    best = result["best"] if val is not None else -result["best"]
    print(f"{what} {best:.4f}; checkpoint {args.out / 'best.pt'}; curves {args.out / 'training-curves.png'}")
    return 0
