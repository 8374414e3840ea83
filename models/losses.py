"""The two losses of CLIPPINGS: CLIP's symmetric InfoNCE and supervised contrastive (SupCon)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE: row i's image and text are the positive pair, all others negatives.

    image_emb, text_emb: (B, D) unit rows. labels = arange(B); mean of the two cross-entropies.
    """
    logits = logit_scale * image_emb @ text_emb.T  # (B, B)
    labels = torch.arange(logits.shape[0], device=logits.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


def supcon_loss(features: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Khosla et al. (2020), L_out: every same-label row is a positive for the anchor.

    features: (B, D) unit rows; labels: (B,) ints. Anchors without a positive are left out.
    """
    b = features.shape[0]
    sim = features @ features.T / temperature  # (B, B)
    self_mask = torch.eye(b, dtype=torch.bool, device=features.device)
    sim = sim.masked_fill(self_mask, float("-inf"))
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)  # (B, B)
    pos = (labels[:, None] == labels[None, :]) & ~self_mask
    n_pos = pos.sum(dim=1)
    has_pos = n_pos > 0
    if not has_pos.any():
        return features.sum() * 0.0
    mean_log_prob_pos = log_prob.masked_fill(~pos, 0.0).sum(dim=1)[has_pos] / n_pos[has_pos]
    return -mean_log_prob_pos.mean()
