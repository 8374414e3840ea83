"""Concatenated pooling: each tower in its own half, so a pair's cosine is the weighted mean of
its towers' cosines, and what the manifest, the embedder and calibration make of it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from clippings.errors import ModelError
from clippings.runtime.manifest import Manifest
from clippings.runtime.onnx_model import OnnxEmbedder, pool


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("w", [0.3, 0.4, 0.7])
def test_concat_cosine_is_the_weighted_mean_of_the_towers_cosines(w):
    rng = np.random.default_rng(0)
    img, txt = unit(rng.standard_normal((6, 16))), unit(rng.standard_normal((6, 16)))
    ip, tp = np.array([1, 1, 1, 1, 1, 0], np.float32), np.array([1, 1, 1, 1, 0, 1], np.float32)
    v = pool(img, txt, ip, tp, w, "concat")
    assert v.shape == (6, 32) and np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-6)
    for a, b in ((0, 1), (0, 2), (2, 3)):  # two complete clippings
        assert v[a] @ v[b] == pytest.approx(w * img[a] @ img[b] + (1 - w) * txt[a] @ txt[b], abs=1e-6)
    # A photo alone (4) or a caption alone (5) against a complete one: its tower's cosine, scaled.
    assert v[4] @ v[0] == pytest.approx(np.sqrt(w) * img[4] @ img[0], abs=1e-6)
    assert v[5] @ v[0] == pytest.approx(np.sqrt(1 - w) * txt[5] @ txt[0], abs=1e-6)
    assert v[4] @ v[5] == 0.0  # nothing in common
    # The paper's sum mixes one clipping's photo with the other's caption: not the weighted mean.
    s = pool(img, txt, ip, tp, w)
    assert s[0] @ s[1] != pytest.approx(w * img[0] @ img[1] + (1 - w) * txt[0] @ txt[1], abs=1e-3)
    with pytest.raises(ModelError, match="unknown pooling 'max'"):
        pool(img, txt, ip, tp, w, "max")


def test_manifest_and_embedder_serve_what_the_pooling_says(tmp_path):
    base = OnnxEmbedder("news")
    for pooling, dim in (("sum", base.manifest.embedding_dim), ("concat", 2 * base.manifest.embedding_dim)):
        folder = tmp_path / pooling
        folder.mkdir()
        for name in base.manifest.files.values():
            (folder / name).symlink_to(base.model_dir / name)
        base.manifest.model_copy(update={"pooling": pooling}).save(folder)
        raw = json.loads((folder / "manifest.json").read_text())
        assert raw.get("pooling") == (None if pooling == "sum" else "concat")  # a sum manifest reads as before
        m = Manifest.load(folder)
        assert (m.pooling, m.served_dim) == (pooling, dim)
        emb = OnnxEmbedder(folder)
        towers = emb.embed_towers([None, None], ["Fire on the quay", "Fire on the quay!"])
        served = emb.served(*towers, ["Fire on the quay", "Fire on the quay!"])
        assert served.shape == (2, dim)
        assert np.allclose(served, pool(*towers, m.image_weight, pooling))
    bad = json.loads((tmp_path / "concat" / "manifest.json").read_text()) | {"pooling": "mean"}
    (tmp_path / "concat" / "manifest.json").write_text(json.dumps(bad))
    with pytest.raises(ModelError, match="pooling"):
        Manifest.load(tmp_path / "concat")
