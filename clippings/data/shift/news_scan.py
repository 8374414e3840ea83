"""Print and scan damage of a typeset caption, written for the news shift set.

Works on the ink coverage of a whole column (not one line: shift/damage.py is for
single-line crops) and differs from the training generator's (synth/degrade.py). Each
caption gets a subset of these, more and stronger with `severity` in [0, 1]:

| effect | what it does |
|---|---|
| uneven_ink | ink density drifts over the column (a roller running dry): faded words |
| broken_type | worn or badly inked type: fine gaps eat into strokes |
| fill_in | ink spreads on soft newsprint: counters close, letters merge |
| warp | the page was not flat on the scanner: baselines wave |
| crease | a fold across the column: a bright or dark band, the text beyond shifted |
| bleed_through | the reverse page's print seen through thin paper |
| stain | foxing and water stains: low-contrast dark blotches |
| edge_cut | the scissors cut into the first or last letters of the lines |
| neighbour | a sliver of the next column's text at one edge |
| microfilm | a second-generation copy: contrast pushed, greys crushed, then rescanned |

then paper and ink tones, a slight skew, scanner noise, a lower archive resolution
(40-100% of the typeset size: the OCR reader is told the factor, as it would know a scan's
dpi) and JPEG compression (quality 20-85).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

EFFECTS = ("uneven_ink", "broken_type", "fill_in", "warp", "crease", "bleed_through", "stain", "edge_cut",
           "neighbour", "microfilm")


@dataclass(frozen=True)
class _Col:
    em: int
    severity: float
    rng: np.random.Generator

    def want(self, p: float) -> bool:
        return bool(self.rng.random() < p * (0.3 + self.severity))


def smooth_field(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Smooth noise in [0, 1]: random values on a coarse grid, upsampled bicubically."""
    gh, gw = max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)
    grid = Image.fromarray((rng.random((gh, gw)) * 255).astype(np.uint8))
    return np.asarray(grid.resize((w, h), Image.Resampling.BICUBIC), np.float32) / 255.0


def _uneven_ink(cov: np.ndarray, c: _Col) -> np.ndarray:
    field = smooth_field(c.rng, *cov.shape, cell=c.em * c.rng.uniform(2, 6))
    return cov * np.clip(1.15 - (0.5 + 0.6 * c.severity) * field, 0.15, 1)


def _broken_type(cov: np.ndarray, c: _Col) -> np.ndarray:
    speck = smooth_field(c.rng, *cov.shape, cell=max(1.5, c.em / 14))
    cut = 0.82 - 0.22 * c.severity
    return cov * np.clip((cut - speck) * 8, 0, 1)


def _fill_in(cov: np.ndarray, c: _Col) -> np.ndarray:
    r = c.em * c.rng.uniform(0.02, 0.035 + 0.03 * c.severity)
    blurred = np.asarray(Image.fromarray((cov * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(r)),
                         np.float32) / 255.0
    return np.clip(blurred * c.rng.uniform(1.5, 2.3), 0, 1)


def _warp(cov: np.ndarray, c: _Col) -> np.ndarray:
    h, w = cov.shape
    amp = c.em * c.rng.uniform(0.05, 0.12 + 0.2 * c.severity)
    period = w * c.rng.uniform(0.6, 2.5)
    phase = c.rng.uniform(0, 2 * np.pi)
    shift = np.round(amp * np.sin(2 * np.pi * np.arange(w) / period + phase)).astype(int)
    rows = (np.arange(h)[:, None] - shift[None, :]) % h
    return cov[rows, np.arange(w)[None, :]]


def _crease(cov: np.ndarray, c: _Col) -> np.ndarray:
    h, w = cov.shape
    y = int(c.rng.uniform(0.2, 0.8) * h)
    out = cov.copy()
    out[y:] = np.roll(cov[y:], int(c.rng.integers(-2, 3)), axis=1)
    band = np.exp(-((np.arange(h) - y) / max(1.0, c.em * 0.15)) ** 2)[:, None]
    return np.clip(out + band * c.rng.uniform(-0.5, 0.35), 0, 1)


def _bleed_through(cov: np.ndarray, c: _Col) -> np.ndarray:
    h, w = cov.shape
    ghost = np.fliplr(np.roll(cov, (int(c.rng.integers(h)), int(c.rng.integers(w))), (0, 1)))
    ghost = np.asarray(Image.fromarray((ghost * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.2)),
                       np.float32) / 255.0
    return np.maximum(cov, ghost * c.rng.uniform(0.1, 0.2 + 0.2 * c.severity))


def _stain(cov: np.ndarray, c: _Col) -> np.ndarray:
    field = smooth_field(c.rng, *cov.shape, cell=c.em * c.rng.uniform(3, 8))
    return np.maximum(cov, np.clip(field - 0.55, 0, 1) * c.rng.uniform(0.4, 0.8 + 0.4 * c.severity))


def _edge_cut(cov: np.ndarray, c: _Col) -> np.ndarray:
    ink_cols = np.flatnonzero(cov.max(axis=0) > 0.5)
    if len(ink_cols) < 2 * c.em:
        return cov
    cut = int(c.em * c.rng.uniform(0.15, 0.3 + 0.4 * c.severity))
    if c.rng.random() < 0.5:
        return cov[:, ink_cols[0] + cut:]
    return cov[:, : ink_cols[-1] - cut]


def _neighbour(cov: np.ndarray, c: _Col) -> np.ndarray:
    h, w = cov.shape
    strip = Image.new("L", (int(c.em * c.rng.uniform(0.6, 1.6)), h), 0)
    d = ImageDraw.Draw(strip)
    pitch = int(c.em * c.rng.uniform(1.1, 1.3))
    for y in range(int(c.em * 0.3), h - c.em, pitch):  # the ends of another column's lines: letter-like bars
        x = 0
        while x < strip.width:
            wd = int(c.rng.integers(2, max(3, c.em // 2)))
            d.rectangle([x, y + c.em // 4, x + wd, y + int(c.em * 0.75)], fill=int(c.rng.integers(150, 256)))
            x += wd + int(c.rng.integers(2, c.em // 3 + 3))
    gutter = np.zeros((h, int(c.em * c.rng.uniform(0.3, 0.8))), np.float32)
    s = np.asarray(strip, np.float32) / 255.0
    return np.hstack([s, gutter, cov]) if c.rng.random() < 0.5 else np.hstack([cov, gutter, s])


def _microfilm(cov: np.ndarray, c: _Col) -> np.ndarray:
    soft = np.asarray(Image.fromarray((cov * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.8)),
                      np.float32) / 255.0
    return 1 / (1 + np.exp(-(soft - c.rng.uniform(0.3, 0.55)) * 14))


# In drawing order; the same seed gives the same damage.
_EFFECTS = (("uneven_ink", 0.35, _uneven_ink), ("broken_type", 0.35, _broken_type), ("fill_in", 0.3, _fill_in),
            ("warp", 0.3, _warp), ("crease", 0.12, _crease), ("bleed_through", 0.25, _bleed_through),
            ("stain", 0.2, _stain), ("edge_cut", 0.15, _edge_cut), ("neighbour", 0.15, _neighbour),
            ("microfilm", 0.15, _microfilm))


def scan(coverage: Image.Image, em: int, severity: float, rng: np.random.Generator) -> tuple[Image.Image, list[str], float, int]:
    """Ink coverage ('L', 255 = ink) -> (scanned 'L' image, effects, scale factor, JPEG quality)."""
    cov = np.asarray(coverage, np.float32) / 255.0
    c = _Col(em, severity, rng)
    applied = []
    for name, p, effect in _EFFECTS:
        if c.want(p):
            applied.append(name)
            cov = effect(cov, c)
    paper = rng.uniform(190, 245) - 30 * severity * rng.random()
    ink = rng.uniform(15, 60) + 40 * severity * rng.random()
    img = Image.fromarray(np.clip(paper + (ink - paper) * cov, 0, 255).astype(np.uint8), "L")
    skew = float(rng.normal(0, 0.3 + 0.6 * severity))
    img = img.rotate(skew, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=int(paper))
    scale = float(np.clip(rng.uniform(0.55, 1.0) - 0.25 * severity * rng.random(), 0.4, 1.0))
    if scale < 0.98:
        img = img.resize((max(8, round(img.width * scale)), max(8, round(img.height * scale))),
                         Image.Resampling.BOX if rng.random() < 0.5 else Image.Resampling.BILINEAR)
    else:
        scale = 1.0
    arr = np.asarray(img, np.float32) + rng.normal(0, 2 + 9 * severity, (img.height, img.width))
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L")
    quality = int(rng.integers(20, 86) if severity > 0.35 else rng.integers(45, 90))
    return img, applied + [f"skew_{skew:+.2f}"], scale, quality


def encode_jpeg(img: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


__all__ = ["EFFECTS", "encode_jpeg", "scan", "smooth_field"]
