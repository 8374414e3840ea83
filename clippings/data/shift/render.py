"""Set a firm name on a paper-coloured crop with Pillow, horizontally or vertically.

Written for shift sets, independently of the training generator's renderer: glyphs are
drawn one by one at the target size (no supersampling), with per-glyph jitter in position
and size (loose type of a letterpress directory), a tracking chosen per crop, and in
vertical setting the long-vowel mark, brackets and hyphens turned a quarter.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from clippings.data.shift.fonts import Face, load

# Characters that vertical setting turns 90° (Pillow's BASIC layout has no 'vert' feature).
TURN_IN_VERTICAL = set("ー－-—‐～〜（）()「」『』[]｛｝…・")
MARGIN = 4


def _glyph(face: Face, size: int, ch: str, ink: int) -> Image.Image:
    """The glyph as an 'L' image of ink coverage (0..255), cropped to the font's em box."""
    font = load(face, size)
    left, top, right, bottom = font.getbbox(ch)
    w = max(right, int(size * (0.5 if ord(ch) < 0x2000 else 1.0)))
    img = Image.new("L", (max(w, 1), size + size // 4), 0)
    ImageDraw.Draw(img).text((0, 0), ch, font=font, fill=255)
    return img


def render(text: str, face: Face, size: int, vertical: bool, rng: np.random.Generator) -> Image.Image:
    """An 'L' crop: dark ink on light paper, tight margins (jittered)."""
    tracking = float(rng.choice([0.0, 0.0, 0.05, 0.12, 0.35])) * size
    jitter = 0.04 * size
    glyphs = []
    for ch in text:
        g = _glyph(face, size, ch, 255)
        if vertical and ch in TURN_IN_VERTICAL:
            g = g.rotate(-90, expand=True)
        glyphs.append(g)
    if vertical:
        width = max(g.width for g in glyphs) + 2 * MARGIN
        height = int(sum(min(g.height, size + 2) + tracking for g in glyphs)) + 2 * MARGIN + size // 3
    else:
        width = int(sum(g.width + tracking for g in glyphs)) + 2 * MARGIN
        height = size + size // 4 + 2 * MARGIN
    cover = Image.new("L", (width, height), 0)
    pos = MARGIN
    for g in glyphs:
        dx, dy = (int(round(v)) for v in rng.normal(0, jitter, 2))
        if vertical:
            x = (width - g.width) // 2 + dx
            cover.paste(g, (x, pos + dy), g)
            pos += int(min(g.height, size + 2) + tracking)
        else:
            cover.paste(g, (pos + dx, MARGIN + dy), g)
            pos += int(g.width + tracking)
    bbox = cover.getbbox()
    if bbox is None:
        bbox = (0, 0, width, height)
    # Tight, uneven margins as a clipping cut from a page.
    pad = [int(rng.integers(1, max(3, size // 4))) for _ in range(4)]
    l, t, r, b = bbox
    cover = cover.crop((l - pad[0], t - pad[1], r + pad[2], b + pad[3]))
    paper = int(rng.integers(200, 250))
    ink = int(rng.integers(10, 70))
    arr = np.asarray(cover, dtype=np.float32) / 255.0
    out = paper + (ink - paper) * arr
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), "L")
