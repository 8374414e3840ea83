"""The symmetric bi-encoder: a vision tower and a text tower meeting in one unit sphere."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from clippings.errors import ModelError
from clippings.models.config import ModelConfig
from clippings.models.encoders import HybridTextEncoder, NgramBagEncoder, TextEncoder, VisionEncoder
from clippings.models.photo_trunk import PhotoHead, PhotoTrunk


def pool(
    image_emb: torch.Tensor,  # (B, D) unit rows
    text_emb: torch.Tensor,  # (B, D) unit rows
    image_weight: float,
    image_present: torch.Tensor | None = None,  # (B,) 0/1
    text_present: torch.Tensor | None = None,  # (B,) 0/1
) -> torch.Tensor:
    """normalize(w * img + (1 - w) * txt), the paper's pooled embedding; a missing modality drops out.

    The torch mirror of `clippings.runtime.onnx_model.pool`, which defines what is served; this
    one exists only so training can backpropagate through the pooling (tests/test_model.py ties
    the two). Change them together."""
    wi = image_weight if image_present is None else image_weight * image_present[:, None]
    wt = (1.0 - image_weight) if text_present is None else (1.0 - image_weight) * text_present[:, None]
    return F.normalize(wi * image_emb + wt * text_emb, dim=-1)


def ngram_rows(pre) -> int:
    """Rows of an n-gram table: padding and unigrams, then pairs, then words."""
    return pre.text_buckets + pre.text_bigram_buckets + pre.text_word_buckets


def ngram_segments(pre) -> tuple[int, int]:
    """(first pair id, first word id) of the "ngrams" tokenizer (runtime/preprocess.tokenize_ngrams)."""
    return pre.text_buckets, pre.text_buckets + pre.text_bigram_buckets


def _photo_trunk(cfg: ModelConfig) -> tuple[PhotoTrunk | None, PhotoHead | None]:
    """The pretrained trunk and its head a preset asks for; both None when it asks for none."""
    v, pre = cfg.vision, cfg.preprocess
    if v.trunk is None:
        return None, None
    if v.trunk != "efficientnet-lite0":
        raise ModelError(f"unknown photo trunk {v.trunk!r} (known: efficientnet-lite0)")
    if pre.channels != 1 or pre.image_height != pre.image_width:
        raise ModelError("the photo trunk reads the tower's square grey input: give the preset channels=1 "
                         "and image_height == image_width")
    trunk = PhotoTrunk(pre.image_height, v.trunk_size, v.trunk_block)
    return trunk, PhotoHead(trunk.features, cfg.embed_dim)


class BiEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        pre = cfg.preprocess
        self.vision = VisionEncoder(cfg.vision, pre.channels, cfg.embed_dim)
        if cfg.text.kind == "bag":
            self.text = NgramBagEncoder(ngram_rows(pre), cfg.embed_dim, ngram_segments(pre), cfg.text.decay,
                                        pre.text_max_len)
        elif cfg.text.kind == "hybrid":
            self.text = HybridTextEncoder(cfg.text, ngram_rows(pre), pre.text_buckets, cfg.embed_dim,
                                          ngram_segments(pre), pre.text_max_len)
        else:
            self.text = TextEncoder(cfg.text, pre.text_buckets, pre.text_max_len, cfg.embed_dim)
        self.photo_trunk, self.photo_head = _photo_trunk(cfg)
        if self.photo_trunk is not None:
            # False until the head is trained (training/photo_head.py, after stage 2): until then
            # the photo's vector is the tower's alone, and training never runs the trunk.
            self.register_buffer("head_trained", torch.tensor(False))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))  # CLIP's initial temperature
        # Loaded from an exported graph, the trunk's norms are folded (models/exported.py): they
        # stay in eval mode while the rest trains, or batch statistics would change what it computes.
        self.frozen_norms = False

    def train(self, mode: bool = True) -> "BiEncoder":
        super().train(mode)
        if self.frozen_norms:
            for m in self.vision.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.eval()
        return self

    def no_weight_decay(self) -> set[str]:
        """An n-gram table is left undecayed: decay would shrink the rows no batch used."""
        if isinstance(self.text, NgramBagEncoder):
            return {"text.table.weight"}
        return {"text.bag.table.weight"} if isinstance(self.text, HybridTextEncoder) else set()

    def encode_tower(self, pixels: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.vision(pixels), dim=-1)  # (B, D)

    def add_head(self, tower: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """The tower's unit vectors with the trunk head's added at the config's weight, normalised."""
        head = F.normalize(self.photo_head(features), dim=-1)
        return F.normalize(tower + self.cfg.vision.trunk_weight * head, dim=-1)

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        tower = self.encode_tower(pixels)
        if self.photo_trunk is None or not bool(self.head_trained):
            return tower
        return self.add_head(tower, self.photo_trunk(pixels))  # (B, D)

    def encode_text(self, text_ids: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text(text_ids), dim=-1)  # (B, D)

    def forward(self, pixels: torch.Tensor, text_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encode_image(pixels), self.encode_text(text_ids)
