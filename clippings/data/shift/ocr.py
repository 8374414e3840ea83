"""The text of every shift record: tesseract's reading of the crop image.

Debian packages tesseract-ocr, tesseract-ocr-jpn and tesseract-ocr-jpn-vert. Horizontal
crops are read with `jpn --psm 7` (one text line), vertical ones with `jpn_vert --psm 5`
(one vertical block). The output is kept as tesseract gives it, with line breaks and the
spaces it puts between CJK characters removed (no other correction).
"""

from __future__ import annotations

import functools
import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from clippings.errors import ConfigError

TESSERACT_PACKAGES = ("tesseract-ocr", "tesseract-ocr-jpn", "tesseract-ocr-jpn-vert")


def _checked(langs: tuple[str, ...], packages: tuple[str, ...]) -> str:
    """The tesseract executable, checked to have `langs`; else a ConfigError naming the packages."""
    exe = shutil.which("tesseract")
    if exe is None:
        raise ConfigError(f"tesseract not found: apt-get install {' '.join(packages)}")
    have = subprocess.run([exe, "--list-langs"], capture_output=True, text=True, check=False).stdout.split()
    missing = [lang for lang in langs if lang not in have]
    if missing:
        raise ConfigError(f"tesseract lacks {', '.join(missing)}: apt-get install {' '.join(packages)}")
    return exe


@functools.lru_cache(maxsize=1)
def tesseract() -> str:
    return _checked(("jpn", "jpn_vert"), TESSERACT_PACKAGES)


def version(exe: str | None = None) -> str:
    out = subprocess.run([exe or tesseract(), "--version"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).splitlines()[0].strip()


_CJK_SPACE = re.compile(r"(?<=[^\x00-\x7f])\s+|\s+(?=[^\x00-\x7f])")


def clean(raw: str) -> str:
    text = " ".join(raw.replace("\x0c", "").split())
    return _CJK_SPACE.sub("", text)


MIN_CHAR_PX = 40  # tesseract reads small type badly; a pipeline scales the crop up first


def read(path: Path, vertical: bool) -> str:
    """tesseract's text for the crop at `path`, scaled up (bicubic) so that the character
    size (the crop's width if vertical, else its height) is at least MIN_CHAR_PX, and
    padded with a paper-coloured border, as an OCR pipeline would prepare a line image."""
    lang, psm = ("jpn_vert", "5") if vertical else ("jpn", "7")
    env = dict(os.environ, OMP_THREAD_LIMIT="1")
    img = Image.open(path).convert("L")
    char = img.width if vertical else img.height
    if char < MIN_CHAR_PX:
        f = MIN_CHAR_PX / max(char, 1)
        img = img.resize((max(1, round(img.width * f)), max(1, round(img.height * f))), Image.Resampling.BICUBIC)
    pad = max(8, char // 4)
    paper = int(np.sort(np.asarray(img).ravel())[int(0.9 * img.width * img.height)])
    img = ImageOps.expand(img, border=pad, fill=paper)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    out = subprocess.run([tesseract(), "stdin", "stdout", "-l", lang, "--psm", psm], input=buf.getvalue(),
                         capture_output=True, check=False, env=env, timeout=120)
    out.stdout = out.stdout.decode("utf-8", errors="replace")
    out.stderr = out.stderr.decode("utf-8", errors="replace")
    if out.returncode != 0:
        raise RuntimeError(f"tesseract failed on {path}: {out.stderr.strip()[-400:]}")
    return clean(out.stdout)


# English captions (the news shift set): tesseract's `eng` model on a whole caption column.
ENGLISH_PACKAGES = ("tesseract-ocr", "tesseract-ocr-eng")
BLOCK_PSM = "6"  # one uniform block of text: a caption column


@functools.lru_cache(maxsize=1)
def tesseract_english() -> str:
    """The tesseract executable, checked to read English."""
    return _checked(("eng",), ENGLISH_PACKAGES)


def clean_latin(raw: str) -> str:
    """Whitespace normalised (line breaks and runs of spaces to one space), nothing else."""
    return " ".join(raw.replace("\x0c", "").split())


def read_block(path: Path, scale: float = 1.0) -> str:
    """tesseract's English text for the caption scan at `path`, read as one block (`eng
    --psm 6`). A scan made at `scale` of the typeset resolution is first resampled back
    (bicubic), as a pipeline brings a scan of known dpi to the engine's working resolution;
    a paper-coloured border is added. Only whitespace is normalised in the output."""
    img = Image.open(path).convert("L")
    if scale < 1.0:
        img = img.resize((round(img.width / scale), round(img.height / scale)), Image.Resampling.BICUBIC)
    paper = int(np.sort(np.asarray(img).ravel())[int(0.9 * img.width * img.height)])
    img = ImageOps.expand(img, border=16, fill=paper)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    env = dict(os.environ, OMP_THREAD_LIMIT="1")
    out = subprocess.run([tesseract_english(), "stdin", "stdout", "-l", "eng", "--psm", BLOCK_PSM],
                         input=buf.getvalue(), capture_output=True, check=False, env=env, timeout=300)
    if out.returncode != 0:
        err = out.stderr.decode("utf-8", errors="replace").strip()[-400:]
        raise RuntimeError(f"tesseract failed on {path}: {err}")
    return clean_latin(out.stdout.decode("utf-8", errors="replace"))


def version_english() -> str:
    return version(tesseract_english())
