"""Set a caption in a newspaper column with Pillow: Latin faces that the training generator
never uses, a measure and leading per paper, justified (with hyphenation) or ragged right, a
bold kicker line, a credit line above or at the end.

Faces, from Debian packages (`apt-get install` line in PACKAGES): TeX Gyre Termes, Schola,
Bonum, Pagella and Heros (fonts-texgyre), Caladea (fonts-crosextra-caladea), Linux
Libertine and Biolinum (fonts-linuxlibertine), Roboto Slab (fonts-roboto-slab), Go
(fonts-go). The generator prints in DejaVu, Liberation and FreeFont (clippings/data/synth/fonts.py).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from clippings.data.shift.news_edit import Printed
from clippings.errors import ConfigError

FONT_ROOTS = (Path("/usr/share/fonts"), Path("/usr/share/texmf/fonts"), Path("/usr/local/share/fonts"))
_GYRE = "opentype/public/tex-gyre/texgyre"


@dataclass(frozen=True)
class Family:
    name: str
    package: str
    regular: str  # paths relative to a FONT_ROOTS entry
    bold: str
    italic: str


FAMILIES = (
    Family("TeX Gyre Termes", "fonts-texgyre", f"{_GYRE}termes-regular.otf", f"{_GYRE}termes-bold.otf",
           f"{_GYRE}termes-italic.otf"),
    Family("TeX Gyre Schola", "fonts-texgyre", f"{_GYRE}schola-regular.otf", f"{_GYRE}schola-bold.otf",
           f"{_GYRE}schola-italic.otf"),
    Family("TeX Gyre Bonum", "fonts-texgyre", f"{_GYRE}bonum-regular.otf", f"{_GYRE}bonum-bold.otf",
           f"{_GYRE}bonum-italic.otf"),
    Family("TeX Gyre Pagella", "fonts-texgyre", f"{_GYRE}pagella-regular.otf", f"{_GYRE}pagella-bold.otf",
           f"{_GYRE}pagella-italic.otf"),
    Family("TeX Gyre Heros", "fonts-texgyre", f"{_GYRE}heros-regular.otf", f"{_GYRE}heros-bold.otf",
           f"{_GYRE}heros-italic.otf"),
    Family("Caladea", "fonts-crosextra-caladea", "truetype/crosextra/Caladea-Regular.ttf",
           "truetype/crosextra/Caladea-Bold.ttf", "truetype/crosextra/Caladea-Italic.ttf"),
    Family("Linux Libertine", "fonts-linuxlibertine", "opentype/linux-libertine/LinLibertine_R.otf",
           "opentype/linux-libertine/LinLibertine_RB.otf", "opentype/linux-libertine/LinLibertine_RI.otf"),
    Family("Linux Biolinum", "fonts-linuxlibertine", "opentype/linux-libertine/LinBiolinum_R.otf",
           "opentype/linux-libertine/LinBiolinum_RB.otf", "opentype/linux-libertine/LinBiolinum_RI.otf"),
    Family("Roboto Slab", "fonts-roboto-slab", "opentype/roboto/slab/RobotoSlab-Regular.otf",
           "opentype/roboto/slab/RobotoSlab-Bold.otf", "opentype/roboto/slab/RobotoSlab-Light.otf"),
    Family("Go", "fonts-go", "fonts-go/Go-Regular.ttf", "fonts-go/Go-Bold.ttf", "fonts-go/Go-Italic.ttf"),
)
PACKAGES = tuple(sorted({f.package for f in FAMILIES}))


def font_file(rel: str) -> Path | None:
    return next((root / rel for root in FONT_ROOTS if (root / rel).is_file()), None)


def available_families() -> tuple[Family, ...]:
    """Installed families (every style present); at least six are required."""
    fams = tuple(f for f in FAMILIES if all(font_file(p) for p in (f.regular, f.bold, f.italic)))
    if len(fams) < 6:
        missing = sorted({f.package for f in FAMILIES if f not in fams})
        raise ConfigError(f"news shift-set fonts missing: apt-get install {' '.join(missing)}")
    return fams


@functools.lru_cache(maxsize=512)
def load(rel: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_file(rel)), size, layout_engine=ImageFont.Layout.BASIC)


@dataclass(frozen=True)
class Setting:
    """How one paper sets its captions."""

    family: str
    size: int  # em in pixels at the scan's resolution
    measure: float  # column width in ems
    leading: float  # line pitch in ems
    justified: bool
    kicker_scale: float  # kicker size in ems
    credit_style: str  # italic | small | inline


def random_setting(rng: np.random.Generator, families: tuple[Family, ...]) -> Setting:
    return Setting(family=families[int(rng.integers(len(families)))].name, size=int(rng.integers(22, 37)),
                   measure=float(rng.uniform(11, 26)), leading=float(rng.uniform(1.08, 1.3)),
                   justified=bool(rng.random() < 0.7), kicker_scale=float(rng.uniform(1.0, 1.35)),
                   credit_style=str(rng.choice(["italic", "small", "inline"], p=[0.4, 0.3, 0.3])))


_VOWELS = set("aeiouyAEIOUY")
_DIGRAPHS = {"ch", "sh", "th", "ph", "ck", "qu", "wh", "gh", "ng"}


def _hyphen_points(word: str) -> list[int]:
    """Where a word may break (rough rules, not a dictionary): before a consonant that
    follows a vowel or another consonant (no digraph split), a vowel on each side, 3+
    letters either side."""
    core = re.sub(r"[^A-Za-z]+$", "", word)
    if not core.isalpha():
        return []
    out = []
    for i in range(3, len(core) - 2):
        a, b = core[i - 1], core[i]
        if b in _VOWELS or (a + b).lower() in _DIGRAPHS:
            continue
        if _VOWELS & set(core[:i]) and _VOWELS & set(core[i:]):
            out.append(i)
    return out


def wrap(words: list[str], font: ImageFont.FreeTypeFont, width: float, hyphenate: bool) -> list[list[str]]:
    """Greedy line breaking; a word that does not fit may be hyphenated across the break."""
    lines: list[list[str]] = [[]]
    space = font.getlength(" ")
    queue = list(words)
    while queue:
        word = queue.pop(0)
        line = lines[-1]
        used = font.getlength(" ".join(line)) + (space if line else 0)
        if not line or used + font.getlength(word) <= width:
            line.append(word)
            continue
        cut = [i for i in _hyphen_points(word) if used + font.getlength(word[:i] + "-") <= width] if hyphenate else []
        if cut:
            line.append(word[: cut[-1]] + "-")
            queue.insert(0, word[cut[-1]:])
        else:
            queue.insert(0, word)
        lines.append([])
    return [line for line in lines if line]


def _draw_line(draw: ImageDraw.ImageDraw, words: list[str], font, x: float, y: float, width: float,
               justify: bool, align: str = "left") -> None:
    if not justify or len(words) < 2:
        text = " ".join(words)
        dx = width - font.getlength(text) if align == "right" else 0.0
        draw.text((x + dx, y), text, font=font, fill=255)
        return
    gap = (width - sum(font.getlength(wd) for wd in words)) / (len(words) - 1)
    for wd in words:
        draw.text((x, y), wd, font=font, fill=255)
        x += font.getlength(wd) + gap


def typeset(printed: Printed, setting: Setting) -> Image.Image:
    """-> an 'L' image of ink coverage (255 = ink) holding the caption as one paper set it."""
    fam = next(f for f in FAMILIES if f.name == setting.family)
    em, width = setting.size, setting.size * setting.measure
    body_font = load(fam.regular, em)
    blocks: list[tuple[list[list[str]], ImageFont.FreeTypeFont, bool, str]] = []
    if printed.kicker:
        kfont = load(fam.bold, round(em * setting.kicker_scale))
        blocks.append((wrap(printed.kicker.split(), kfont, width, False), kfont, False, "left"))
    credit_font = load(fam.italic if setting.credit_style == "italic" else fam.regular,
                       round(em * (0.78 if setting.credit_style == "small" else 0.9)))
    credit_lines = wrap(printed.credit.split(), credit_font, width, False) if printed.credit else []
    body = printed.body
    if printed.credit and not printed.credit_above and setting.credit_style == "inline":
        body, credit_lines = f"{body} {printed.credit}", []
    if credit_lines and printed.credit_above:
        blocks.append((credit_lines, credit_font, False, "right"))
    blocks.append((wrap(body.split(), body_font, width, setting.justified), body_font, setting.justified, "left"))
    if credit_lines and not printed.credit_above:
        blocks.append((credit_lines, credit_font, False, "right"))
    pitch = [round(f.size * setting.leading) for _, f, _, _ in blocks]
    height = sum(len(lines) * p for (lines, _, _, _), p in zip(blocks, pitch)) + em
    img = Image.new("L", (int(width) + em, height + em // 2), 0)
    draw = ImageDraw.Draw(img)
    y = em // 2
    for (lines, font, justify, align), p in zip(blocks, pitch):
        for i, words in enumerate(lines):
            _draw_line(draw, words, font, em / 2, y, width, justify and i < len(lines) - 1, align)
            y += p
    return img


__all__ = ["FAMILIES", "Family", "PACKAGES", "Setting", "available_families", "random_setting", "typeset", "wrap"]
