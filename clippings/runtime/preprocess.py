"""Preprocessing shared by training, export, evaluation and the services.

NumPy and Pillow only: the services run without PyTorch. The parameters travel in the
model's manifest, so a served model always sees inputs prepared as in training.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np
from PIL import Image
from pydantic import ConfigDict

from clippings.runtime.image_modes import as_8bit_upright

HASHED_TOKENIZERS = ("chars", "ngrams")  # need no file beside the model
_HASH_MULT = np.uint64(2654435761)  # Knuth's multiplicative hash: spreads CJK codepoints over buckets


@dataclass(frozen=True)
class PreprocessConfig:
    # Read inside the manifest by pydantic: an unknown key fails the load instead of vanishing.
    __pydantic_config__ = ConfigDict(extra="forbid")

    image_height: int = 32
    image_width: int = 128
    channels: int = 1  # 1: grayscale (text crops), 3: RGB (photos)
    reflow_tall: bool = True  # vertical Japanese crops are re-laid as one horizontal line
    rotate_tall: bool = False  # or turned 90 degrees counter-clockwise, as a line recogniser reads them
    pad_value: int = 255  # letterbox fill: paper white
    align_left: bool = False  # letterbox at the left edge (where a line recogniser expects text) or centred
    mean: float | tuple[float, ...] = 0.5  # one value, or one per channel (CLIP's)
    std: float | tuple[float, ...] = 0.5
    text_max_len: int = 40  # characters (or tokens) kept after NFKC normalisation
    text_buckets: int = 8192  # hashed character vocabulary; id 0 is padding
    text_bigram_buckets: int = 0  # tokenizer "ngrams": hashed character pairs, ids after the unigrams
    text_word_buckets: int = 0  # tokenizer "ngrams": hashed lower-cased words, ids after the pairs
    tokenizer: str = "chars"  # "chars": hashed characters in order; "ngrams": a bag of hashed
    # characters and character pairs; else a tokenizer.json beside the model
    casefold: bool = False  # hashed tokenizers: fold case first ("FIRE" = "Fire" = "fire")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "PreprocessConfig":
        """From to_dict's output (a checkpoint's config); an unknown key is an error, not dropped."""
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise TypeError(f"unknown preprocessing key(s) {', '.join(map(repr, unknown))}")
        kw = dict(d)
        for k in ("mean", "std"):
            if isinstance(kw.get(k), list):
                kw[k] = tuple(kw[k])
        return cls(**kw)


def prepare_image(img: Image.Image, cfg: PreprocessConfig) -> np.ndarray:
    """One PIL image -> (C, H, W) float32, letterboxed to the model's size."""
    img = as_8bit_upright(img).convert("L" if cfg.channels == 1 else "RGB")
    if img.height > 1.5 * img.width:
        if cfg.rotate_tall:
            img = img.rotate(90, expand=True)  # counter-clockwise: the first character ends up on the left
        elif cfg.reflow_tall:
            img = reflow_vertical(img, cfg.pad_value)
    w, h = img.size
    scale = min(cfg.image_width / w, cfg.image_height / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    img = img.resize((nw, nh), Image.Resampling.BILINEAR)
    fill = cfg.pad_value if cfg.channels == 1 else (cfg.pad_value,) * 3
    canvas = Image.new(img.mode, (cfg.image_width, cfg.image_height), fill)
    canvas.paste(img, (0 if cfg.align_left else (cfg.image_width - nw) // 2, (cfg.image_height - nh) // 2))
    arr = np.asarray(canvas, dtype=np.float32) * (1.0 / 255.0)
    arr = arr[None] if cfg.channels == 1 else arr.transpose(2, 0, 1)  # (C, H, W)
    mean = np.asarray(cfg.mean, np.float32).reshape(-1, 1, 1)
    std = np.asarray(cfg.std, np.float32).reshape(-1, 1, 1)
    return (arr - mean) / std


def _inked(gray: np.ndarray, axis: int) -> np.ndarray:
    """Which rows (axis=1) or columns (axis=0) carry print. Relative to the busiest line, so
    scanner speckle and paper texture in a gap do not count as ink."""
    lo, hi = float(gray.min()), float(gray.max())
    if hi - lo < 1e-3:
        return np.ones(gray.shape[1 - axis], bool)
    profile = (gray < (lo + hi) / 2).mean(axis=axis)
    return profile > 0.08 * profile.max()


def _char_cuts(gray: np.ndarray, cell: float) -> list[int]:
    """Row indices that split a one-column vertical crop into character cells: cut in the
    middle of blank row runs, never leaving a cell shorter than 0.6 of a character."""
    ink_rows = _inked(gray, axis=1)
    cuts, last, r = [0], 0, 0
    while r < len(ink_rows):
        if ink_rows[r]:
            r += 1
            continue
        start = r
        while r < len(ink_rows) and not ink_rows[r]:
            r += 1
        mid = (start + r) // 2
        if mid - last >= 0.6 * cell and len(ink_rows) - mid >= 0.6 * cell:
            cuts.append(mid)
            last = mid
    return cuts + [len(ink_rows)]


def _column_spans(gray: np.ndarray) -> list[tuple[int, int, int]]:
    """Text columns of a vertical crop, right to left as Japanese is read: runs of inked
    pixel columns, split at blank gaps, ignoring specks narrower than a quarter column."""
    ink = _inked(gray, axis=0)
    spans, c = [], 0
    while c < len(ink):
        if not ink[c]:
            c += 1
            continue
        start = c
        while c < len(ink) and ink[c]:
            c += 1
        spans.append((start, c))
    if not spans:
        return [(0, gray.shape[1], gray.shape[1])]
    widest = max(b - a for a, b in spans)
    spans = [(a, b) for a, b in spans if b - a >= 0.25 * widest]
    # Widen each column into half of the blank gap beside it, so strokes keep their margins.
    edges = [0] + [(b1 + a2) // 2 for (_, b1), (a2, _) in zip(spans[:-1], spans[1:])] + [gray.shape[1]]
    # (left, right, inked width): the inked width is the character size, margins excluded.
    return [(edges[i], edges[i + 1], b - a) for i, (a, b) in enumerate(spans)][::-1]


def reflow_vertical(img: Image.Image, pad_value: int) -> Image.Image:
    """A vertical crop (characters top to bottom, columns right to left) -> the same
    characters side by side, upright. A horizontal and a vertical print of one name then look
    alike to the CNN, where turning the whole crop would lay every character on its side."""
    gray = np.asarray(img.convert("L"), dtype=np.float32)
    tiles = []
    for a, b, char_w in _column_spans(gray):
        cuts = _char_cuts(gray[:, a:b], cell=float(char_w))
        for top, bottom in zip(cuts[:-1], cuts[1:]):
            # Characters printed without a blank row between them: split the run evenly.
            n = max(1, round((bottom - top) / (1.1 * char_w)))
            edges = np.linspace(top, bottom, n + 1).round().astype(int)
            tiles += [img.crop((a, int(t), b, int(u))) for t, u in zip(edges[:-1], edges[1:]) if u > t]
    height = max(t.height for t in tiles)
    fill = pad_value if img.mode == "L" else (pad_value,) * 3
    out = Image.new(img.mode, (sum(t.width for t in tiles), height), fill)
    x = 0
    for t in tiles:
        out.paste(t, (x, (height - t.height) // 2))
        x += t.width
    return out


def prepare_images(
    images: Sequence[Image.Image | None], cfg: PreprocessConfig
) -> tuple[np.ndarray, np.ndarray]:
    """-> pixels (N, C, H, W) float32, image_present (N,) float32."""
    return stack_images([None if img is None else prepare_image(img, cfg) for img in images], cfg)


def stack_images(
    prepared: Sequence[np.ndarray | None], cfg: PreprocessConfig
) -> tuple[np.ndarray, np.ndarray]:
    """prepare_image outputs, None for no image -> pixels (N, C, H, W) float32, image_present (N,)
    float32: the one batch assembly (a missing image is zeros, and absent for pooling)."""
    n = len(prepared)
    pixels = np.zeros((n, cfg.channels, cfg.image_height, cfg.image_width), np.float32)
    present = np.zeros(n, np.float32)
    for i, img in enumerate(prepared):
        if img is not None:
            pixels[i] = img
            present[i] = 1.0
    return pixels, present


def normalize_text(text: str) -> str:
    # NFKC folds full-width Latin and half-width kana, the commonest OCR variants.
    return " ".join(unicodedata.normalize("NFKC", text).split())


def _hash(codepoints: np.ndarray) -> np.ndarray:
    return (codepoints.astype(np.uint64) * _HASH_MULT) % np.uint64(2**32)


def unigram_bucket(char: str, buckets: int) -> int:
    """The id tokenize_text and tokenize_ngrams give one (normalised) character."""
    return int(1 + _hash(np.array([ord(char)], np.uint32))[0] % np.uint64(buckets - 1))


def _word_ids(text: str, cfg: PreprocessConfig) -> np.ndarray:
    if not cfg.text_word_buckets:
        return np.zeros(0, np.int64)
    base = cfg.text_buckets + cfg.text_bigram_buckets
    words = text.casefold().split()
    return np.array([base + int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little")
                     % cfg.text_word_buckets for w in words], np.int64)


def text_hashes(text: str) -> np.ndarray:
    """The hash of each character of an already normalised text -> (len,) uint64."""
    return _hash(np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32))


def pair_hashes(h: np.ndarray) -> np.ndarray:
    """text_hashes -> the hash of each pair of neighbouring characters, (len - 1,) uint64."""
    # A 64-bit mix of both characters' hashes, so (a, b) and (b, a) differ.
    return (h[:-1] * np.uint64(0x9E3779B1) + h[1:]) % np.uint64(2**61 - 1)


def tokenize_ngrams(text: str, cfg: PreprocessConfig) -> np.ndarray:
    """One string -> (text_max_len,) int64: the hashed characters, the hashed pairs of
    neighbouring characters, then the hashed words, 0-padded. A bag: order carries no meaning."""
    ids = np.zeros(cfg.text_max_len, np.int64)
    text = normalize_text(text).casefold() if cfg.casefold else normalize_text(text)
    h = text_hashes(text)
    uni = 1 + (h % np.uint64(cfg.text_buckets - 1)).astype(np.int64)
    pair = pair_hashes(h)
    bi = cfg.text_buckets + (pair % np.uint64(cfg.text_bigram_buckets)).astype(np.int64)
    every = np.concatenate([uni, bi, _word_ids(text, cfg)])[: cfg.text_max_len]
    ids[: len(every)] = every
    return ids


def tokenize_text(text: str, cfg: PreprocessConfig) -> np.ndarray:
    """One string -> (text_max_len,) int64 hashed character ids, 0-padded."""
    ids = np.zeros(cfg.text_max_len, np.int64)
    text = normalize_text(text).casefold() if cfg.casefold else normalize_text(text)
    cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)[: cfg.text_max_len]
    ids[: len(cps)] = 1 + (_hash(cps) % np.uint64(cfg.text_buckets - 1)).astype(np.int64)
    return ids


def tokenize_texts(texts: Sequence[str], cfg: PreprocessConfig) -> tuple[np.ndarray, np.ndarray]:
    """-> text_ids (N, L) int64, text_present (N,) float32."""
    one = tokenize_ngrams if cfg.tokenizer == "ngrams" else tokenize_text
    ids = np.zeros((len(texts), cfg.text_max_len), np.int64)
    for i, t in enumerate(texts):
        ids[i] = one(t or "", cfg)
    present = (ids[:, 0] != 0).astype(np.float32)
    return ids, present


class Tokenizer(Protocol):
    def __call__(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """-> text_ids (N, L) int64, text_present (N,) float32."""


class CharTokenizer:
    """Hashed characters (or character n-grams): Japanese and English alike, no vocabulary file to ship."""

    def __init__(self, cfg: PreprocessConfig):
        self.cfg = cfg

    def __call__(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        return tokenize_texts(texts, self.cfg)


class HFTokenizer:
    """A Hugging Face fast tokenizer (tokenizer.json) for pretrained CLIP text towers."""

    def __init__(self, path: Path, max_len: int):
        from tokenizers import Tokenizer as _Tokenizer

        self.tok = _Tokenizer.from_file(str(path))
        self.tok.enable_truncation(max_len)
        # Pad with 0: the exported text tower masks everything after the first end-of-text token.
        self.tok.enable_padding(length=max_len, pad_id=0)

    def __call__(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        norm = [normalize_text(t or "") for t in texts]
        ids = np.array([e.ids for e in self.tok.encode_batch(norm)], np.int64).reshape(len(norm), -1)
        return ids, np.array([1.0 if t else 0.0 for t in norm], np.float32)


def make_tokenizer(cfg: PreprocessConfig, base_dir: str | Path | None) -> Tokenizer:
    if cfg.tokenizer in HASHED_TOKENIZERS:
        return CharTokenizer(cfg)
    if base_dir is None:
        raise ValueError(f"tokenizer {cfg.tokenizer!r} needs the model folder it lives in")
    return HFTokenizer(Path(base_dir) / cfg.tokenizer, cfg.text_max_len)


def load_image(path) -> Image.Image:
    with Image.open(path) as im:
        im.load()
        return im
