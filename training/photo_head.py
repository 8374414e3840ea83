"""The stage after stage 2 for a model with a pretrained photo trunk: its linear head.

The trunk and the rest of the model stay frozen. Each training photo goes through the trunk
once (its forward pass is most of what a step would otherwise cost) and through the tower
once; then the head alone learns, by InfoNCE over two photos of each of `stories` stories a
step, what to add to the tower's vector so that the reprints of one story's photo meet and
other stories' photos part. Trained after the tower, it learns what the tower misses.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from clippings.training.data import EncodedRecords

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeadConfig:
    steps: int = 1500
    stories: int = 256  # a step's stories, two photos each
    lr: float = 1e-3
    temperature: float = 0.07
    seed: int = 0


@torch.no_grad()
def photo_inputs(model: torch.nn.Module, records: EncodedRecords, batch: int = 128,
                 ) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """-> the tower's unit vectors (N, D), the trunk's features (N, F) and the records' rows,
    for the records with a photo."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    rows = torch.nonzero(records.image_present > 0).flatten()
    towers, features = [], []
    with tqdm(total=len(rows), desc="photo trunk", unit="photo") as bar:
        for s in range(0, len(rows), batch):
            pixels = records.pixels[rows[s : s + batch]].float().to(device)
            towers.append(model.encode_tower(pixels))
            features.append(model.photo_trunk(pixels))
            bar.update(len(pixels))
    model.train(was_training)
    return torch.cat(towers), torch.cat(features), rows.numpy()


def story_pairs(entities: list[str | None], rows: np.ndarray) -> list[np.ndarray]:
    """Positions (into `rows`) of each story's photos, for the stories with two or more."""
    by_story: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        if entities[r]:
            by_story.setdefault(entities[r], []).append(i)
    return [np.asarray(v) for v in by_story.values() if len(v) >= 2]


def train_photo_head(model: torch.nn.Module, records: EncodedRecords, cfg: HeadConfig = HeadConfig()) -> list[float]:
    """Fits the head's standardisation and trains it; sets `model.head_trained`. -> losses."""
    towers, features, rows = photo_inputs(model, records)
    stories = story_pairs(records.entities, rows)
    if len(stories) < 2:
        raise ValueError("the photo head needs two or more stories with two photos each in the training data")
    head = model.photo_head
    head.fit_scale(features)
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=1e-4)
    rng = np.random.default_rng(cfg.seed)
    n = min(cfg.stories, len(stories))
    target = torch.arange(n, device=towers.device)
    losses = []
    with tqdm(total=cfg.steps, desc="photo head", unit="step") as bar:
        for step in range(cfg.steps):
            for g in opt.param_groups:  # cosine decay: the head is small and converges fast
                g["lr"] = cfg.lr * 0.5 * (1 + math.cos(math.pi * step / cfg.steps))
            picked = rng.choice(len(stories), n, replace=False)
            pairs = np.stack([rng.choice(stories[i], 2, replace=False) for i in picked])  # (n, 2)
            a = model.add_head(towers[pairs[:, 0]], features[pairs[:, 0]])
            b = model.add_head(towers[pairs[:, 1]], features[pairs[:, 1]])
            logits = a @ b.T / cfg.temperature
            loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
            bar.update(1)
    model.head_trained.fill_(True)
    log.info("photo_head_done steps=%d stories=%d photos=%d loss=%.4f", cfg.steps, len(stories), len(rows),
             float(np.mean(losses[-50:])))
    return losses
