"""Checkpoint -> model folder: model.onnx (+ fp16/int8 variants) and manifest.json.

Every variant is run through ONNX Runtime on real clippings and compared with PyTorch on
the same inputs; an export that drifts past its tolerance fails instead of shipping.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from clippings.data.dataset import load_dataset
from clippings.runtime.onnx_model import Manifest, OnnxEmbedder
from clippings.errors import ExportError
from clippings.models.config import ModelConfig
from clippings.models.factory import load_checkpoint
from clippings.runtime.preprocess import load_image
from clippings.evaluation.scoring import tune_serving

log = logging.getLogger(__name__)

OPSET = 17  # pinned: ONNX Runtime 1.16+ and onnxruntime-gpu all run it
INPUTS = ["pixels", "text_ids"]
OUTPUTS = ["image_embedding", "text_embedding"]
# Minimum cosine between ONNX Runtime and PyTorch embeddings, per variant.
TOLERANCE = {"fp32": 0.999, "fp16": 0.995, "int8": 0.97}


@dataclass(frozen=True)
class Parity:
    max_abs_diff: float
    min_cosine: float
    mean_cosine: float


def _tune(emb: OnnxEmbedder, records: list, images: list, texts: list[str]) -> dict:
    """w and thresholds chosen on the verification set through the exported model itself;
    nothing to tune on a set without entity labels."""
    labelled = [i for i, r in enumerate(records) if r.entity is not None]
    if len({records[i].entity for i in labelled}) < 2:
        log.warning("no entity labels in the verification data: image weight and thresholds keep their defaults")
        return {}
    img, txt, ip, tp = emb.embed_towers([images[i] for i in labelled], [texts[i] for i in labelled])
    tuned = tune_serving(img, txt, ip, tp, [records[i].split for i in labelled], [records[i].entity for i in labelled])
    log.info("tuned %s", " ".join(f"{k}={v:.3f}" for k, v in tuned.items()))
    return tuned


def _verification_data(train_config: dict, data_dir: Path | None) -> Path:
    """The held-out clippings that verify the export and tune its thresholds: the run's --val
    by default; never its training data, where every threshold would look perfect."""
    if data_dir is None:
        if not train_config.get("val_data"):
            raise ExportError("the run was trained without --val: give --data with held-out labelled clippings "
                              "(not the training data) to verify the export and tune its thresholds")
        data_dir = Path(train_config["val_data"])
    if any(Path(d).resolve() == Path(data_dir).resolve() for d in train_config.get("data", ())):
        raise ExportError(f"--data {data_dir} is the run's training data: thresholds tuned there would be too "
                          "optimistic; give held-out labelled clippings")
    return Path(data_dir)


def _torch_export(model: torch.nn.Module, cfg: ModelConfig, path: Path) -> None:
    pre = cfg.preprocess
    pixels = torch.zeros(2, pre.channels, pre.image_height, pre.image_width)
    ids = torch.ones(2, pre.text_max_len, dtype=torch.long)
    # The TorchScript exporter gives one flat graph with a symbolic batch axis; the dynamo
    # exporter needs onnxscript at run time and gains nothing for these plain CNNs.
    torch.onnx.export(
        model, (pixels, ids), str(path), dynamo=False, opset_version=OPSET,
        input_names=INPUTS, output_names=OUTPUTS,
        dynamic_axes={n: {0: "batch"} for n in INPUTS + OUTPUTS},
    )


def _fp16(src: Path, dst: Path) -> None:
    import onnx
    from onnxconverter_common import float16

    # Casts stay fp32: the converter retypes a Cast's output but not its `to` attribute, which
    # leaves the padding mask of the text tower as an invalid graph.
    model = float16.convert_float_to_float16(
        onnx.load(str(src)), keep_io_types=True, op_block_list=float16.DEFAULT_OP_BLOCK_LIST + ["Cast"]
    )
    onnx.save(model, str(dst))


def _int8(src: Path, dst: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Dynamic quantisation of the weight-heavy matmuls and the character embedding; the
    # convolutions stay fp32 because ConvInteger is slower than fp32 Conv on CPU.
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm", "Gather"])


def _parity(a: np.ndarray, b: np.ndarray) -> Parity:
    cos = np.sum(a * b, axis=1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return Parity(float(np.abs(a - b).max()), float(cos.min()), float(cos.mean()))


def check_parity(model: torch.nn.Module, model_dir: Path, variants: list[str], images: list, texts: list[str]
                 ) -> dict[str, dict[str, float]]:
    """The export gate: each variant's graph in model_dir, run by ONNX Runtime, against the
    PyTorch model on the same clippings -> parity per variant; ExportError past TOLERANCE."""
    parity: dict[str, dict[str, float]] = {}
    for variant in variants:
        emb = OnnxEmbedder(model_dir, variant=variant, providers=["CPUExecutionProvider"])
        pixels, ip, ids, tp = emb.prepare(images, texts)
        ort_img, ort_txt = emb.run(pixels, ids)
        with torch.no_grad():
            pt_img, pt_txt = model(torch.from_numpy(pixels), torch.from_numpy(ids))
        # Only towers that saw input count: an absent modality's output is ignored when pooling.
        hi, ht = ip > 0, tp > 0
        p = _parity(np.concatenate([ort_img[hi], ort_txt[ht]]), np.concatenate([pt_img.numpy()[hi], pt_txt.numpy()[ht]]))
        parity[variant] = p.__dict__
        log.info("parity variant=%s n=%d max_abs_diff=%.2e min_cosine=%.6f", variant, len(texts), p.max_abs_diff, p.min_cosine)
        if p.min_cosine < TOLERANCE[variant]:
            raise ExportError(
                f"{variant}: ONNX Runtime and PyTorch disagree (min cosine {p.min_cosine:.6f} < {TOLERANCE[variant]}, "
                f"max abs diff {p.max_abs_diff:.2e}); not exported"
            )
    return parity


def export_model(
    checkpoint: Path, out_dir: Path, data_dir: Path | None = None, name: str | None = None, variants: tuple[str, ...] = ("fp32",),
    link_threshold: float | None = None, dedup_threshold: float | None = None, n_verify: int = 256,
) -> Manifest:
    model, cfg, ckpt = load_checkpoint(checkpoint)
    data_dir = _verification_data(ckpt.get("train_config", {}), data_dir)
    final_dir = out_dir
    # Build beside the target and swap in at the end: a failed export leaves the old model intact.
    out_dir = final_dir.parent / f".{final_dir.name}.partial"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    fp32 = out_dir / "model.onnx"
    _torch_export(model, cfg, fp32)
    if cfg.preprocess.tokenizer != "chars":
        shutil.copy(Path(cfg.hf_path) / cfg.preprocess.tokenizer, out_dir / cfg.preprocess.tokenizer)
    files = {"fp32": fp32.name}
    if "fp16" in variants:
        _fp16(fp32, out_dir / "model.fp16.onnx")
        files["fp16"] = "model.fp16.onnx"
    if "int8" in variants:
        _int8(fp32, out_dir / "model.int8.onnx")
        files["int8"] = "model.int8.onnx"

    pre = cfg.preprocess
    manifest = Manifest(
        name=name or cfg.name,
        version=hashlib.sha256(fp32.read_bytes()).hexdigest()[:12],
        family=cfg.family,
        embedding_dim=cfg.embed_dim,
        image_weight=cfg.image_weight,
        thresholds={"link": 0.5, "dedup": 0.8},  # replaced below by the values tuned on data_dir
        preprocess=pre.to_dict(),
        opset=OPSET,
        files=files,
        inputs=[
            {"name": "pixels", "dtype": "float32", "shape": ["batch", pre.channels, pre.image_height, pre.image_width]},
            {"name": "text_ids", "dtype": "int64", "shape": ["batch", pre.text_max_len]},
        ],
        outputs=OUTPUTS,
        created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    )
    manifest.save(out_dir)

    records = load_dataset(data_dir).records
    images = [load_image(r.image) if r.image else None for r in records]
    texts = [r.text for r in records]
    tuned = _tune(OnnxEmbedder(out_dir, providers=["CPUExecutionProvider"]), records, images, texts)
    manifest = manifest.model_copy(update={
        "image_weight": tuned.get("image_weight", cfg.image_weight),
        "thresholds": {
            "link": link_threshold if link_threshold is not None else tuned.get("link", 0.5),
            "dedup": dedup_threshold if dedup_threshold is not None else tuned.get("dedup", 0.8),
        },
    })
    manifest.save(out_dir)
    parity = check_parity(model, out_dir, list(files), images[:n_verify], texts[:n_verify])
    manifest = manifest.model_copy(update={"parity": parity})
    manifest.save(out_dir)
    if final_dir.exists():
        shutil.rmtree(final_dir)
    out_dir.rename(final_dir)
    return manifest
