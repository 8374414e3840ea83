"""Cheap on-the-fly print and scan noise on preprocessed batches.

The synthetic renders already vary font and degradation; this adds the continuous
variations (exposure, grain, focus, placement) that a model should never key on, so that
fonts and degradations held out of training still land near their entity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def augment(pixels: torch.Tensor) -> torch.Tensor:  # (B, C, H, W), normalised
    b, dev = pixels.shape[0], pixels.device
    contrast = torch.empty(b, 1, 1, 1, device=dev).uniform_(0.7, 1.3)
    brightness = torch.empty(b, 1, 1, 1, device=dev).uniform_(-0.3, 0.3)
    x = pixels * contrast + brightness
    if torch.rand(()) < 0.3:
        x = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)  # out of focus
    x = x + torch.randn_like(x) * torch.empty(b, 1, 1, 1, device=dev).uniform_(0.0, 0.15)  # grain
    dy, dx = (int(v) for v in torch.randint(-2, 3, (2,)))
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))  # placement in the crop
