"""Any image Pillow opens -> upright, on white paper, 8 bits a channel: what the model reads.

Why: Pillow's `convert("L")` / `convert("RGB")` clip a 16-bit or 32-bit grey image at 255
instead of scaling it, so an archive's 16-bit scan (TIFF, PNG, JPEG 2000) came out almost
white; they map a float image in [0, 1] to black; they drop the alpha channel onto whatever
colour the transparent pixels hold (black, mostly), so a cut-out crop lay on black instead of
paper; and they ignore the EXIF orientation a camera writes, so a photo of a page could reach
the model on its side. Training, export, evaluation and the embedder all go through
`prepare_image`, which calls this first, so offline and online vectors stay the same.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

_EXIF_ORIENTATION = 0x0112
_PAPER = (255, 255, 255, 255)


def as_8bit_upright(img: Image.Image) -> Image.Image:
    """`img` turned upright by its EXIF orientation, composited on white where it has
    transparency, and with a deep grey (16-bit, 32-bit int, float) scaled into 8 bits."""
    if _orientation(img) != 1:
        img = ImageOps.exif_transpose(img)
    if img.mode.startswith("I;16"):
        return _scaled_grey(np.asarray(img, dtype=np.float32), 65535.0)
    if img.mode == "I":
        values = np.asarray(img, dtype=np.float64)
        return _scaled_grey(values, _integer_range(float(values.max(initial=0))))
    if img.mode == "F":
        values = np.asarray(img, dtype=np.float64)
        return _scaled_grey(values, 1.0 if values.max(initial=0) <= 1.0 else 255.0)
    if img.mode == "La":  # premultiplied: Pillow converts it to LA only
        img = img.convert("LA")
    if img.has_transparency_data:
        return Image.alpha_composite(Image.new("RGBA", img.size, _PAPER), img.convert("RGBA")).convert("RGB")
    if img.mode == "LAB":  # Pillow converts LAB to RGB but not to L
        return img.convert("RGB")
    return img


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation, 1 (as stored) where there is none or it cannot be read: junk in an
    EXIF block (Pillow raises on some) must not cost a picture that reads well otherwise."""
    try:
        return int(img.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 (Pillow's EXIF parser raises SyntaxError, struct.error, ...)
        return 1


def _integer_range(top: float) -> float:
    """The full scale of a 32-bit int grey image, judged from its brightest pixel: Pillow opens
    some 16-bit files in this mode, and an 8-bit image converted to it holds 0-255."""
    if top <= 255:
        return 255.0
    return 65535.0 if top <= 65535 else top


def _scaled_grey(values: np.ndarray, full_scale: float) -> Image.Image:
    scaled = np.clip(np.nan_to_num(values) * (255.0 / full_scale), 0, 255)
    return Image.fromarray(np.rint(scaled).astype(np.uint8), "L")
