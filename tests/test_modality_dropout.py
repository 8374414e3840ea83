"""Stage 2 pools some clippings from one modality, so that a partial clipping links to its full reprint."""

import torch

from clippings.training.loop import drop_modality


def test_a_share_of_full_clippings_loses_exactly_one_modality():
    torch.manual_seed(0)
    n = 4000
    ip = torch.ones(n)
    tp = torch.ones(n)
    ip[:100] = 0.0  # text only
    tp[100:200] = 0.0  # image only
    pip, ptp = drop_modality(ip, tp, 0.3)
    assert torch.equal(pip[:200], ip[:200]) and torch.equal(ptp[:200], tp[:200])  # partial ones untouched
    assert ((pip + ptp) >= 1).all()  # never both
    no_image, no_text = (pip[200:] == 0).float().mean(), (ptp[200:] == 0).float().mean()
    assert abs(no_image - 0.15) < 0.03 and abs(no_text - 0.15) < 0.03
    assert torch.equal(drop_modality(ip, tp, 0.0)[0], ip)
