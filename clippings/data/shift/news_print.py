"""How one paper prints a news shift photo and how its page was scanned, written for the
shift set (the training generator's print is synth/halftone.py: a 45-degree clustered dot,
error diffusion or a line screen). Per reprint:

| step | choices |
|---|---|
| crop | 78-100% of the frame's width and height, anywhere in it |
| size | 100-190 px on the short side |
| rotation | up to about 2 degrees, paper-coloured corners |
| tone | contrast, gamma (muddy or washed-out presswork), blocked shadows |
| colour | grayscale (about 60%), or colour with plates out of register by 0-2 px |
| screen | `bayer` ordered dither (8x8), `mezzotint` (a random grain screen), `round_dot` (a round-dot screen at 15 or 75 degrees), or `contone` (continuous tone with grain) |
| paper | newsprint tone from grey-white to tan, fibres, foxing spots |
| scan | defocus (a disk blur) or none, a lower archive resolution, JPEG quality 30-92 |
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

from clippings.data.shift.news_scan import smooth_field

SCREENS = ("bayer", "mezzotint", "round_dot", "contone")
_SCREEN_UP = 3  # screens are made at 3x the printed size, then scanned down

_BAYER2 = np.array([[0, 2], [3, 1]])


def _bayer(n: int) -> np.ndarray:
    m = _BAYER2
    while m.shape[0] < n:
        m = np.block([[4 * m, 4 * m + 2], [4 * m + 3, 4 * m + 1]])
    return (m + 0.5) / m.size


def _screen(lum: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Lightness in [0, 1] at 3x -> paper coverage in [0, 1] (1 = paper, 0 = ink)."""
    h, w = lum.shape
    if kind == "bayer":
        t = np.tile(_bayer(8), (h // 8 + 1, w // 8 + 1))[:h, :w]
        return (lum > t).astype(np.float32)
    if kind == "mezzotint":
        grain = smooth_field(rng, h, w, cell=rng.uniform(1.2, 2.2))
        return (lum > grain).astype(np.float32)
    if kind == "round_dot":
        angle = np.deg2rad(rng.choice([15.0, 75.0]))
        pitch = rng.uniform(4.0, 6.5)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        u = (xx * np.cos(angle) + yy * np.sin(angle)) / pitch
        v = (-xx * np.sin(angle) + yy * np.cos(angle)) / pitch
        d = np.hypot(u - np.round(u), v - np.round(v)) / 0.7071  # 0 at a dot centre, 1 at a corner
        return (d > np.sqrt(np.clip(1 - lum, 0, 1))).astype(np.float32)
    return np.clip(lum + rng.normal(0, 0.04, lum.shape), 0, 1).astype(np.float32)


def _tone(arr: np.ndarray, rng: np.random.Generator, severity: float) -> np.ndarray:
    gamma = rng.uniform(0.7, 1.05 + 0.35 * severity)
    lo = rng.uniform(0.0, 0.06 + 0.1 * severity)  # blocked shadows
    hi = rng.uniform(0.88, 1.0)
    return np.clip((arr - lo) / max(hi - lo, 0.1), 0, 1) ** gamma


def _crop_rotate(photo: Image.Image, rng: np.random.Generator, paper: tuple[int, int, int]) -> Image.Image:
    w, h = photo.size
    fw, fh = rng.uniform(0.78, 1.0), rng.uniform(0.78, 1.0)
    x0, y0 = rng.uniform(0, 1 - fw) * w, rng.uniform(0, 1 - fh) * h
    img = photo.crop((round(x0), round(y0), round(x0 + fw * w), round(y0 + fh * h)))
    short = int(rng.integers(100, 191))
    f = short / min(img.size)
    img = img.resize((max(1, round(img.width * f)), max(1, round(img.height * f))), Image.Resampling.LANCZOS)
    angle = float(rng.normal(0, 0.9))
    return img.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=paper)


def _plates(img: Image.Image, rng: np.random.Generator, colour: bool, severity: float) -> list[np.ndarray]:
    """The printing plates as lightness arrays at 3x: one (gray) or three out of register."""
    big = img.resize((img.width * _SCREEN_UP, img.height * _SCREEN_UP), Image.Resampling.BICUBIC)
    if not colour:
        return [_tone(np.asarray(big.convert("L"), np.float32) / 255.0, rng, severity)]
    arr = np.asarray(big, np.float32) / 255.0
    grey = arr.mean(axis=2, keepdims=True)
    arr = grey + (arr - grey) * rng.uniform(0.5, 0.9)  # newsprint colour is dull
    plates = []
    for c in range(3):
        dy, dx = (int(v) for v in rng.integers(-2 * _SCREEN_UP, 2 * _SCREEN_UP + 1, 2) * min(1.0, severity + 0.3))
        plates.append(np.roll(_tone(arr[..., c], rng, severity * 0.5), (dy, dx), (0, 1)))
    return plates


def _paper(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    base = np.array([rng.uniform(215, 245), rng.uniform(205, 238), rng.uniform(180, 225)], np.float32)
    mottle = smooth_field(rng, h, w, cell=rng.uniform(10, 40))
    paper = base[None, None, :] * (0.93 + 0.07 * mottle[..., None])
    for _ in range(int(rng.integers(0, 4))):  # foxing
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(1.5, 5)
        yy, xx = np.ogrid[:h, :w]
        spot = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        paper = paper * (1 - 0.25 * spot[..., None] * np.array([0.6, 0.8, 1.0]))
    return paper


def _disk_blur(img: Image.Image, radius: float) -> Image.Image:
    r = max(1, int(np.ceil(radius)))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    k = (np.hypot(yy, xx) <= radius + 0.5).astype(np.float32)
    size = 2 * r + 1
    if size > 5:
        return img.filter(ImageFilter.BoxBlur(radius))
    return img.filter(ImageFilter.Kernel((size, size), (k / k.sum()).ravel().tolist()))


def print_photo(photo: Image.Image, rng: np.random.Generator, severity: float) -> tuple[Image.Image, dict]:
    """One paper's print of `photo`, scanned -> (RGB image, what was done)."""
    colour = bool(rng.random() < 0.4)
    screen = str(rng.choice(SCREENS, p=[0.25, 0.15, 0.4, 0.2]))
    paper_rgb = tuple(int(v) for v in rng.integers(215, 245, 3))
    img = _crop_rotate(photo, rng, paper_rgb)
    ink = [_screen(p, screen, rng) for p in _plates(img, rng, colour, severity)]
    cover = np.stack(ink * 3 if len(ink) == 1 else ink, axis=2)  # 1 = paper, per channel
    small = Image.fromarray((cover * 255).astype(np.uint8), "RGB").resize(img.size, Image.Resampling.BOX)
    arr = np.asarray(small, np.float32) / 255.0
    paper = _paper(arr.shape[0], arr.shape[1], rng)
    ink_rgb = np.array(rng.uniform(15, 50, 3), np.float32)
    out = ink_rgb + (paper - ink_rgb) * arr
    img = Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), "RGB")
    blur = float(rng.uniform(0.0, 0.6 + 1.2 * severity))
    if blur > 0.5:
        img = _disk_blur(img, blur)
    scale = float(np.clip(rng.uniform(0.7, 1.0) - 0.3 * severity * rng.random(), 0.45, 1.0))
    if scale < 0.97:
        img = img.resize((max(16, round(img.width * scale)), max(16, round(img.height * scale))), Image.Resampling.BOX)
    if not colour and rng.random() < 0.5:
        img = img.convert("L").convert("RGB")  # a grey archive scan of a grey print
    quality = int(rng.integers(30, 93))
    return img, {"colour": colour, "screen": screen, "blur": round(blur, 2), "scale": round(scale, 3),
                 "jpeg_quality": quality}


def encode(img: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality, optimize=True)
    return buf.getvalue()


__all__ = ["SCREENS", "encode", "print_photo"]
