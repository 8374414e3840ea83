"""A name printed as a clean crop: horizontal, or vertical with one character a line.

The crop is what a layout detector cuts out of a directory page: tight margins, sometimes a
ruling line or a sliver of the neighbouring entry at an edge. Black ink on white; the
print-and-scan look is added afterwards by synth_degrade.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from clippings.data.synth.fonts import FontFace, load_font

# Characters that turn a quarter clockwise in vertical Japanese setting.
_ROTATE_IN_VERTICAL = set("ー－-—―~〜()（）「」『』[]［］<>《》…")


@dataclass(frozen=True)
class Layout:
    face: FontFace
    char_px: int  # font size in pixels: the height of a kanji
    vertical: bool
    tracking: float  # extra space between characters, in ems
    condense: float  # glyph width factor, <= 1 (horizontal lines only)
    margins: tuple[int, int, int, int]  # left, top, right, bottom
    edge_clutter: str  # "", "rule" (a ruling line) or "neighbour" (a sliver of the next entry)


# Glyphs are drawn at one large size and scaled down to char_px. Large: some faces' hinting
# drops hairline strokes at 20-30 px (IPAex Mincho prints 日 as 凵) and the box filter gives
# honest anti-aliasing. One size: loading a 20 MB Noto CJK collection per size costs more
# than rendering.
RENDER_SIZE = 120


def render_text(text: str, layout: Layout, rng: np.random.Generator, clutter_text: str = "") -> Image.Image:
    """-> a grayscale crop, 255 paper and 0 ink."""
    scale = RENDER_SIZE / layout.char_px
    font = load_font(layout.face, RENDER_SIZE)
    if layout.vertical:
        body = _vertical(text, font, layout, RENDER_SIZE)
    else:
        body = _horizontal(text, font, layout, RENDER_SIZE)
    body = _condense(body, layout)
    left, top, right, bottom = margins = tuple(int(round(m * scale)) for m in layout.margins)
    w, h = body.size
    canvas = Image.new("L", (w + left + right, h + top + bottom), 255)
    canvas.paste(body, (left, top))
    if layout.edge_clutter == "rule":
        _rule(canvas, layout.vertical, rng, scale)
    elif layout.edge_clutter == "neighbour" and clutter_text:
        _neighbour(canvas, clutter_text, font, layout.vertical, rng, margins)
    w, h = canvas.size
    return canvas.resize((max(1, round(w / scale)), max(1, round(h / scale))), Image.Resampling.BOX)


def _horizontal(text: str, font: ImageFont.FreeTypeFont, layout: Layout, size: int) -> Image.Image:
    if layout.tracking <= 0 or text.isascii():
        left, top, right, bottom = font.getbbox(text)
        img = Image.new("L", (max(1, right - left), max(1, bottom - top)), 255)
        ImageDraw.Draw(img).text((-left, -top), text, font=font, fill=0)
        return img
    # Spaced-out CJK names (東 洋 紡 績), drawn one character at a time.
    step_extra = layout.tracking * size
    advances = [font.getlength(ch) for ch in text]
    width = int(sum(advances) + step_extra * (len(text) - 1)) + 2
    ascent, descent = font.getmetrics()
    img = Image.new("L", (max(1, width), ascent + descent), 255)
    draw = ImageDraw.Draw(img)
    x = 0.0
    for ch, adv in zip(text, advances):
        draw.text((x, 0), ch, font=font, fill=0)
        x += adv + step_extra
    return _trim(img)


def _vertical(text: str, font: ImageFont.FreeTypeFont, layout: Layout, size: int) -> Image.Image:
    step = int(round(size * (1.0 + layout.tracking)))
    col = int(round(size * 1.1))
    img = Image.new("L", (col, step * len(text) + size), 255)
    draw = ImageDraw.Draw(img)
    for row, ch in enumerate(text):
        y = row * step
        if ch == " ":
            continue
        if ch in _ROTATE_IN_VERTICAL:
            glyph = Image.new("L", (size + 4, size + 4), 255)
            ImageDraw.Draw(glyph).text(((size + 4) / 2, (size + 4) / 2), ch, font=font, fill=0, anchor="mm")
            glyph = glyph.rotate(-90, fillcolor=255)
            img.paste(glyph, ((col - size - 4) // 2, y - 2))
        else:
            draw.text((col / 2, y + size / 2), ch, font=font, fill=0, anchor="mm")
    return _trim(img)


def _trim(img: Image.Image) -> Image.Image:
    box = Image.eval(img, lambda v: 255 - v).getbbox()
    return img.crop(box) if box else img


def _condense(img: Image.Image, layout: Layout) -> Image.Image:
    # Only horizontal lines are set condensed: squeezing a vertical line would thin the
    # hairline horizontal strokes of Mincho faces to nothing.
    if layout.condense >= 0.999 or layout.vertical:
        return img
    w, h = img.size
    return img.resize((max(1, int(w * layout.condense)), h), Image.Resampling.LANCZOS)


def _rule(canvas: Image.Image, vertical: bool, rng: np.random.Generator, scale: float) -> None:
    w, h = canvas.size
    draw = ImageDraw.Draw(canvas)
    thick = int(round(rng.uniform(1, 2.5) * scale))
    if vertical:
        x = 0 if rng.random() < 0.5 else w - thick
        draw.rectangle((x, 0, x + thick - 1, h), fill=int(rng.integers(0, 90)))
    else:
        y = 0 if rng.random() < 0.5 else h - thick
        draw.rectangle((0, y, w, y + thick - 1), fill=int(rng.integers(0, 90)))


def _neighbour(canvas: Image.Image, text: str, font: ImageFont.FreeTypeFont, vertical: bool,
               rng: np.random.Generator, margins: tuple[int, int, int, int]) -> None:
    """The edge of the next entry, cut by the crop: a sliver of its glyphs in the margin
    on one side, never over the name itself."""
    w, h = canvas.size
    draw = ImageDraw.Draw(canvas)
    left, top, right, bottom = margins
    if vertical:
        first_side = left >= right
        room = max(left, right)
        show = int(rng.integers(1, max(2, room)))
        x0, _, x1, _ = font.getbbox("国")
        x = show - x1 if first_side else w - show - x0
        size = font.size
        for row, ch in enumerate(text[: h // size + 1]):
            draw.text((x, row * size), ch, font=font, fill=0)
    else:
        first_side = top >= bottom
        room = max(top, bottom)
        show = int(rng.integers(1, max(2, room)))
        _, y0, _, y1 = font.getbbox(text)
        y = show - y1 if first_side else h - show - y0
        draw.text((int(rng.integers(-font.size, font.size)), y), text, font=font, fill=0)
