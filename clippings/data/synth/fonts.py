"""The fonts synthetic crops are printed in: a fixed TRAIN set and a disjoint HELDOUT set.

Fonts come from Debian packages, found under the system font folders by file name; a
.ttc collection names the face by its index. Held-out designs never appear in training,
so a test set printed in them measures generalisation to an unseen typeface.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageChops, ImageFont

from clippings.data.synth.options import FONT_SETS
from clippings.errors import ConfigError

FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path.home() / ".local/share/fonts")


@dataclass(frozen=True)
class FontFace:
    name: str  # human-readable, recorded in meta.jsonl
    file: str  # file name, looked up under FONT_DIRS
    index: int  # face inside a .ttc collection (0 for .ttf/.otf)
    package: str  # the Debian package that ships it
    script: str  # "ja": covers kanji and kana (and Latin); "latin": Latin only


# Japanese faces. Held out: IPAex Mincho, VL Gothic (both widths) and Noto Serif CJK JP Bold.
_JA_TRAIN = (
    FontFace("IPAGothic", "ipag.ttf", 0, "fonts-ipafont-gothic", "ja"),
    FontFace("IPAPGothic", "ipagp.ttf", 0, "fonts-ipafont-gothic", "ja"),
    FontFace("IPAMincho", "ipam.ttf", 0, "fonts-ipafont-mincho", "ja"),
    FontFace("IPAPMincho", "ipamp.ttf", 0, "fonts-ipafont-mincho", "ja"),
    FontFace("IPAexGothic", "ipaexg.ttf", 0, "fonts-ipaexfont-gothic", "ja"),
    FontFace("Noto Sans CJK JP Regular", "NotoSansCJK-Regular.ttc", 0, "fonts-noto-cjk", "ja"),
    FontFace("Noto Sans CJK JP Bold", "NotoSansCJK-Bold.ttc", 0, "fonts-noto-cjk", "ja"),
    FontFace("Noto Sans Mono CJK JP Regular", "NotoSansCJK-Regular.ttc", 5, "fonts-noto-cjk", "ja"),
    FontFace("Noto Serif CJK JP Regular", "NotoSerifCJK-Regular.ttc", 0, "fonts-noto-cjk", "ja"),
)
_JA_HELDOUT = (
    FontFace("IPAexMincho", "ipaexm.ttf", 0, "fonts-ipaexfont-mincho", "ja"),
    FontFace("VL Gothic", "VL-Gothic-Regular.ttf", 0, "fonts-vlgothic", "ja"),
    FontFace("VL PGothic", "VL-PGothic-Regular.ttf", 0, "fonts-vlgothic", "ja"),
    FontFace("Noto Serif CJK JP Bold", "NotoSerifCJK-Bold.ttc", 0, "fonts-noto-cjk", "ja"),
)
# Latin faces for romanised firm names (the Japanese faces above print Latin too).
_LATIN_TRAIN = (
    FontFace("DejaVu Sans", "DejaVuSans.ttf", 0, "fonts-dejavu-core", "latin"),
    FontFace("DejaVu Sans Bold", "DejaVuSans-Bold.ttf", 0, "fonts-dejavu-core", "latin"),
    FontFace("DejaVu Serif", "DejaVuSerif.ttf", 0, "fonts-dejavu-core", "latin"),
    FontFace("Liberation Sans", "LiberationSans-Regular.ttf", 0, "fonts-liberation2", "latin"),
    FontFace("Liberation Sans Bold", "LiberationSans-Bold.ttf", 0, "fonts-liberation2", "latin"),
    FontFace("Liberation Serif", "LiberationSerif-Regular.ttf", 0, "fonts-liberation2", "latin"),
    FontFace("Liberation Mono", "LiberationMono-Regular.ttf", 0, "fonts-liberation2", "latin"),
    FontFace("FreeSans", "FreeSans.ttf", 0, "fonts-freefont-ttf", "latin"),
)
_LATIN_HELDOUT = (
    FontFace("FreeSerif", "FreeSerif.ttf", 0, "fonts-freefont-ttf", "latin"),
    FontFace("FreeSerif Bold", "FreeSerifBold.ttf", 0, "fonts-freefont-ttf", "latin"),
    FontFace("FreeMono", "FreeMono.ttf", 0, "fonts-freefont-ttf", "latin"),
    FontFace("Liberation Serif Bold", "LiberationSerif-Bold.ttf", 0, "fonts-liberation2", "latin"),
)

TRAIN_FONTS = _JA_TRAIN + _LATIN_TRAIN
HELDOUT_FONTS = _JA_HELDOUT + _LATIN_HELDOUT


def font_set(name: str) -> tuple[FontFace, ...]:
    """The faces of one named set: train, heldout or all."""
    if name == "train":
        return TRAIN_FONTS
    if name == "heldout":
        return HELDOUT_FONTS
    if name == "all":
        return TRAIN_FONTS + HELDOUT_FONTS
    raise ConfigError(f"unknown font set {name!r} (expected one of {', '.join(FONT_SETS)})")


@functools.lru_cache(maxsize=None)
def font_path(file: str) -> Path | None:
    for root in FONT_DIRS:
        if root.is_dir():
            for hit in sorted(root.rglob(file)):
                return hit
    return None


def check_fonts(faces: tuple[FontFace, ...]) -> None:
    """Fail with the apt packages to install when any face is missing."""
    missing = [f for f in faces if font_path(f.file) is None]
    if missing:
        packages = sorted({f.package for f in missing})
        files = ", ".join(sorted({f.file for f in missing}))
        raise ConfigError(
            f"fonts not found: {files}. Install them with: apt-get install {' '.join(packages)}"
        )


@functools.lru_cache(maxsize=512)
def load_font(face: FontFace, size: int) -> ImageFont.FreeTypeFont:
    path = font_path(face.file)
    if path is None:
        check_fonts((face,))
    # BASIC layout: no text shaping is needed for CJK or Latin names, it is several times
    # faster than Raqm, and output does not depend on whether libraqm is installed.
    return ImageFont.truetype(str(path), size, index=face.index, layout_engine=ImageFont.Layout.BASIC)


def missing_glyphs(face: FontFace, chars: str) -> str:
    """The characters of `chars` that `face` draws as its .notdef box (or not at all)."""
    font = load_font(face, 24)
    notdef = font.getmask("\U0010fffd")
    missing = []
    for ch in sorted(set(chars) - {" "}):
        mask = font.getmask(ch)
        if not (mask.size[0] and mask.size[1]) or mask.getbbox() is None:
            missing.append(ch)
        elif mask.size == notdef.size and _same_pixels(mask, notdef):
            missing.append(ch)
    return "".join(missing)


def _same_pixels(a, b) -> bool:
    img_a = Image.frombytes("L", a.size, bytes(a))
    img_b = Image.frombytes("L", b.size, bytes(b))
    return ImageChops.difference(img_a, img_b).getbbox() is None
