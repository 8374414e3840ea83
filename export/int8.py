"""The int8 variant: static (calibrated) quantisation of the convolutions, QDQ format.

Measured on the news model (docs/performance.md): dynamic quantisation reaches only the
matrix products and the character embedding, which are a small share of the time, while
ONNX Runtime runs ConvInteger slower than fp32 Conv; static QDQ lets it fuse the
convolutions into int8 kernels, about 1.8x faster per clipping. Two parts stay fp32, because
quantising them cost more accuracy than they save time: the first image convolution (it sees
raw pixels, whose range one scale serves badly: the image embedding fell to cosine 0.86 of
fp32 when it was quantised) and the projections (Gemm) into the embedding space.
The embedding tables (a Gather from a large weight: the character table, the n-gram bag's
36,864 rows) are stored in int8 too: they are most of a hybrid graph's bytes (the n-gram
table alone 19 MB in fp32) and cost little accuracy (news 2026-11-30: text cosine to fp32
0.9987 at worst, 0.9995 on average, over 128 validation clippings).

A graph with no convolution but the first (a transformer: the hf-clip family) keeps the
dynamic quantisation of its matrix products instead.

Calibration uses clippings the caller passes (the export's own sample of held-out
clippings), a different half from those the parity gate scores where there are enough.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class _Batches:
    """onnxruntime's CalibrationDataReader protocol: feeds of the graph's inputs, then None."""

    def __init__(self, pixels: np.ndarray, text_ids: np.ndarray, batch: int = 32):
        self.feeds = iter([{"pixels": pixels[i : i + batch], "text_ids": text_ids[i : i + batch]}
                           for i in range(0, len(pixels), batch)])

    def get_next(self) -> dict | None:
        return next(self.feeds, None)


def first_image_conv(model) -> str | None:
    """The name of the convolution nearest the `pixels` input (through any non-Conv nodes)."""
    consumers: dict[str, list] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    frontier, seen = ["pixels"], set()
    while frontier:
        for node in consumers.get(frontier.pop(0), []):
            if node.op_type == "Conv":
                return node.name
            if node.name not in seen:
                seen.add(node.name)
                frontier.extend(node.output)
    return None


def embedding_tables(model, min_rows: int = 1024) -> list[str]:
    """Gather nodes that look rows up in a weight of at least min_rows rows (the positional
    slice and shape arithmetic are Gathers too, and stay as they are)."""
    shapes = {t.name: tuple(t.dims) for t in model.graph.initializer}
    return [n.name for n in model.graph.node
            if n.op_type == "Gather" and len(shapes.get(n.input[0], ())) == 2 and shapes[n.input[0]][0] >= min_rows]


def quantize_int8(src: Path, dst: Path, pixels: np.ndarray, text_ids: np.ndarray) -> None:
    """src (fp32 graph) -> dst: every Conv but the first image one, and the embedding tables, in
    int8 (QDQ, per-channel weights), calibrated by MinMax on (pixels, text_ids)."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    model = onnx.load(str(src))
    keep = [n for n in [first_image_conv(model)] if n]
    convs = [n.name for n in model.graph.node if n.op_type == "Conv" and n.name not in keep]
    tables = embedding_tables(model)
    if not convs:  # a transformer (hf-clip): its matmuls, dynamically, as before
        from onnxruntime.quantization import quantize_dynamic

        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"])
        return
    quantize_static(
        str(src), str(dst), _Batches(pixels, text_ids), quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["Conv", "Gather"], nodes_to_quantize=convs + tables, per_channel=True,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
    )
