"""The int8 variant: static (calibrated) quantisation of the convolutions, QDQ format.

Measured on the news model (docs/performance.md): dynamic quantisation reaches only the
matrix products and the character embedding, which are a small share of the time, while
ONNX Runtime runs ConvInteger slower than fp32 Conv; static QDQ lets it fuse the
convolutions into int8 kernels, about 1.8x faster per clipping. Two parts stay fp32, because
quantising them cost more accuracy than they save time: the first image convolution (it sees
raw pixels, whose range one scale serves badly: the image embedding fell to cosine 0.86 of
fp32 when it was quantised; a photo trunk's stem beside it likewise) and the projections (Gemm) into the embedding space.
The character table of the text convolution (a Gather from a large weight) is stored in int8
too. The n-gram bag's table (36,864 rows, 19 MB in fp32, most of a hybrid graph's bytes) is
stored in float16 instead: a bag sums hundreds of rows, so one int8 scale for the whole table
moved the similarity of two captions by up to 0.024 (news-shift8, 2026-12-01) while each
text vector stayed at cosine 0.998 of fp32, and single linkage at a cut of 0.73 chained
through that: the served news model's text tower fell from 0.788 to 0.626 ARI there. In
float16 the same pairs move by 0.005 at most.

A graph with no convolution but the first (a transformer: the hf-clip family) keeps the
dynamic quantisation of its matrix products instead.

Calibration uses clippings the caller passes (the export's own sample of held-out
clippings), a different half from those the parity gate scores where there are enough.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clippings.models.photo_trunk import GRAPH_SCOPE


class _Batches:
    """onnxruntime's CalibrationDataReader protocol: feeds of the graph's inputs, then None."""

    def __init__(self, pixels: np.ndarray, text_ids: np.ndarray, batch: int = 32):
        self.feeds = iter([{"pixels": pixels[i : i + batch], "text_ids": text_ids[i : i + batch]}
                           for i in range(0, len(pixels), batch)])

    def get_next(self) -> dict | None:
        return next(self.feeds, None)


def first_image_convs(model) -> list[str]:
    """The convolutions nearest the `pixels` input: those reached from it through non-Conv
    nodes only (the tower's first, and a photo trunk's stem beside it)."""
    consumers: dict[str, list] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    frontier, seen, first = ["pixels"], set(), []
    while frontier:
        for node in consumers.get(frontier.pop(0), []):
            if node.name in seen:
                continue
            seen.add(node.name)
            if node.op_type == "Conv":
                first.append(node.name)
            else:
                frontier.extend(node.output)
    return first


def embedding_tables(model, min_rows: int = 1024) -> list[str]:
    """Gather nodes that look rows up in a weight of at least min_rows rows (the positional
    slice and shape arithmetic are Gathers too, and stay as they are)."""
    shapes = {t.name: tuple(t.dims) for t in model.graph.initializer}
    return [n.name for n in model.graph.node
            if n.op_type == "Gather" and len(shapes.get(n.input[0], ())) == 2 and shapes[n.input[0]][0] >= min_rows]


def bag_tables(model) -> list[str]:
    """The embedding tables whose rows a bag sums (encoders.NgramBagEncoder.table), by name."""
    weights = {n.name: n.input[0] for n in model.graph.node if n.op_type == "Gather"}
    return [name for name in embedding_tables(model) if weights[name].endswith("table.weight")]


def half_tables(path: Path, gathers: list[str]) -> None:
    """Store the weight each of these Gather nodes reads in float16, and cast the rows it
    gathers back to float32: half the bytes, and the precision a sum of rows needs."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    weights = {t.name: t for t in model.graph.initializer}
    nodes = list(model.graph.node)
    for gather in [n for n in nodes if n.name in gathers]:
        table = weights[gather.input[0]]
        half = numpy_helper.from_array(numpy_helper.to_array(table).astype(np.float16), table.name + "_fp16")
        model.graph.initializer.remove(table)
        model.graph.initializer.append(half)
        rows = gather.output[0]
        gather.input[0], gather.output[0] = half.name, rows + "_fp16"
        cast = helper.make_node("Cast", [rows + "_fp16"], [rows], name=gather.name + "_to_float", to=TensorProto.FLOAT)
        nodes.insert(nodes.index(gather) + 1, cast)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def quantize_int8(src: Path, dst: Path, pixels: np.ndarray, text_ids: np.ndarray) -> None:
    """src (fp32 graph) -> dst: every Conv but the first image ones and a photo trunk's, and the
    embedding tables but a bag's, in int8 (QDQ, per-channel weights), calibrated by MinMax on (pixels, text_ids); a
    bag's table in float16."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    model = onnx.load(str(src))
    keep = first_image_convs(model)
    # A pretrained photo trunk's convolutions (models/photo_trunk.py) stay fp32: quantised with
    # the rest, the photo's vector fell to cosine 0.85-0.88 of fp32 (the 96-pixel news model and a
    # tiny model's export, 2026-12-02); docs/performance.md has the cost of keeping them.
    convs = [n.name for n in model.graph.node
             if n.op_type == "Conv" and n.name not in keep and not n.name.startswith(GRAPH_SCOPE)]
    bags = bag_tables(model)
    tables = [t for t in embedding_tables(model) if t not in bags]
    if not convs:  # a transformer (hf-clip): its matmuls, dynamically, as before
        from onnxruntime.quantization import quantize_dynamic

        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"])
        return
    quantize_static(
        str(src), str(dst), _Batches(pixels, text_ids), quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["Conv", "Gather"], nodes_to_quantize=convs + tables, per_channel=True,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
    )
    if bags:
        half_tables(dst, bags)
