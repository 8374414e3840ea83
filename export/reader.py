"""Export of the reader family: the trained head as ONNX, joined behind the pretrained
recogniser's own graph into one model with the usual inputs (`pixels`, `text_ids`).

The trunk is not converted to PyTorch and back: the served graph holds the very graph the
training features came from (raised to the exported opset), and the parity gate compares
the joined graph with that graph followed by the PyTorch head.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from clippings.errors import ExportError
from clippings.models.config import ModelConfig
from clippings.models.reader import ServingReader
from clippings.models.trunk import TrunkRunner, trunk_path, trunk_spec

PREFIX = "trunk/"


def export_reader(model: torch.nn.Module, cfg: ModelConfig, path: Path, opset: int, outputs: list[str]) -> None:
    head_path = path.with_name(path.name + ".head")
    classes = model.class_rows.shape[0] + 1  # the blank and every class
    posteriors = torch.rand(2, 3, classes)
    ids = torch.ones(2, cfg.preprocess.text_max_len, dtype=torch.long)
    # No constant folding: it would store the float16 table widened, as float32 (twice the file).
    torch.onnx.export(
        ServingReader(model).eval(), (posteriors, ids), str(head_path), dynamo=False, opset_version=opset,
        do_constant_folding=False,
        input_names=["posteriors", "text_ids"], output_names=outputs,
        dynamic_axes={"posteriors": {0: "batch", 1: "steps"}, "text_ids": {0: "batch"},
                      **{n: {0: "batch"} for n in outputs}},
    )
    try:
        _join(head_path, cfg.trunk, path, opset)
    finally:
        head_path.unlink(missing_ok=True)


def _join(head_path: Path, trunk: str, out: Path, opset: int) -> None:
    import onnx
    from onnx import compose, version_converter

    spec = trunk_spec(trunk)
    body = version_converter.convert_version(onnx.load(str(trunk_path(trunk))), opset)
    del body.metadata_props[:]  # its character list: the head has it folded into its table
    body = compose.add_prefix(body, PREFIX)
    head = onnx.load(str(head_path))
    body.ir_version = head.ir_version
    joined = compose.merge_models(body, head, io_map=[(PREFIX + spec.output, "posteriors")])
    for node in joined.graph.node:
        node.input[:] = ["pixels" if i == PREFIX + spec.input else i for i in node.input]
    (pixels,) = [i for i in joined.graph.input if i.name == PREFIX + spec.input]
    pixels.name = "pixels"
    try:
        onnx.checker.check_model(joined)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"the trunk and the head do not join into a valid graph: {exc}") from exc
    onnx.save(joined, str(out))


def torch_vision_input(cfg: ModelConfig, pixels: np.ndarray) -> torch.Tensor:
    """What the PyTorch model takes for these pixels: the trunk's reading, as in training."""
    return torch.from_numpy(TrunkRunner(cfg.trunk, threads=1)(pixels))
