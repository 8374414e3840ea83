"""A pretrained CLIP from a local Hugging Face folder (CLIPModel), as a CLIPPINGS bi-encoder.

For users with GPUs and their own copy of e.g. openai/clip-vit-base-patch32. Nothing is
downloaded: the folder must hold config.json, the weights and tokenizer.json.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from clippings.errors import ModelError
from clippings.models.config import ModelConfig
from clippings.runtime.preprocess import PreprocessConfig

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def hf_clip_config(path: str | Path, image_weight: float = 0.5) -> ModelConfig:
    path = Path(path).resolve()
    if not (path / "config.json").is_file():
        raise ModelError(f"{path}: no config.json; give a local Hugging Face CLIPModel folder")
    if not (path / "tokenizer.json").is_file():
        raise ModelError(f"{path}: no tokenizer.json; save the fast tokenizer beside the model "
                         "(CLIPTokenizerFast.save_pretrained)")
    cfg = json.loads((path / "config.json").read_text())
    size = cfg.get("vision_config", {}).get("image_size", 224)
    pre = PreprocessConfig(
        image_height=size, image_width=size, channels=3, reflow_tall=False, pad_value=255,
        mean=CLIP_MEAN, std=CLIP_STD,
        text_max_len=cfg.get("text_config", {}).get("max_position_embeddings", 77), tokenizer="tokenizer.json",
    )
    return ModelConfig(name=path.name, family="hf-clip", embed_dim=cfg.get("projection_dim", 512),
                       image_weight=image_weight, preprocess=pre, hf_path=str(path))


class HFClipBiEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder only; never reach for a hub
        from transformers import CLIPModel

        self.cfg = cfg
        # Eager attention exports to plain ONNX ops; SDPA kernels gain nothing at export time.
        self.clip = CLIPModel.from_pretrained(cfg.hf_path, local_files_only=True, attn_implementation="eager")
        self.eos_id = int(self.clip.config.text_config.eos_token_id)

    @property
    def logit_scale(self) -> nn.Parameter:
        return self.clip.logit_scale

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.clip.get_image_features(pixel_values=pixels).pooler_output, dim=-1)

    def encode_text(self, text_ids: torch.Tensor) -> torch.Tensor:
        # Attend up to and including the first end-of-text token; whatever pads after it is ignored,
        # so the served tokenizer may pad with any id.
        is_eos = (text_ids == self.eos_id).long()
        mask = ((is_eos.cumsum(dim=1) - is_eos) == 0).long()
        return F.normalize(self.clip.get_text_features(input_ids=text_ids, attention_mask=mask).pooler_output, dim=-1)

    def forward(self, pixels: torch.Tensor, text_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encode_image(pixels), self.encode_text(text_ids)
