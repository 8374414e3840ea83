"""Print-and-scan degradation of text crops, in two disjoint families.

TRAIN: gaussian blur, salt-and-pepper, JPEG artefacts, small rotation, contrast/brightness,
thresholding, erosion/dilation. HELDOUT: motion blur, ink bleed, uneven illumination, paper
texture, show-through, a wider rotation with shear, downscale-upscale. Both share paper and
ink tones and sensor noise. `severity` in [0, 1] scales every effect, so one number drives
both how bad the crop looks and how bad its OCR text is.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter, ImageOps


def degrade(img: Image.Image, rng: np.random.Generator, family: str, severity: float) -> Image.Image:
    """A clean crop (255 paper, 0 ink) -> a printed and scanned one, grayscale."""
    if family == "train":
        return _train(img, rng, severity)
    if family == "heldout":
        return _heldout(img, rng, severity)
    raise ValueError(f"unknown degradation family {family!r}")


def _tones(arr: np.ndarray, rng: np.random.Generator, severity: float) -> tuple[np.ndarray, float]:
    """Map 0..255 ink coverage to paper and ink grey levels; -> (array, paper level)."""
    paper = float(rng.uniform(228, 252) - 25 * severity * rng.random())
    ink = float(rng.uniform(0, 40) + 50 * severity * rng.random())
    return ink + (paper - ink) * (arr / 255.0), paper


def _to_image(arr: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")


def _rotate(img: Image.Image, degrees: float, paper: float, shear: float = 0.0) -> Image.Image:
    if shear:
        w, h = img.size
        img = img.transform((w + int(abs(shear) * h), h), Image.Transform.AFFINE,
                            (1, shear, -abs(shear) * h if shear > 0 else 0, 0, 1, 0),
                            Image.Resampling.BILINEAR, fillcolor=int(paper))
    return img.rotate(degrees, Image.Resampling.BILINEAR, expand=True, fillcolor=int(paper))


def _gaussian_noise(arr: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    return arr + rng.normal(0.0, sigma, arr.shape)


def _train(img: Image.Image, rng: np.random.Generator, s: float) -> Image.Image:
    u = rng.random()
    if u < 0.05 + 0.2 * s:
        img = _morph(img, ImageFilter.MinFilter(3))  # ink spreads: bolder strokes
    elif u < 0.08 + 0.35 * s:
        img = _morph(img, ImageFilter.MaxFilter(3))  # ink starved: thinner strokes
    coverage = 255.0 - np.asarray(img, np.float32)
    if rng.random() < 0.3 + 0.4 * s:  # uneven inking: strokes fade in patches
        h, w = coverage.shape
        grid = rng.uniform(0, 1, (max(2, h // 5), max(2, w // 5))).astype(np.float32)
        patches = np.asarray(Image.fromarray(grid, "F").resize((w, h), Image.Resampling.BILINEAR), np.float32)
        coverage *= 1.0 - float(rng.uniform(0.2, 0.4 + 0.5 * s)) * patches
    arr, paper = _tones(255.0 - coverage, rng, s)
    img = _rotate(_to_image(arr), float(rng.uniform(-1, 1) * (0.4 + 1.4 * s)), paper)
    if rng.random() < 0.8:
        img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 0.6 + 1.0 * s))))
    arr = np.asarray(img, np.float32)
    if rng.random() < 0.2:  # a bilevel scan
        ink = float(np.percentile(arr, 3))
        level = ink + (paper - ink) * rng.uniform(0.45, 0.7)
        arr = np.where(arr < level, rng.uniform(0, 50), paper)
    if rng.random() < 0.85:
        arr = _gaussian_noise(arr, rng, float(rng.uniform(2, 5 + 16 * s)))
    if rng.random() < 0.4 + 0.3 * s:
        density = float(rng.uniform(0.001, 0.004 + 0.02 * s))
        hit = rng.random(arr.shape)
        arr = np.where(hit < density / 2, rng.uniform(0, 60), arr)
        arr = np.where(hit > 1 - density / 2, 255.0, arr)
    arr = arr * rng.uniform(0.85, 1.08) + rng.uniform(-20, 12)  # contrast, brightness
    img = _to_image(arr)
    if rng.random() < 0.35 + 0.2 * s:
        img = _jpeg(img, int(rng.integers(12, 45 + int(30 * (1 - s)))))
    return img


def _morph(img: Image.Image, filt: ImageFilter.Filter) -> Image.Image:
    """Erode or dilate by half a pixel (a 3x3 filter at twice the resolution); a thinning
    that would wipe out hairline strokes (Mincho at 24 px) is not applied."""
    w, h = img.size
    big = img.resize((2 * w, 2 * h), Image.Resampling.BILINEAR).filter(filt)
    out = big.resize((w, h), Image.Resampling.BILINEAR)
    before = np.count_nonzero(np.asarray(img) < 128)
    after = np.count_nonzero(np.asarray(out) < 128)
    return out if after >= 0.8 * before else img


def _jpeg(img: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as out:
        return out.convert("L")


def _heldout(img: Image.Image, rng: np.random.Generator, s: float) -> Image.Image:
    clean = img
    if rng.random() < 0.45 + 0.3 * s:  # ink bleed: strokes spread into the paper fibres
        blurred = np.asarray(img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.6, 1.0 + 0.8 * s)))),
                             np.float32)
        level = float(rng.uniform(175, 215))
        arr = np.where(blurred < level, blurred * 0.35, 255.0)
        img = _to_image(arr).filter(ImageFilter.GaussianBlur(0.5))
    arr, paper = _tones(np.asarray(img, np.float32), rng, s)
    h, w = arr.shape
    if rng.random() < 0.4:  # show-through: the other side of the page, mirrored and faint
        back = np.asarray(ImageOps.mirror(clean).resize((w, h)), np.float32)
        shift = int(rng.integers(-h // 3, h // 3 + 1))
        back = np.roll(back, shift, axis=0)
        arr = arr - float(rng.uniform(0.06, 0.12 + 0.12 * s)) * (255.0 - back)
    if rng.random() < 0.7:  # uneven illumination across the scanner bed
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        angle = rng.uniform(0, 2 * np.pi)
        ramp = (np.cos(angle) * xx / max(w, 1) + np.sin(angle) * yy / max(h, 1))
        ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
        arr = arr * (1.0 - float(rng.uniform(0.05, 0.15 + 0.2 * s)) * ramp)
    if rng.random() < 0.7:  # paper texture: low-frequency mottling
        grid = rng.normal(0, 1, (max(2, h // 6), max(2, w // 6))).astype(np.float32)
        tex = np.asarray(Image.fromarray(grid, "F").resize((w, h), Image.Resampling.BICUBIC), np.float32)
        arr = arr + float(rng.uniform(3, 8 + 12 * s)) * tex
    img = _to_image(arr)
    angle = float(rng.uniform(1.5, 2.5 + 2.0 * s) * rng.choice([-1, 1]))
    shear = float(rng.uniform(-0.08, 0.08)) if rng.random() < 0.5 else 0.0
    img = _rotate(img, angle if rng.random() < 0.7 else 0.0, paper, shear)
    if rng.random() < 0.55 + 0.3 * s:
        img = img.filter(motion_blur_kernel(rng))
    if rng.random() < 0.45 + 0.3 * s:  # a low-resolution scan, upscaled
        w, h = img.size
        f = float(rng.uniform(0.4, 0.75 - 0.15 * s))
        small = img.resize((max(1, int(w * f)), max(1, int(h * f))),
                           Image.Resampling.NEAREST if rng.random() < 0.5 else Image.Resampling.BILINEAR)
        img = small.resize((w, h), Image.Resampling.BICUBIC)
    arr = _gaussian_noise(np.asarray(img, np.float32), rng, float(rng.uniform(1, 3 + 6 * s)))
    return _to_image(arr)


def motion_blur_kernel(rng: np.random.Generator) -> ImageFilter.Kernel:
    """A 5x5 line kernel: camera or scanner-head shake in one direction."""
    k = np.zeros((5, 5), np.float32)
    length = int(rng.integers(3, 6))
    direction = int(rng.integers(4))  # horizontal, vertical, two diagonals
    for t in range(length):
        off = t - length // 2
        r, c = [(2, 2 + off), (2 + off, 2), (2 + off, 2 + off), (2 + off, 2 - off)][direction]
        k[r, c] = 1.0
    return ImageFilter.Kernel((5, 5), k.flatten().tolist(), scale=float(k.sum()))
