"""Cheap on-the-fly print and scan noise on preprocessed batches.

The synthetic renders already vary font and degradation; this adds the continuous
variations (exposure, grain, focus, placement) that a model should never key on, so that
fonts and degradations held out of training still land near their entity.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def reprint(pixels: torch.Tensor) -> torch.Tensor:  # (B, C, H, W), normalised
    """Another paper's print of the same photo: its own crop, tilt, plates and scan resolution.

    Reprints in a real feed differ by more than the generator's screens: a desk crops 75-100%
    of the frame, prints in grey or with plates out of balance, and archives at a lower
    resolution. A photo tower trained without that keys on the generator's rendering, which
    another source does not share."""
    b, dev = pixels.shape[0], pixels.device
    side = torch.empty(b, device=dev).uniform_(0.75, 1.0)  # share of the frame kept, per side
    angle = torch.randn(b, device=dev) * (2.0 * math.pi / 180)
    shift = (1 - side)[:, None] * torch.empty(b, 2, device=dev).uniform_(-1, 1)
    cos, sin = torch.cos(angle) * side, torch.sin(angle) * side
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    x = F.grid_sample(pixels, F.affine_grid(theta, list(pixels.shape), align_corners=False),
                      padding_mode="border", align_corners=False)
    x = x * torch.empty(b, x.shape[1], 1, 1, device=dev).uniform_(0.85, 1.15)  # plates out of balance
    grey = (torch.rand(b, 1, 1, 1, device=dev) < 0.4).to(x.dtype)
    x = grey * x.mean(dim=1, keepdim=True).expand_as(x) + (1 - grey) * x
    if torch.rand(()) < 0.3:  # a low-resolution scan, brought back to the model's size
        h, w = x.shape[2:]
        low = int(torch.randint(h * 3 // 8, h * 3 // 4 + 1, ()))
        x = F.interpolate(F.interpolate(x, size=(low, low * w // h), mode="area"), size=(h, w), mode="bilinear",
                          align_corners=False)
    return x


def augment(pixels: torch.Tensor, photos: bool = False) -> torch.Tensor:  # (B, C, H, W), normalised
    """photos=True: each photo also goes through `reprint` first."""
    if photos:
        pixels = reprint(pixels)
    b, dev = pixels.shape[0], pixels.device
    contrast = torch.empty(b, 1, 1, 1, device=dev).uniform_(0.7, 1.3)
    brightness = torch.empty(b, 1, 1, 1, device=dev).uniform_(-0.3, 0.3)
    x = pixels * contrast + brightness
    if torch.rand(()) < 0.3:
        x = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)  # out of focus
    x = x + torch.randn_like(x) * torch.empty(b, 1, 1, 1, device=dev).uniform_(0.0, 0.15)  # grain
    dy, dx = (int(v) for v in torch.randint(-2, 3, (2,)))
    return torch.roll(x, shifts=(dy, dx), dims=(2, 3))  # placement in the crop
