"""A news caption set in a column, printed and scanned: what `synth news --ocr tesseract`
hands to the OCR engine, so that a record's text is a real engine's reading, as a feed's is.

The generator's own parts (its Latin faces, fonts.py; its print-and-scan damage, degrade.py),
not the shift set's typesetter and scanner (clippings/data/shift/news_type.py, news_scan.py):
a shift set stays a different pipeline. Only the engine call is shared
(clippings.data.shift.ocr.read_block), as a feed has one OCR engine.
"""

from __future__ import annotations

import textwrap

import numpy as np
from PIL import Image, ImageDraw

from clippings.data.synth.degrade import degrade
from clippings.data.synth.fonts import font_set, load_font

TYPE_PX = 40  # set at this size, then scanned down
COLUMN_CHARS = (24, 44)  # characters a line, narrow to wide columns
CAPTION_SEVERITY = 0.6  # of the photo's (see print_caption)
X_HEIGHT_PX = (10.0, 16.0)  # a capital's height in the scan: a low- to a mid-resolution archive scan


def latin_faces(degradations: str):
    return tuple(f for f in font_set("heldout" if degradations == "heldout" else "train") if f.script == "latin")


def print_caption(text: str, rng: np.random.Generator, degradations: str, severity: float) -> tuple[Image.Image, float]:
    """-> (the scanned caption, grayscale; the scan's scale against the setting), so the
    reader can bring the scan back to the engine's working size."""
    faces = latin_faces(degradations)
    font = load_font(faces[int(rng.integers(len(faces)))], TYPE_PX)
    lines = textwrap.wrap(text, int(rng.integers(*COLUMN_CHARS))) or [""]
    leading = int(TYPE_PX * rng.uniform(1.1, 1.35))
    margin = TYPE_PX // 2
    width = int(max(font.getlength(line) for line in lines)) + 2 * margin
    page = Image.new("L", (width, leading * len(lines) + 2 * margin), 255)
    draw = ImageDraw.Draw(page)
    for i, line in enumerate(lines):
        draw.text((margin, margin + i * leading), line, font=font, fill=0)
    cap = font.getbbox("H")[3] - font.getbbox("H")[1]
    scale = float(rng.uniform(*X_HEIGHT_PX)) / cap
    scan = page.resize((max(1, round(page.width * scale)), max(1, round(page.height * scale))), Image.Resampling.BOX)
    # The photo's severity, softened: the damage made for a short crop, at full strength over a
    # whole column, left a few captions of 28 mostly unreadable (CER 0.5-0.76); at 0.6, 56
    # captions read back with median CER 0.047, mean 0.069.
    return degrade(scan, rng, degradations, CAPTION_SEVERITY * severity), scale
