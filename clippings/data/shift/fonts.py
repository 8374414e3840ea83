"""Typefaces for shift sets: Japanese families from Debian packages that the training
generator (clippings/data/synth/fonts.py, train and held-out sets) never uses.

Some of these faces lack rarer kanji; `faces_for(text)` returns only the faces that draw
every character of a name, so no crop shows a .notdef box.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from PIL import ImageFont

from clippings.errors import ConfigError

FONT_ROOTS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))


@dataclass(frozen=True)
class Face:
    name: str
    path: str  # relative to /usr/share/fonts
    package: str
    style: str  # mincho | gothic | maru | brush


FACES = (
    Face("Sawarabi Mincho", "truetype/sawarabi-mincho/sawarabi-mincho-medium.ttf", "fonts-sawarabi-mincho", "mincho"),
    Face("Sawarabi Gothic", "truetype/sawarabi-gothic/sawarabi-gothic-medium.ttf", "fonts-sawarabi-gothic", "gothic"),
    Face("Hanazono Mincho A", "truetype/hanazono/HanaMinA.ttf", "fonts-hanazono", "mincho"),
    Face("M+ 1 Regular", "opentype/mplus/Mplus1-Regular.otf", "fonts-mplus", "gothic"),
    Face("M+ 1 Bold", "opentype/mplus/Mplus1-Bold.otf", "fonts-mplus", "gothic"),
    Face("M+ 2 Medium", "opentype/mplus/Mplus2-Medium.otf", "fonts-mplus", "gothic"),
    Face("M+ 1 Black", "opentype/mplus/Mplus1-Black.otf", "fonts-mplus", "gothic"),
    Face("UmePlus Gothic", "truetype/umeplus/umeplus-gothic.ttf", "fonts-umeplus", "gothic"),
    Face("Motoya L Cedar", "truetype/motoya-l-cedar/MTLc3m.ttf", "fonts-motoya-l-cedar", "gothic"),
    Face("Motoya L Maruberi", "truetype/motoya-l-maruberi/MTLmr3m.ttf", "fonts-motoya-l-maruberi", "maru"),
    Face("Ume Mincho", "truetype/horai-umefont/ume-tmo3.ttf", "fonts-horai-umefont", "mincho"),
    Face("Ume Gothic C5", "truetype/horai-umefont/ume-tgc5.ttf", "fonts-horai-umefont", "gothic"),
)
PACKAGES = tuple(sorted({f.package for f in FACES}))


def font_file(face: Face) -> Path | None:
    for root in FONT_ROOTS:
        if (root / face.path).is_file():
            return root / face.path
    return None


def available_faces() -> tuple[Face, ...]:
    """The installed faces; at least four are required."""
    faces = tuple(f for f in FACES if font_file(f) is not None)
    if len(faces) < 4:
        missing = sorted({f.package for f in FACES if font_file(f) is None})
        raise ConfigError(f"shift-set fonts missing: apt-get install {' '.join(missing)}")
    return faces


@functools.lru_cache(maxsize=256)
def load(face: Face, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_file(face)), size, layout_engine=ImageFont.Layout.BASIC)


@functools.lru_cache(maxsize=None)
def _draws(face: Face, ch: str) -> bool:
    font = load(face, 32)
    if ch.isspace():
        return True
    mask = font.getmask(ch)
    if mask.getbbox() is None:
        return False
    notdef = font.getmask("\U0010fffd")
    return bytes(mask) != bytes(notdef) or mask.size != notdef.size


def faces_for(text: str) -> tuple[Face, ...]:
    return tuple(f for f in available_faces() if all(_draws(f, c) for c in text))
