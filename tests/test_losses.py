import math

import torch
import torch.nn.functional as F

from clippings.models.losses import clip_loss, supcon_loss


def test_clip_loss_is_mean_of_two_cross_entropies():
    torch.manual_seed(0)
    img = F.normalize(torch.randn(6, 8), dim=1)
    txt = F.normalize(torch.randn(6, 8), dim=1)
    scale = torch.tensor(10.0)
    logits = scale * img @ txt.T
    labels = torch.arange(6)
    expected = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
    assert torch.allclose(clip_loss(img, txt, scale), expected)


def test_clip_loss_is_low_for_aligned_pairs_and_high_for_shuffled():
    torch.manual_seed(0)
    x = F.normalize(torch.randn(16, 32), dim=1)
    aligned = clip_loss(x, x, torch.tensor(50.0))
    shuffled = clip_loss(x, x[torch.randperm(16)], torch.tensor(50.0))
    assert aligned < 0.05 < shuffled


def test_supcon_matches_a_loop_over_anchors():
    torch.manual_seed(1)
    f = F.normalize(torch.randn(8, 5), dim=1)
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 3, 3])
    t = 0.2
    terms = []
    for i in range(8):
        others = [j for j in range(8) if j != i]
        denom = torch.logsumexp(torch.stack([f[i] @ f[j] / t for j in others]), 0)
        pos = [j for j in others if labels[j] == labels[i]]
        if pos:
            terms.append(-torch.stack([f[i] @ f[j] / t - denom for j in pos]).mean())
    assert torch.allclose(supcon_loss(f, labels, t), torch.stack(terms).mean(), atol=1e-6)


def test_supcon_prefers_clustered_features():
    labels = torch.tensor([0, 0, 1, 1])
    clustered = F.normalize(torch.tensor([[1.0, 0.01], [1.0, -0.01], [-1.0, 0.01], [-1.0, -0.01]]), dim=1)
    mixed = clustered[[0, 2, 1, 3]]
    assert supcon_loss(clustered, labels) < supcon_loss(mixed, labels)


def test_supcon_without_positives_is_zero_and_differentiable():
    f = F.normalize(torch.randn(4, 3), dim=1).requires_grad_()
    loss = supcon_loss(f, torch.arange(4))
    loss.backward()
    assert loss.item() == 0.0 and not math.isnan(f.grad.sum().item())
