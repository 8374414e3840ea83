"""Print and scan damage for shift sets, written independently of the training generator.

Each crop gets a random subset of these effects, more and stronger with `severity` in [0, 1]:

| effect | what it does |
|---|---|
| ink_bleed | ink spreads: blur of the ink layer then a soft threshold, strokes thicken and close |
| dropout | worn type: random patches of the ink fade to paper |
| rule | a printed rule or column line across or beside the text |
| blot | ink blots and smudges over glyphs |
| show_through | the reverse page's text, mirrored and faint |
| edge_cut | the crop is cut into the first or last glyph |
| low_res | scanned at a low resolution: down to 35-70 % and back (box/nearest) |
| jpeg | heavy JPEG compression (quality 6-30), applied when the crop is saved |
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

EFFECTS = ("ink_bleed", "dropout", "rule", "blot", "show_through", "edge_cut", "low_res", "jpeg")


def _ink_mask(arr: np.ndarray) -> tuple[np.ndarray, float, float]:
    paper = float(np.percentile(arr, 90))
    ink = float(np.percentile(arr, 3))
    cover = np.clip((paper - arr) / max(paper - ink, 1.0), 0, 1)
    return cover, paper, ink


def _compose(cover: np.ndarray, paper: float, ink: float) -> np.ndarray:
    return paper + (ink - paper) * np.clip(cover, 0, 1)


@dataclass(frozen=True)
class _Crop:
    """What every effect needs to know of the crop being damaged."""

    h: int
    w: int
    size: int  # about one character's size
    vertical: bool
    severity: float
    rng: np.random.Generator

    def want(self, p: float) -> bool:
        return bool(self.rng.random() < p * (0.25 + self.severity))


def _ink_bleed(cover: np.ndarray, c: _Crop) -> np.ndarray:
    radius = 0.3 + 1.0 * c.severity * c.rng.random()
    blurred = Image.fromarray((cover * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(radius))
    return np.clip((np.asarray(blurred, dtype=np.float32) / 255.0 - 0.18) / 0.45, 0, 1)


def _dropout(cover: np.ndarray, c: _Crop) -> np.ndarray:
    rng, h, w = c.rng, c.h, c.w
    fade = np.zeros_like(cover)
    for _ in range(int(rng.integers(2, 4 + int(12 * c.severity)))):
        cy, cx = rng.integers(0, h), rng.integers(0, w)
        r = rng.uniform(0.03, 0.08 + 0.06 * c.severity) * c.size
        yy, xx = np.ogrid[:h, :w]
        fade = np.maximum(fade, ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r).astype(np.float32))
    fade = np.asarray(Image.fromarray((fade * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.0)),
                      dtype=np.float32) / 255.0
    return cover * (1 - rng.uniform(0.6, 1.0) * fade)


def _rule(cover: np.ndarray, c: _Crop) -> np.ndarray:
    rng, h, w = c.rng, c.h, c.w
    layer = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(layer)
    thick = int(rng.integers(1, 2 + int(2 * c.severity)))
    across = rng.random() < 0.35
    if c.vertical:
        x = int(rng.uniform(0.2, 0.8) * w) if across else int(rng.choice([1, w - 2]))
        d.line([(x, 0), (x + int(rng.integers(-2, 3)), h)], fill=255, width=thick)
    else:
        y = int(rng.uniform(0.25, 0.75) * h) if across else int(rng.choice([1, h - 2]))
        d.line([(0, y), (w, y + int(rng.integers(-2, 3)))], fill=255, width=thick)
    return np.maximum(cover, np.asarray(layer, dtype=np.float32) / 255.0 * rng.uniform(0.6, 1.0))


def _blot(cover: np.ndarray, c: _Crop) -> np.ndarray:
    rng = c.rng
    layer = Image.new("L", (c.w, c.h), 0)
    d = ImageDraw.Draw(layer)
    for _ in range(int(rng.integers(1, 2 + int(3 * c.severity)))):
        cx, cy = rng.uniform(0, c.w), rng.uniform(0, c.h)
        rx, ry = rng.uniform(0.08, 0.3) * c.size, rng.uniform(0.08, 0.3) * c.size
        d.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=int(rng.integers(120, 256)))
    layer = layer.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.0)))
    return np.maximum(cover, np.asarray(layer, dtype=np.float32) / 255.0)


def _show_through(cover: np.ndarray, c: _Crop) -> np.ndarray:
    rng, h = c.rng, c.h
    ghost = np.fliplr(np.roll(cover, (int(rng.integers(-h // 3, h // 3 + 1)), int(rng.integers(0, c.w))), (0, 1)))
    if rng.random() < 0.5:
        ghost = np.flipud(ghost)
    return np.maximum(cover, ghost * rng.uniform(0.12, 0.3 + 0.15 * c.severity))


def _edge_cut(img: Image.Image, c: _Crop) -> Image.Image:
    cut = int(c.rng.uniform(0.15, 0.45) * c.size)
    w, h = c.w, c.h
    if c.vertical:
        box = (0, cut, w, h) if c.rng.random() < 0.5 else (0, 0, w, max(h - cut, c.size))
    else:
        box = (cut, 0, w, h) if c.rng.random() < 0.5 else (0, 0, max(w - cut, c.size), h)
    return img.crop(box)


def _low_res(img: Image.Image, c: _Crop) -> Image.Image:
    rng = c.rng
    f = rng.uniform(0.35, 0.7) if c.severity > 0.4 else rng.uniform(0.6, 0.85)
    small = img.resize((max(4, int(img.width * f)), max(4, int(img.height * f))), Image.Resampling.BOX)
    return small.resize(img.size, Image.Resampling.NEAREST if rng.random() < 0.5 else Image.Resampling.BILINEAR)


# In the order they are drawn: the same seed gives the same damage.
_INK_EFFECTS = (("ink_bleed", 0.45, _ink_bleed), ("dropout", 0.4, _dropout), ("rule", 0.3, _rule),
                ("blot", 0.25, _blot), ("show_through", 0.35, _show_through))
_SCAN_EFFECTS = (("edge_cut", 0.3, _edge_cut), ("low_res", 0.4, _low_res))


def damage(img: Image.Image, severity: float, vertical: bool, rng: np.random.Generator) -> tuple[Image.Image, list[str], int | None]:
    """-> (damaged 'L' image, effects applied, JPEG quality or None)."""
    cover, paper, ink = _ink_mask(np.asarray(img, dtype=np.float32))
    h, w = cover.shape
    c = _Crop(h=h, w=w, size=w if vertical else h, vertical=vertical, severity=severity, rng=rng)
    applied: list[str] = []
    for name, p, effect in _INK_EFFECTS:
        if c.want(p):
            applied.append(name)
            cover = effect(cover, c)
    out = _compose(cover, paper, ink)
    out = out + rng.normal(0, 3 + 10 * severity, out.shape)  # paper grain and scanner noise
    img = Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), "L")
    for name, p, effect in _SCAN_EFFECTS:
        if c.want(p):
            applied.append(name)
            img = effect(img, c)
    if rng.random() < 0.15 + 0.05 * severity:
        angle = rng.normal(0, 0.8 + 1.5 * severity)
        img = img.rotate(angle, resample=Image.Resampling.BILINEAR, expand=False, fillcolor=int(paper))
    quality = None
    if c.want(0.5):
        applied.append("jpeg")
        quality = int(rng.integers(6, 31)) if severity > 0.3 else int(rng.integers(25, 50))
    return img, applied, quality


def encode(img: Image.Image, quality: int | None) -> tuple[bytes, str]:
    """-> (file bytes, extension): JPEG at `quality`, else PNG."""
    buf = io.BytesIO()
    if quality is not None:
        img.save(buf, "JPEG", quality=quality)
        return buf.getvalue(), "jpg"
    img.save(buf, "PNG", optimize=True)
    return buf.getvalue(), "png"
