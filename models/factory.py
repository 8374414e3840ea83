"""One way in: training, export and tests build and load models only through here.

A checkpoint rebuilds itself: config, weights and training state in one file, so export and
serving never need the training flags.
"""

from __future__ import annotations

from pathlib import Path

import torch

from clippings.errors import ModelError
from clippings.models.config import ModelConfig


def create_model(cfg: ModelConfig, pretrained: bool = False) -> torch.nn.Module:
    """The model a config describes; `pretrained`: with a pretrained photo trunk's weights
    loaded from its package (training starts so; a checkpoint or a graph brings its own)."""
    if cfg.family == "small":
        from clippings.models.biencoder import BiEncoder

        model = BiEncoder(cfg)
        if pretrained and model.photo_trunk is not None:
            model.photo_trunk.load_pretrained()
        return model
    if cfg.family == "reader":
        from clippings.models.reader import ReaderBiEncoder

        return ReaderBiEncoder(cfg)
    if cfg.family == "hf-clip":
        from clippings.models.hf_clip import HFClipBiEncoder

        return HFClipBiEncoder(cfg)
    raise ModelError(f"unknown model family {cfg.family!r} (known: small, reader, hf-clip)")


def save_checkpoint(path: Path, model: torch.nn.Module, cfg: ModelConfig, **state) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"config": cfg.to_dict(), "model": model.state_dict(), **state}, tmp)
    tmp.replace(path)  # a crash mid-write never leaves a truncated checkpoint behind


def load_checkpoint(path: str | Path) -> tuple[torch.nn.Module, ModelConfig, dict]:
    path = Path(path)
    if path.is_dir():
        path = path / "best.pt"
    if not path.is_file():
        raise ModelError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        cfg = ModelConfig.from_dict(ckpt["config"])
    except (KeyError, RuntimeError, TypeError) as exc:
        raise ModelError(f"{path}: not a clippings checkpoint: {exc}") from exc
    model = create_model(cfg)
    model.load_state_dict(ckpt["model"])
    model.eval()
    return model, cfg, ckpt
