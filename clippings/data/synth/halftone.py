"""A scene printed as a newspaper photo and scanned from a yellowed clipping.

TRAIN: a clustered-dot halftone screen at 45 degrees, gaussian blur, fine grain, rotation
up to 1.5 degrees. HELDOUT: error-diffusion dither or a coarse line screen, motion blur,
blotchy paper stains and show-through, rotation 1.5-4 degrees. Both: a crop of 80-97% of
the scene, scaled to 96-128 px on the short side, newspaper tone curves, yellowed paper.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from clippings.data.synth.degrade import motion_blur_kernel

SHORT_SIDE = (96, 128)
_SCREEN_SCALE = 2  # the halftone is made at twice the output resolution, then scanned down


def print_photo(scene: Image.Image, rng: np.random.Generator, family: str, severity: float) -> Image.Image:
    """-> an RGB clipping of `scene`."""
    if family not in ("train", "heldout"):
        raise ValueError(f"unknown degradation family {family!r}")
    img = _crop(scene, rng)
    short = int(rng.integers(SHORT_SIDE[0], SHORT_SIDE[1] + 1))
    w, h = img.size
    f = short / min(w, h)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    lum = np.asarray(ImageOps.grayscale(img).resize((size[0] * _SCREEN_SCALE, size[1] * _SCREEN_SCALE),
                                                     Image.Resampling.LANCZOS), np.float32) / 255.0
    lum = _tone(lum, rng, severity)
    ink = _halftone_train(lum, rng) if family == "train" else _halftone_heldout(lum, rng)
    ink_img = Image.fromarray(np.clip(ink * 255, 0, 255).astype(np.uint8), "L")
    ink_img = ink_img.resize(size, Image.Resampling.BOX)  # the scanner averages the dots
    if family == "train":
        ink_img = ink_img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.2, 0.5 + 0.6 * severity))))
    elif rng.random() < 0.7:
        ink_img = ink_img.filter(motion_blur_kernel(rng))
    ink = np.asarray(ink_img, np.float32) / 255.0
    rgb = _on_paper(ink, rng, family, severity)
    angle = float(rng.uniform(-1.5, 1.5)) if family == "train" else float(rng.uniform(1.5, 4.0) * rng.choice([-1, 1]))
    paper = tuple(int(v) for v in rgb[0, 0])
    return rgb_image(rgb).rotate(angle, Image.Resampling.BILINEAR, expand=True, fillcolor=paper)


def rgb_image(arr: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "RGB")


def _crop(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    w, h = img.size
    area = rng.uniform(0.80, 0.97)
    stretch = rng.uniform(0.95, 1.05)
    cw = min(w, int(round(w * np.sqrt(area) * stretch)))
    ch = min(h, int(round(h * np.sqrt(area) / stretch)))
    x0 = int(rng.integers(0, w - cw + 1))
    y0 = int(rng.integers(0, h - ch + 1))
    return img.crop((x0, y0, x0 + cw, y0 + ch))


def _tone(lum: np.ndarray, rng: np.random.Generator, s: float) -> np.ndarray:
    """Newsprint tone: crushed shadows, lifted or muddy highlights, some contrast."""
    gamma = rng.uniform(0.7, 1.4)
    contrast = rng.uniform(0.8, 1.3 + 0.2 * s)
    bright = rng.uniform(-0.1, 0.1)
    out = (np.power(np.clip(lum, 0, 1), gamma) - 0.5) * contrast + 0.5 + bright
    return np.clip(out, 0.0, 1.0)


def _halftone_train(lum: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Clustered dots on a 45-degree screen; -> ink coverage in [0, 1]."""
    h, w = lum.shape
    period = rng.uniform(3.0, 4.5)
    angle = np.deg2rad(45 + rng.uniform(-5, 5))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u = (xx * np.cos(angle) + yy * np.sin(angle)) * (2 * np.pi / period)
    v = (-xx * np.sin(angle) + yy * np.cos(angle)) * (2 * np.pi / period)
    screen = (np.cos(u) + np.cos(v)) * 0.25 + 0.5  # in [0, 1]
    return (lum < screen).astype(np.float32)


def _halftone_heldout(lum: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Error diffusion (Floyd-Steinberg), or a coarse line screen; -> ink coverage."""
    if rng.random() < 0.5:
        dithered = Image.fromarray((lum * 255).astype(np.uint8), "L").convert("1")
        return 1.0 - np.asarray(dithered, np.float32)
    h, w = lum.shape
    period = rng.uniform(2.6, 3.6)
    angle = np.deg2rad(rng.choice([0.0, 90.0, 30.0, 60.0]))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u = (xx * np.cos(angle) + yy * np.sin(angle)) * (2 * np.pi / period)
    return (lum < np.cos(u) * 0.5 + 0.5).astype(np.float32)


def _on_paper(ink: np.ndarray, rng: np.random.Generator, family: str, s: float) -> np.ndarray:
    """Ink coverage -> RGB on aged newsprint."""
    h, w = ink.shape
    age = rng.uniform(0.0, 0.6 + 0.4 * s)
    paper = np.array([242 - 14 * age, 236 - 30 * age, 218 - 70 * age], np.float32)
    ink_rgb = np.float32(rng.uniform(20, 50)) + np.array(rng.uniform(-3, 3, 3) + [4, 2, 0], np.float32)
    density = rng.uniform(0.75, 0.97)
    cov = ink * density
    if family == "train":
        cov = cov + rng.normal(0, 0.03 + 0.05 * s, cov.shape)  # fine grain
    else:
        grid = rng.normal(0, 1, (max(2, h // 12), max(2, w // 12))).astype(np.float32)
        stains = np.asarray(Image.fromarray(grid, "F").resize((w, h), Image.Resampling.BICUBIC), np.float32)
        paper_field = paper[None, None, :] * (1.0 - (0.03 + 0.05 * s) * np.clip(stains, 0, None))[..., None]
        back = np.asarray(Image.fromarray((ink * 255).astype(np.uint8)).transpose(Image.Transpose.FLIP_LEFT_RIGHT),
                          np.float32) / 255.0
        cov = cov + float(rng.uniform(0.03, 0.1)) * back  # the other side of the page
        cov = np.clip(cov, 0, 1)
        return paper_field * (1 - cov[..., None]) + ink_rgb * cov[..., None]
    cov = np.clip(cov, 0, 1)[..., None]
    return paper[None, None, :] * (1 - cov) + ink_rgb * cov
