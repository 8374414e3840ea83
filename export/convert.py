"""Step 1 of `clippings export`: a PyTorch model -> ONNX graphs (fp32, optional fp16/int8), gated.

Every variant is run through ONNX Runtime on real clippings and compared with PyTorch on the
same inputs; a graph that drifts past its tolerance fails the export instead of shipping.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import shutil
from pathlib import Path

import numpy as np
import torch

from clippings.errors import ExportError
from clippings.export.pad_fold import fold_pads_file
from clippings.models.config import PRESETS, ModelConfig
from clippings.runtime.manifest import Manifest, Parity, Thresholds
from clippings.runtime.onnx_model import OUTPUTS as SERVED_OUTPUTS, OnnxEmbedder
from clippings.runtime.preprocess import HASHED_TOKENIZERS

log = logging.getLogger(__name__)

OPSET = 17  # pinned: ONNX Runtime 1.16+ and onnxruntime-gpu all run it
INPUTS = ["pixels", "text_ids"]
OUTPUTS = list(SERVED_OUTPUTS)  # the names OnnxEmbedder fetches
# Minimum cosine between ONNX Runtime and PyTorch embeddings, per variant.
TOLERANCE = {"fp32": 0.999, "fp16": 0.995, "int8": 0.97}
# Most the similarity of two texts' vectors should move, per variant, past which the export
# warns: what a decision sees. A vector at cosine 0.998 can still move pairs by 0.024 (int8.py),
# enough to chain single linkage. A warning, not a refusal: a barely trained model's texts sit
# close together, and int8 moves their pairs by 0.06 (the tests' tiny model); the decision of
# a variant is tuned on its own vectors (`clippings calibrate --variant`) and scored by
# `clippings eval --variant`. The image tower's pairs are recorded (0.02 in the news int8 graph,
# where no decision changed).
TEXT_PAIR_TOLERANCE = {"fp32": 0.002, "fp16": 0.005, "int8": 0.01}
VARIANT_FILES = {"fp32": "model.onnx", "fp16": "model.fp16.onnx", "int8": "model.int8.onnx"}


def convert(
    model: torch.nn.Module, cfg: ModelConfig, out_dir: Path, variants: tuple[str, ...], name: str | None,
    image_weight: float, thresholds: Thresholds, images: list, texts: list[str],
) -> Manifest:
    """Write the graphs (and a Hugging Face tokenizer) into out_dir and gate every variant on
    (images, texts) -> the manifest describing them, with the serving decision given; written
    by the caller once calibration has replaced that decision."""
    fp32 = out_dir / VARIANT_FILES["fp32"]
    _torch_export(model, cfg, fp32)
    if cfg.preprocess.tokenizer not in HASHED_TOKENIZERS:  # a Hugging Face tokenizer.json travels with the graph
        shutil.copy(Path(cfg.hf_path) / cfg.preprocess.tokenizer, out_dir / cfg.preprocess.tokenizer)
    if "fp16" in variants:
        _fp16(fp32, out_dir / VARIANT_FILES["fp16"])
    pre = cfg.preprocess
    manifest = Manifest(
        name=name or cfg.name,
        version=hashlib.sha256(fp32.read_bytes()).hexdigest()[:12],
        family=cfg.family,
        embedding_dim=cfg.embed_dim,
        image_weight=image_weight,
        thresholds=thresholds,
        preprocess=pre,
        opset=OPSET,
        files={v: f for v, f in VARIANT_FILES.items() if v == "fp32" or v in variants},
        inputs=[
            {"name": "pixels", "dtype": "float32", "shape": ["batch", pre.channels, pre.image_height, pre.image_width]},
            {"name": "text_ids", "dtype": "int64", "shape": ["batch", pre.text_max_len]},
        ],
        outputs=OUTPUTS,
        created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        preset=cfg.name if cfg.name in PRESETS else "",
    )
    if "int8" in variants:
        _int8(out_dir, manifest, images, texts)
    parity = check_parity(model, out_dir, list(manifest.files), images, texts, manifest=manifest, cfg=cfg)
    return manifest.model_copy(update={"parity": parity})


def _torch_export(model: torch.nn.Module, cfg: ModelConfig, path: Path) -> None:
    if cfg.family == "reader":
        from clippings.export.reader import export_reader

        return export_reader(model, cfg, path, OPSET, OUTPUTS)
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
    fold_pads_file(path)  # fp16 and int8 are made from this graph: they inherit the fold


def _fp16(src: Path, dst: Path) -> None:
    import onnx
    from onnxconverter_common import float16

    # The graph's Casts stay fp32: the converter retypes a Cast's output but not its `to`
    # attribute, which leaves the padding mask of the text tower as an invalid graph. Blocked by
    # name, not by op type: the converter puts Casts around each blocked node it meets (a photo
    # trunk's Resize), and a blocked op type would block those too, one Cast before another
    # without end.
    model = onnx.load(str(src))
    model = float16.convert_float_to_float16(
        model, keep_io_types=True, op_block_list=float16.DEFAULT_OP_BLOCK_LIST,
        node_block_list=[n.name for n in model.graph.node if n.op_type == "Cast"],
        check_fp16_ready=False,  # a reader graph already stores its character table as float16
    )
    onnx.save(model, str(dst))


def _int8(out_dir: Path, manifest: Manifest, images: list, texts: list[str]) -> None:
    from clippings.export.int8 import quantize_int8

    if manifest.family == "reader":
        raise ExportError("--int8 is not offered for the reader family: quantising the recogniser's "
                          "convolutions breaks its reading (docs/model.md)")
    # Calibrated on every other clipping of the sample; the parity gate then scores them all.
    calib = slice(None, None, 2) if len(texts) >= 64 else slice(None)
    fp32 = OnnxEmbedder(out_dir, variant="fp32", providers=["CPUExecutionProvider"], manifest=manifest)
    pixels, _, ids, _ = fp32.prepare(images[calib], texts[calib])
    quantize_int8(out_dir / VARIANT_FILES["fp32"], out_dir / VARIANT_FILES["int8"], pixels, ids)


def _vision_input(cfg: ModelConfig | None, pixels: np.ndarray) -> torch.Tensor:
    if cfg is not None and cfg.family == "reader":
        from clippings.export.reader import torch_vision_input

        return torch_vision_input(cfg, pixels)
    return torch.from_numpy(pixels)


def _parity(a: np.ndarray, b: np.ndarray) -> Parity:
    cos = np.sum(a * b, axis=1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return {"max_abs_diff": float(np.abs(a - b).max()), "min_cosine": float(cos.min()), "mean_cosine": float(cos.mean())}


def pair_drift(a: np.ndarray, b: np.ndarray) -> float:
    """The most any pair's cosine moves from b's rows to a's (0.0 for fewer than two rows)."""
    if len(a) < 2:
        return 0.0
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return float(np.abs(a @ a.T - b @ b.T).max())


def check_parity(model: torch.nn.Module, model_dir: Path, variants: list[str], images: list, texts: list[str],
                 manifest: Manifest | None = None, cfg: ModelConfig | None = None) -> dict[str, Parity]:
    """The export gate: each variant's graph in model_dir, run by ONNX Runtime, against the
    PyTorch model on the same clippings -> parity per variant; ExportError past TOLERANCE.
    manifest: the one describing model_dir when it is not written there yet."""
    parity: dict[str, Parity] = {}
    for variant in variants:
        emb = OnnxEmbedder(model_dir, variant=variant, providers=["CPUExecutionProvider"], manifest=manifest)
        pixels, ip, ids, tp = emb.prepare(images, texts)
        ort_img, ort_txt = emb.run(pixels, ids)
        with torch.no_grad():
            pt_img, pt_txt = model(_vision_input(cfg, pixels), torch.from_numpy(ids))
        # Only towers that saw input count: an absent modality's output is ignored when pooling.
        hi, ht = ip > 0, tp > 0
        p = _parity(np.concatenate([ort_img[hi], ort_txt[ht]]), np.concatenate([pt_img.numpy()[hi], pt_txt.numpy()[ht]]))
        p |= {"image_pair_drift": pair_drift(ort_img[hi], pt_img.numpy()[hi]),
              "text_pair_drift": pair_drift(ort_txt[ht], pt_txt.numpy()[ht])}
        parity[variant] = p
        log.info("parity variant=%s n=%d max_abs_diff=%.2e min_cosine=%.6f pair drift image=%.4f text=%.4f", variant,
                 len(texts), p["max_abs_diff"], p["min_cosine"], p["image_pair_drift"], p["text_pair_drift"])
        if p["min_cosine"] < TOLERANCE[variant]:
            raise ExportError(
                f"{variant}: ONNX Runtime and PyTorch disagree (min cosine {p['min_cosine']:.6f} < {TOLERANCE[variant]}, "
                f"max abs diff {p['max_abs_diff']:.2e}); not exported"
            )
        if p["text_pair_drift"] > TEXT_PAIR_TOLERANCE[variant]:
            log.warning("%s: ONNX Runtime moves the similarity of two texts by up to %.4f from PyTorch's (more than "
                        "%s): compare its decisions (clippings eval --variant %s) before serving it", variant,
                        p["text_pair_drift"], TEXT_PAIR_TOLERANCE[variant], variant)
    return parity
