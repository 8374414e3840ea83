"""Fine-tuning starts from the shipped small-family model: its ONNX graph, loaded back into the
PyTorch bi-encoder, computes what is served (in training mode too, where the folded norms stay
frozen)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from clippings.data.dataset import load_dataset
from clippings.errors import ModelError
from clippings.models.biencoder import BiEncoder
from clippings.models.config import preset
from clippings.models.reader import load_exported_weights
from clippings.runtime.onnx_model import OnnxEmbedder


def test_shipped_news_graph_loads_back_into_the_trainer_model(news_model, sample_feed):
    records = load_dataset(sample_feed).records[:12]
    served = OnnxEmbedder(news_model, variant="fp32", intra_op_threads=1)  # the graph the weights are read from
    pixels, _, text_ids, _ = served.prepare([Image.open(r.image).convert("RGB") for r in records],
                                            [r.text for r in records])
    want_img, want_txt = served.run(pixels, text_ids)

    model = BiEncoder(preset(served.manifest.preset))  # the preset the manifest says it was trained with
    before = model.encode_image(torch.from_numpy(pixels)).detach().numpy()
    load_exported_weights(model, news_model)
    for mode in (model.eval, model.train):  # training mode: the folded norms must not use batch statistics
        mode()
        for m in model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0  # dropout off, to compare
        with torch.no_grad():
            img, txt = model(torch.from_numpy(pixels), torch.from_numpy(text_ids))
        assert np.min(np.sum(img.numpy() * want_img, axis=1)) > 0.9999
        assert np.min(np.sum(txt.numpy() * want_txt, axis=1)) > 0.9999
    assert np.min(np.sum(before * want_img, axis=1)) < 0.9  # a fresh model computes something else


def test_a_model_of_other_preprocessing_is_refused(news_model):
    with pytest.raises(ModelError, match="other preprocessing"):
        load_exported_weights(BiEncoder(preset("long-photos")), news_model)
