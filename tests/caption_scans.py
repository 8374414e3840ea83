"""A caption of the news shift pipeline, typeset and scanned at a chosen damage, for the tests
of the engines that read it (tesseract: test_shift_news.py; PP-OCR: test_shift_ppocr.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rapidfuzz.distance import Levenshtein

from clippings.data.shift.news_edit import Printed
from clippings.data.shift.news_scan import encode_jpeg, scan
from clippings.data.shift.news_type import Setting, typeset

PRINTED = Printed(kicker="", credit="(AP Photo/Ngozi Whitlock)", credit_above=False, ops=(),
                  body="BANGOR, Maine (AP) — Firefighters battle a blaze at the Okafor Feed Mill on Depot "
                       "Street in Bangor on Tuesday. No injuries were reported.")
SETTING = Setting("TeX Gyre Termes", 32, 18.0, 1.2, False, 1.2, "inline")


def scan_caption(folder: Path, severity: float, seed: int) -> tuple[Path, float, list[str]]:
    """PRINTED scanned at `severity` with `seed`, saved as JPEG -> (path, scan scale, effects)."""
    img, effects, scale, quality = scan(typeset(PRINTED, SETTING), SETTING.size, severity, np.random.default_rng(seed))
    path = folder / f"s{severity}-{seed}.jpg"
    path.write_bytes(encode_jpeg(img, quality))
    return path, scale, effects


def cer(text: str) -> float:
    """Character error rate of `text` against PRINTED."""
    return Levenshtein.distance(text, PRINTED.text) / len(PRINTED.text)
