"""The reader bi-encoder (family "reader"): a pretrained line recogniser reads the crop, and
both towers embed characters through one learned table.

- Crop tower: the frozen trunk's CTC posteriors, summed over the line (the blank dropped),
  square-rooted: a soft bag of the characters the reader saw, however the line was laid
  out. The bag is projected by the character table.
- Text tower: hashed character unigrams and bigrams of the record's text, summed through
  the same table.

The recogniser's classes index the rows of their own characters' unigram buckets, so a
crop and its text meet in one space before any training, also for characters no training
name contained; training then learns what to weigh (legal forms and common words light,
distinctive characters heavy) and which OCR confusions to forgive.

The module's vision input is the trunk's posteriors (batch, steps, classes). Training feeds
them summed over the line (steps = 1, computed once per crop by `TrunkRunner`); export runs
the same head on the trunk's per-step output, which it sums itself.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from clippings.errors import ModelError
from clippings.models.biencoder import ngram_rows
from clippings.models.config import ModelConfig
from clippings.models.encoders import NgramBagEncoder
from clippings.models.trunk import trunk_dictionary
from clippings.runtime.preprocess import normalize_text, unigram_bucket

TABLE_NAME = "table16"  # the exported graph's initializer: the character table, float16
PIECES = 3  # a class whose NFKC form is several characters (㈱ -> (株)) takes up to 3 rows


def class_rows(dictionary: tuple[str, ...], buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """-> rows (classes, PIECES) int64, weights (classes, PIECES) float32: the unigram buckets
    of each non-blank class's characters, as the text tokenizer would hash them."""
    rows = np.zeros((len(dictionary), PIECES), np.int64)
    weights = np.zeros((len(dictionary), PIECES), np.float32)
    for i, entry in enumerate(dictionary):
        chars = normalize_text(entry).replace(" ", "")[:PIECES]
        for k, ch in enumerate(chars):
            rows[i, k] = unigram_bucket(ch, buckets)
            weights[i, k] = 1.0
    return rows, weights


class ReaderBiEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        pre = cfg.preprocess
        rows, weights = class_rows(trunk_dictionary(cfg.trunk), pre.text_buckets)
        self.register_buffer("class_rows", torch.from_numpy(rows), persistent=False)
        self.register_buffer("class_weights", torch.from_numpy(weights), persistent=False)
        # The text tower's table is the crop tower's too. Its random initial rows keep cosines
        # of bags, so the untrained model already matches crops by the characters they share.
        self.text = NgramBagEncoder(ngram_rows(pre), cfg.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))  # stage 1's CLIP temperature

    def no_weight_decay(self) -> set[str]:
        return {"text.table.weight"}

    def class_table(self, table: torch.Tensor | None = None) -> torch.Tensor:
        """(classes, D): each recogniser class's row, the sum of its characters' unigram rows."""
        table = self.text.table.weight if table is None else table
        return (F.embedding(self.class_rows, table) * self.class_weights[..., None]).sum(dim=1)

    def encode_image(self, posteriors: torch.Tensor, table: torch.Tensor | None = None) -> torch.Tensor:
        bag = torch.sqrt(posteriors[:, :, 1:].sum(dim=1).clamp_min(0.0))  # (B, classes - 1): blank dropped
        return F.normalize(bag @ self.class_table(table), dim=-1)

    def encode_text(self, text_ids: torch.Tensor, table: torch.Tensor | None = None) -> torch.Tensor:
        if table is None:
            return F.normalize(self.text(text_ids), dim=-1)
        return F.normalize(F.embedding(text_ids, table).sum(dim=1), dim=-1)

    def forward(self, posteriors: torch.Tensor, text_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encode_image(posteriors), self.encode_text(text_ids)


def load_exported_weights(model: ReaderBiEncoder, model_dir: Path) -> None:
    """Fine-tuning from an exported model: its graph holds the whole trained head (the
    character table, as float16), so no checkpoint needs to ship beside it. A small-family
    graph holds every weight too (models/exported.py)."""
    import onnx
    from onnx import numpy_helper

    from clippings.runtime.manifest import Manifest

    manifest = Manifest.load(model_dir)
    if manifest.family == "small":
        from clippings.models.exported import load_small_exported

        return load_small_exported(model, model_dir, model_dir / manifest.files["fp32"], manifest.preprocess,
                                   manifest.embedding_dim)
    if manifest.family != "reader":
        raise ModelError(f"{model_dir}: a {manifest.family!r} model cannot be fine-tuned from its ONNX graph; "
                         "start from the checkpoint it was exported from (--init RUN/best.pt)")
    if manifest.preprocess != model.cfg.preprocess or manifest.embedding_dim != model.cfg.embed_dim:
        raise ModelError(f"{model_dir}: exported with other preprocessing or embedding size than preset "
                         f"{model.cfg.name!r}; train with the preset it was made with")
    graph = onnx.load(str(model_dir / manifest.files["fp32"])).graph
    tables = [numpy_helper.to_array(t) for t in graph.initializer if t.name == TABLE_NAME]
    if len(tables) != 1 or tables[0].shape != tuple(model.text.table.weight.shape):
        raise ModelError(f"{model_dir}: no character table {TABLE_NAME!r} of shape "
                         f"{tuple(model.text.table.weight.shape)} in its graph")
    with torch.no_grad():
        model.text.table.weight.copy_(torch.from_numpy(tables[0].astype(np.float32)))


class ServingReader(nn.Module):
    """The trained head as exported: the character table stored as float16 (half the file;
    cosines move by about 1e-7) and widened to float32 when it runs."""

    def __init__(self, model: ReaderBiEncoder):
        super().__init__()
        self.model = model
        self.register_buffer(TABLE_NAME, model.text.table.weight.detach().half())

    def forward(self, posteriors: torch.Tensor, text_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        table = getattr(self, TABLE_NAME).float()
        return self.model.encode_image(posteriors, table), self.model.encode_text(text_ids, table)
