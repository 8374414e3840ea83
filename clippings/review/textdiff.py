"""Character differences between two OCR texts, as segments a template marks (and escapes)."""

from __future__ import annotations

from difflib import SequenceMatcher

MAX_CHARS = 5_000  # SequenceMatcher is quadratic in the worst case; a caption is far shorter


def segments(a: str, b: str) -> tuple[list[tuple[str, bool]], list[tuple[str, bool]]]:
    """-> (segments of a, segments of b): (text, differs) runs; differs marks characters the
    other text does not have at that place."""
    a, b = a[:MAX_CHARS], b[:MAX_CHARS]
    left: list[tuple[str, bool]] = []
    right: list[tuple[str, bool]] = []
    # autojunk off: with it, frequent characters (spaces, 'e') of a long text are ignored as junk.
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        same = tag == "equal"
        if i2 > i1:
            left.append((a[i1:i2], not same))
        if j2 > j1:
            right.append((b[j1:j2], not same))
    return left, right
