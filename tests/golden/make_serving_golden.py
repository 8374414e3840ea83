"""Regenerate the serving goldens of tests/test_shipped_models.py (only after a deliberate change,
such as a new shipped model): real clippings through the embedder's preparation and the model."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parents[1]))
from test_shipped_models import served_vectors  # noqa: E402

from clippings.runtime.manifest import Manifest  # noqa: E402
from clippings.runtime.onnx_model import SHIPPED_MODELS_DIR  # noqa: E402

for name in ("news", "jp-firms"):
    ids, vectors = served_vectors(name, "fp32")  # CPU-independent; the test says why
    version = Manifest.load(SHIPPED_MODELS_DIR / name).version
    np.savez(Path(__file__).parent / f"serving-{name}.npz", ids=np.array(ids), vectors=vectors, model_version=version)
    print("wrote", name, len(ids), "vectors of model", version)
