"""Validation during training: the same scores as `clippings eval`, on PyTorch embeddings."""

from __future__ import annotations

import numpy as np
import torch

from clippings.runtime.onnx_model import pool
from clippings.evaluation.linking import tune_dedup_threshold
from clippings.models.config import ModelConfig
from clippings.evaluation.scoring import link_scores
from clippings.training.data import EncodedRecords


@torch.no_grad()
def embed_encoded(model: torch.nn.Module, enc: EncodedRecords, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """-> image_emb, text_emb, each (N, D) float32 unit rows."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    imgs, txts = [], []
    for s in range(0, len(enc), batch_size):
        pixels, ids, _, _ = enc.batch(torch.arange(s, min(s + batch_size, len(enc))))
        img, txt = model(pixels.to(device), ids.to(device))
        imgs.append(img.cpu().numpy())
        txts.append(txt.cpu().numpy())
    model.train(was_training)
    return np.concatenate(imgs), np.concatenate(txts)


def validate(model: torch.nn.Module, cfg: ModelConfig, val: EncodedRecords, splits: list[str]) -> dict:
    """Pooled-embedding score on the validation set: top-1 for a linking set, best-threshold
    ARI for a dedup set. "score" is the number the best checkpoint is chosen on."""
    img, txt = embed_encoded(model, val)
    vectors = pool(img, txt, val.image_present.numpy(), val.text_present.numpy(), cfg.image_weight)
    if {"corpus", "query"} <= set(splits):
        s = link_scores(vectors, splits, val.entities)
        return {"score": s["top1"], "val_top1": s["top1"], "link_threshold": s["threshold"],
                "dedup_threshold": tune_dedup_threshold(vectors, val.entities)[0]}
    threshold, ari = tune_dedup_threshold(vectors, val.entities)
    return {"score": ari, "val_ari": ari, "dedup_threshold": threshold}
