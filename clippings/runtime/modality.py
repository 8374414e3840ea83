"""Which cut a pair of clippings is held to, by what each of them has: a photo, a caption, both.

A clipping missing its photo is pooled from its caption alone, so against a complete reprint
its cosine sits lower than two complete reprints' would (the photo's share is missing from
the sum). A manifest may name a cut for such pairs: `text_only` for a caption without its
photo against a complete clipping, `image_only` for a photo without its caption. Pairs of
like clippings (both complete, both captions alone, both photos alone) keep the model's own
cut; a caption alone and a photo alone are never linked (their cosine compares a text
embedding with an image embedding). Without either key every pair has the model's cut, as
before they existed. The linker and `clippings eval` both decide through `pair_cut`.
"""

from __future__ import annotations

import math

import numpy as np

COMPLETE, TEXT_ONLY, IMAGE_ONLY = "", "text", "image"
NEVER = math.inf
CODES = {COMPLETE: 0, TEXT_ONLY: 1, IMAGE_ONLY: 2}  # for arrays of patterns


def pattern(has_image: bool, has_text: bool) -> str:
    """What a clipping has: COMPLETE, TEXT_ONLY or IMAGE_ONLY (a clipping with neither is
    refused before it is embedded)."""
    if has_image and has_text:
        return COMPLETE
    return TEXT_ONLY if has_text else IMAGE_ONLY


def pair_cut(cut: float, text_only: float | None, image_only: float | None, a: str, b: str) -> float:
    """The cosine at or above which clippings of patterns a and b link."""
    if a == b or (text_only is None and image_only is None):
        return cut
    partial = b if a == COMPLETE else a if b == COMPLETE else None
    if partial is None:  # a caption alone against a photo alone
        return NEVER
    chosen = text_only if partial == TEXT_ONLY else image_only
    return cut if chosen is None else chosen


def lowest_cut(cut: float, text_only: float | None, image_only: float | None) -> float:
    return min(c for c in (cut, text_only, image_only) if c is not None)


def cut_table(cut: float, text_only: float | None, image_only: float | None) -> np.ndarray:
    """(3, 3) float32: pair_cut for every two of CODES' patterns, for vectorised lookups."""
    kinds = sorted(CODES, key=CODES.get)
    return np.array([[pair_cut(cut, text_only, image_only, a, b) for b in kinds] for a in kinds], np.float32)


def pattern_codes(image_present: np.ndarray, text_present: np.ndarray) -> np.ndarray:
    """(N,) int: CODES of each clipping's pattern, from the towers' presence flags."""
    ip, tp = np.asarray(image_present) > 0, np.asarray(text_present) > 0
    return np.where(ip & tp, CODES[COMPLETE], np.where(tp, CODES[TEXT_ONLY], CODES[IMAGE_ONLY]))

