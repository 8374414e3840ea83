"""Datasets as tensors: every record preprocessed once, kept in memory for all epochs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from clippings.data.dataset import Record
from clippings.errors import DatasetError
from clippings.runtime.preprocess import PreprocessConfig, Tokenizer, load_image, prepare_image, stack_images


@dataclass
class EncodedRecords:
    ids: list[str]
    entities: list[str | None]
    pixels: torch.Tensor  # (N, C, H, W) float16: halves memory; cast per batch
    image_present: torch.Tensor  # (N,) float32
    text_ids: torch.Tensor  # (N, L) int64
    text_present: torch.Tensor  # (N,) float32
    texts: list[str]

    def __len__(self) -> int:
        return len(self.ids)

    def batch(self, idx: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(idx)
        return self.pixels[idx].float(), self.text_ids[idx], self.image_present[idx], self.text_present[idx]

    def subset(self, idx: Sequence[int]) -> "EncodedRecords":
        t = torch.as_tensor(list(idx), dtype=torch.long)
        return EncodedRecords(
            [self.ids[i] for i in idx], [self.entities[i] for i in idx], self.pixels[t],
            self.image_present[t], self.text_ids[t], self.text_present[t], [self.texts[i] for i in idx],
        )


def _prepared(r: Record, cfg: PreprocessConfig) -> np.ndarray | None:
    if r.image is None:
        return None
    try:
        return prepare_image(load_image(r.image), cfg)
    except Exception as exc:  # noqa: BLE001 (Pillow raises many types on bad files)
        raise DatasetError(f"{r.origin or r.id}: image {r.image} cannot be read: "
                           f"{type(exc).__name__}: {exc}") from None


def encode_records(
    records: Sequence[Record], cfg: PreprocessConfig, tokenizer: Tokenizer, desc: str = "preprocess",
    chunk: int = 512,
) -> EncodedRecords:
    """Every record through the serving path's preprocessing and batch assembly (stack_images),
    a chunk at a time, kept as float16 to halve the memory of a whole training set."""
    n = len(records)
    pixels = np.zeros((n, cfg.channels, cfg.image_height, cfg.image_width), np.float16)
    image_present = np.zeros(n, np.float32)
    text_ids, text_present = tokenizer([r.text for r in records])
    # PIL decodes with the GIL released, so threads overlap decoding on both cores.
    with ThreadPoolExecutor(max_workers=4) as pool, tqdm(total=n, desc=desc, unit="rec", leave=False) as bar:
        for s in range(0, n, chunk):
            part = records[s : s + chunk]
            batch, present = stack_images(list(pool.map(lambda r: _prepared(r, cfg), part)), cfg)
            pixels[s : s + len(part)] = batch
            image_present[s : s + len(part)] = present
            bar.update(len(part))
    return EncodedRecords(
        ids=[r.id for r in records],
        entities=[r.entity for r in records],
        pixels=torch.from_numpy(pixels),
        image_present=torch.from_numpy(image_present),
        text_ids=torch.from_numpy(text_ids),
        text_present=torch.from_numpy(text_present),
        texts=[r.text for r in records],
    )
