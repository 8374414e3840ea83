"""Datasets as tensors: every record preprocessed once, kept in memory for all epochs."""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from clippings.data.dataset import Record, record_image
from clippings.runtime.preprocess import PreprocessConfig, Tokenizer, prepare_image, stack_images

log = logging.getLogger(__name__)


@dataclass
class EncodedRecords:
    ids: list[str]
    entities: list[str | None]
    pixels: torch.Tensor  # (N, C, H, W) float16, or a trunk's output per record: halves memory; cast per batch
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


def _through(trunk: Trunk, pixels: np.ndarray, present: np.ndarray, batch: int = 32) -> np.ndarray:
    """The trunk over the images that are there, a batch at a time; zeros for the others."""
    have = np.flatnonzero(present > 0)
    parts = [trunk(pixels[have[s : s + batch]]) for s in range(0, len(have), batch)]
    shape = parts[0].shape[1:] if parts else trunk(pixels[:1]).shape[1:]  # a chunk of text-only records
    out = np.zeros((len(pixels), *shape), np.float32)
    if parts:
        out[have] = np.concatenate(parts)
    return out


def _prepared(r: Record, cfg: PreprocessConfig) -> np.ndarray | None:
    image = record_image(r)
    return None if image is None else prepare_image(image, cfg)


Trunk = Callable[[np.ndarray], np.ndarray]  # pixels (n, C, H, W) -> features (n, ...), e.g. TrunkRunner


def encode_records(
    records: Sequence[Record], cfg: PreprocessConfig, tokenizer: Tokenizer, desc: str = "preprocess",
    chunk: int = 512, trunk: Trunk | None = None, cache_dir: Path | None = None,
) -> EncodedRecords:
    """Every record through the serving path's preprocessing and batch assembly (stack_images),
    a chunk at a time, kept as float16 to halve the memory of a whole training set. With a
    frozen trunk, what is kept is the trunk's output for each image (zeros for no image),
    saved in cache_dir when given, so that a resumed or repeated run does not read every crop again."""
    text_ids, text_present = tokenizer([r.text for r in records])
    if trunk is not None and cache_dir is not None:
        # One cache file per records.jsonl: a run over several data sets reuses each one's.
        parts = [cached(cache_dir / f"features-{_cache_key(group, cfg, trunk)}.npz",
                        lambda group=group: _encode_images(group, cfg, desc, chunk, trunk))
                 for group in _by_source(records)]
        pixels = np.concatenate([p[0] for p in parts])
        image_present = np.concatenate([p[1] for p in parts])
    else:
        pixels, image_present = _encode_images(records, cfg, desc, chunk, trunk)
    return EncodedRecords(
        ids=[r.id for r in records],
        entities=[r.entity for r in records],
        pixels=torch.from_numpy(pixels),
        image_present=torch.from_numpy(image_present),
        text_ids=torch.from_numpy(text_ids),
        text_present=torch.from_numpy(text_present),
        texts=[r.text for r in records],
    )


def _by_source(records: Sequence[Record]) -> list[list[Record]]:
    """Runs of records from the same records.jsonl (origin is "path:line")."""
    return [list(g) for _, g in itertools.groupby(records, key=lambda r: r.origin.rpartition(":")[0])]


def _cache_key(records: Sequence[Record], cfg: PreprocessConfig, trunk: Trunk) -> str:
    """Changes with the trunk, the preprocessing, and any record's image file."""
    h = hashlib.sha256(json.dumps([getattr(trunk, "identity", repr(trunk)), cfg.to_dict()]).encode())
    for r in records:
        st = os.stat(r.image) if r.image else None
        h.update(f"{r.image}|{st.st_size if st else 0}|{st.st_mtime_ns if st else 0}\n".encode())
    return h.hexdigest()[:16]


def cached(path: Path, compute: Callable[[], tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    if path.is_file():
        with np.load(path) as z:
            log.info("features from cache path=%s", path)
            return z["features"], z["present"]
    features, present = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, features=features, present=present)
    tmp.replace(path)  # a run stopped mid-write leaves no half cache behind
    return features, present


def _encode_images(records: Sequence[Record], cfg: PreprocessConfig, desc: str, chunk: int,
                   trunk: Trunk | None) -> tuple[np.ndarray, np.ndarray]:
    n = len(records)
    pixels: np.ndarray | None = None
    image_present = np.zeros(n, np.float32)
    # PIL decodes with the GIL released, so threads overlap decoding on both cores.
    with ThreadPoolExecutor(max_workers=4) as pool, tqdm(total=n, desc=desc, unit="rec", leave=False) as bar:
        for s in range(0, n, chunk):
            part = records[s : s + chunk]
            batch, present = stack_images(list(pool.map(lambda r: _prepared(r, cfg), part)), cfg)
            if trunk is not None:
                batch = _through(trunk, batch, present)
            if pixels is None:
                pixels = np.zeros((n, *batch.shape[1:]), np.float16)
            pixels[s : s + len(part)] = batch
            image_present[s : s + len(part)] = present
            bar.update(len(part))
    if pixels is None:
        pixels = np.zeros((0, cfg.channels, cfg.image_height, cfg.image_width), np.float16)
    return pixels, image_present
