"""export/pad_fold.py: a zero Pad before a Conv moves into the Conv, and nothing else changes."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from clippings.export.pad_fold import fold_pads


class _Padded(nn.Module):
    """TensorFlow's "same" padding of a stride-2 convolution, as the photo trunk writes it."""

    def __init__(self, pad: tuple[int, int, int, int], mode: str = "constant", value: float = 0.0, reuse: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 5, stride=2)
        self.pad, self.mode, self.value, self.reuse = pad, mode, value, reuse

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, self.pad, mode=self.mode, value=self.value) if self.mode == "constant" else F.pad(x, self.pad, mode=self.mode)
        y = self.conv(padded)
        return y + padded.mean() if self.reuse else y  # a second reader of the padded tensor


def _exported(module: nn.Module, tmp_path) -> onnx.ModelProto:
    torch.manual_seed(0)
    path = tmp_path / "m.onnx"
    torch.onnx.export(module.eval(), (torch.zeros(1, 3, 16, 16),), str(path), dynamo=False, opset_version=17,
                      input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "b"}, "y": {0: "b"}})
    return onnx.load(str(path))


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def test_an_asymmetric_zero_pad_moves_into_the_conv_with_the_same_output(tmp_path):
    model = _exported(_Padded((1, 2, 1, 2)), tmp_path)  # (left, right, top, bottom)
    x = np.random.default_rng(0).normal(size=(3, 3, 16, 16)).astype(np.float32)
    before = _run(model, x)
    assert fold_pads(model) == 1
    assert not [n for n in model.graph.node if n.op_type == "Pad"]
    (conv,) = [n for n in model.graph.node if n.op_type == "Conv"]
    assert next(list(a.ints) for a in conv.attribute if a.name == "pads") == [1, 1, 2, 2]  # top, left, bottom, right
    np.testing.assert_array_equal(_run(model, x), before)


@pytest.mark.parametrize("module", [_Padded((0, 1, 0, 1), value=1.0), _Padded((1, 1, 1, 1), mode="reflect"),
                                    _Padded((0, 1, 0, 1), reuse=True)], ids=["not-zero", "reflect", "two-readers"])
def test_a_pad_that_is_not_the_convs_own_zeros_stays(module, tmp_path):
    model = _exported(module, tmp_path)
    x = np.random.default_rng(1).normal(size=(2, 3, 16, 16)).astype(np.float32)
    before = _run(model, x)
    assert fold_pads(model) == 0
    assert [n for n in model.graph.node if n.op_type == "Pad"]
    np.testing.assert_array_equal(_run(model, x), before)
