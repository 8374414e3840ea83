"""Regenerate the golden outputs of tests/test_model.py (only after a deliberate change)."""

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parents[1]))
from test_model import fixed_inputs, seeded_model  # noqa: E402

for name in ("small-crops", "small-photos"):
    model = seeded_model(name)
    with torch.no_grad():
        img, txt = model(*fixed_inputs(model.cfg))
    np.savez(Path(__file__).parent / f"{name}.npz", image=img.numpy(), text=txt.numpy())
    print("wrote", name)
