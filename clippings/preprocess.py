"""Preprocessing shared by training, export, evaluation and the services.

NumPy and Pillow only: the services run without PyTorch. The parameters travel in the
model's manifest, so a served model always sees inputs prepared as in training.
"""

from __future__ import annotations

import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np
from PIL import Image

_HASH_MULT = np.uint64(2654435761)  # Knuth's multiplicative hash: spreads CJK codepoints over buckets


@dataclass(frozen=True)
class PreprocessConfig:
    image_height: int = 32
    image_width: int = 128
    channels: int = 1  # 1: grayscale (text crops), 3: RGB (photos)
    rotate_tall: bool = True  # vertical Japanese crops are turned to lie like horizontal ones
    pad_value: int = 255  # letterbox fill: paper white
    mean: float | tuple[float, ...] = 0.5  # one value, or one per channel (CLIP's)
    std: float | tuple[float, ...] = 0.5
    text_max_len: int = 40  # characters (or tokens) kept after NFKC normalisation
    text_buckets: int = 8192  # hashed character vocabulary; id 0 is padding
    tokenizer: str = "chars"  # "chars": hashed characters; else a tokenizer.json beside the model

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "PreprocessConfig":
        kw = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        for k in ("mean", "std"):
            if isinstance(kw.get(k), list):
                kw[k] = tuple(kw[k])
        return cls(**kw)


def prepare_image(img: Image.Image, cfg: PreprocessConfig) -> np.ndarray:
    """One PIL image -> (C, H, W) float32, letterboxed to the model's size."""
    img = img.convert("L" if cfg.channels == 1 else "RGB")
    w, h = img.size
    if cfg.rotate_tall and h > 1.5 * w:
        img = img.transpose(Image.Transpose.ROTATE_90)
        w, h = h, w
    scale = min(cfg.image_width / w, cfg.image_height / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    img = img.resize((nw, nh), Image.Resampling.BILINEAR)
    fill = cfg.pad_value if cfg.channels == 1 else (cfg.pad_value,) * 3
    canvas = Image.new(img.mode, (cfg.image_width, cfg.image_height), fill)
    canvas.paste(img, ((cfg.image_width - nw) // 2, (cfg.image_height - nh) // 2))
    arr = np.asarray(canvas, dtype=np.float32) * (1.0 / 255.0)
    arr = arr[None] if cfg.channels == 1 else arr.transpose(2, 0, 1)  # (C, H, W)
    mean = np.asarray(cfg.mean, np.float32).reshape(-1, 1, 1)
    std = np.asarray(cfg.std, np.float32).reshape(-1, 1, 1)
    return (arr - mean) / std


def prepare_images(
    images: Sequence[Image.Image | None], cfg: PreprocessConfig
) -> tuple[np.ndarray, np.ndarray]:
    """-> pixels (N, C, H, W) float32, image_present (N,) float32."""
    n = len(images)
    pixels = np.zeros((n, cfg.channels, cfg.image_height, cfg.image_width), np.float32)
    present = np.zeros(n, np.float32)
    for i, img in enumerate(images):
        if img is not None:
            pixels[i] = prepare_image(img, cfg)
            present[i] = 1.0
    return pixels, present


def normalize_text(text: str) -> str:
    # NFKC folds full-width Latin and half-width kana, the commonest OCR variants.
    return " ".join(unicodedata.normalize("NFKC", text).split())


def tokenize_text(text: str, cfg: PreprocessConfig) -> np.ndarray:
    """One string -> (text_max_len,) int64 hashed character ids, 0-padded."""
    ids = np.zeros(cfg.text_max_len, np.int64)
    cps = np.frombuffer(normalize_text(text).encode("utf-32-le"), dtype=np.uint32)[: cfg.text_max_len]
    hashed = (cps.astype(np.uint64) * _HASH_MULT) % np.uint64(2**32)
    ids[: len(cps)] = 1 + (hashed % np.uint64(cfg.text_buckets - 1)).astype(np.int64)
    return ids


def tokenize_texts(texts: Sequence[str], cfg: PreprocessConfig) -> tuple[np.ndarray, np.ndarray]:
    """-> text_ids (N, L) int64, text_present (N,) float32."""
    ids = np.zeros((len(texts), cfg.text_max_len), np.int64)
    for i, t in enumerate(texts):
        ids[i] = tokenize_text(t or "", cfg)
    present = (ids[:, 0] != 0).astype(np.float32)
    return ids, present


class Tokenizer(Protocol):
    def __call__(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """-> text_ids (N, L) int64, text_present (N,) float32."""


class CharTokenizer:
    """Hashed characters: Japanese and English alike, no vocabulary file to ship."""

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
    if cfg.tokenizer == "chars":
        return CharTokenizer(cfg)
    if base_dir is None:
        raise ValueError(f"tokenizer {cfg.tokenizer!r} needs the model folder it lives in")
    return HFTokenizer(Path(base_dir) / cfg.tokenizer, cfg.text_max_len)


def load_image(path) -> Image.Image:
    with Image.open(path) as im:
        im.load()
        return im
