"""The pretrained photo trunk (models/photo_trunk.py): its ImageNet weights read a photograph
as ImageNet does, and a model with it trains (stage 1, stage 2, the head), exports and serves
the head's contribution through the one graph."""

import json

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from clippings.export.int8 import first_image_convs
from clippings.models.factory import load_checkpoint
from clippings.models.photo_trunk import GRAPH_SCOPE, PhotoTrunk, weights_path
from clippings.runtime.manifest import Manifest
from clippings.runtime.onnx_model import OnnxEmbedder
from clippings.runtime.preprocess import load_image, make_tokenizer
from clippings.training.data import encode_records
from clippings.training.photo_head import HeadConfig, train_photo_head

MILITARY_UNIFORM = 652  # ImageNet's class for matplotlib's sample photo of Grace Hopper


def test_trunk_reads_a_photograph_as_imagenet_does():
    """Every block, its "same" padding and its frozen norms, checked end to end: the 16 blocks
    and the package's classifier read the sample photo, in grey, as a military uniform at p
    0.59 (in colour: 0.46 with TensorFlow's padding, 0.32 with symmetric padding; with batch
    statistics in place of ImageNet's the classes come out near uniform, p 0.003)."""
    import matplotlib.cbook as cbook

    trunk = PhotoTrunk(224, 224, block=15, grid=1)
    trunk.load_pretrained()
    trunk.train()  # frozen: stays in eval mode whatever the model around it does
    state = torch.load(weights_path(), weights_only=True)
    photo = Image.open(cbook.get_sample_data("grace_hopper.jpg")).convert("L").resize((224, 224))
    pixels = (torch.from_numpy(np.asarray(photo, np.float32) / 255.0)[None, None] - 0.5) / 0.5
    with torch.no_grad():
        x = pixels * (127.5 / 128.0) + (0.5 / 128.0)
        x = F.relu6(trunk._bn0(trunk._conv_stem(F.pad(x, trunk.stem_pad))))
        for block in trunk._blocks:
            x = block(x)
        x = F.batch_norm(F.conv2d(x, state["_conv_head.weight"]), state["_bn1.running_mean"],
                         state["_bn1.running_var"], state["_bn1.weight"], state["_bn1.bias"], eps=1e-3)
        probs = F.linear(F.relu6(x).mean(dim=(2, 3)), state["_fc.weight"], state["_fc.bias"]).softmax(dim=-1)
    assert int(probs.argmax()) == MILITARY_UNIFORM and float(probs.max()) > 0.5


@pytest.fixture(scope="module")
def trunk_run(tmp_path_factory):
    from test_pipeline import tiny_run

    return tiny_run(tmp_path_factory.mktemp("trunk"), "news", "dedup", (24, 20), 111, "lede-grid-trunk",
                    "--fp16", "--int8")


def test_training_ends_with_the_photo_head(trunk_run):
    history = json.loads((trunk_run / "run" / "history.json").read_text())
    assert [h["stage"] for h in history] == ["stage1", "stage2", "photo-head"]
    model, _, _ = load_checkpoint(trunk_run / "run" / "best.pt")
    assert bool(model.head_trained)


def _val_inputs(root, model_dir):
    records = [json.loads(line) for line in (root / "val" / "records.jsonl").read_text().splitlines()]
    records = [r for r in records if r.get("image")]
    emb = OnnxEmbedder(model_dir)
    pixels, _, ids, _ = emb.prepare([load_image(root / "val" / r["image"]) for r in records],
                                    [r.get("text") or "" for r in records])
    return emb, pixels, ids


def test_the_served_graph_adds_the_head_to_the_tower(trunk_run):
    """The exported photo vector is the tower's with the head's added, as trained, not the tower's alone."""
    model, _, _ = load_checkpoint(trunk_run / "run" / "best.pt")
    emb, pixels, ids = _val_inputs(trunk_run, trunk_run / "model")
    served, _ = emb.run(pixels, ids)
    with torch.no_grad():
        full = model.encode_image(torch.from_numpy(pixels)).numpy()
        tower = model.encode_tower(torch.from_numpy(pixels)).numpy()
    assert np.sum(served * full, axis=1).min() > 0.999
    assert np.sum(served * tower, axis=1).mean() < 0.98
    assert Manifest.load(trunk_run / "model").parity["fp32"]["min_cosine"] > 0.999


def test_int8_quantises_the_tower_and_leaves_the_trunk_in_fp32(trunk_run):
    """The tower's first convolution and the trunk's stem both read raw pixels; the trunk's
    convolutions lose too much in int8 (export/int8.py): the tower's others are quantised."""
    fp32 = onnx.load(str(trunk_run / "model" / "model.onnx"))
    firsts = first_image_convs(fp32)
    assert len(firsts) == 2 and any("photo_trunk" in n for n in firsts)
    graph = onnx.load(str(trunk_run / "model" / "model.int8.onnx")).graph
    made_by = {out: node for node in graph.node for out in node.output}
    int8 = {n.name for n in graph.node if n.op_type == "Conv"
            and getattr(made_by.get(n.input[1]), "op_type", None) == "DequantizeLinear"}
    convs = {n.name for n in fp32.graph.node if n.op_type == "Conv"}
    trunk = {n for n in convs if n.startswith(GRAPH_SCOPE)}
    assert len(trunk) > 20 and not trunk & int8
    assert int8 == convs - trunk - set(firsts) and any(n.startswith("/vision/") for n in int8)


def test_the_trunk_pads_inside_its_convolutions_in_every_graph(trunk_run):
    """The stride-2 convolutions' "same" padding is the Conv's own (export/pad_fold.py), in the
    graph fp16 and int8 are made from too; the served graph still matches PyTorch (above)."""
    for name in ("model.onnx", "model.int8.onnx"):
        graph = onnx.load(str(trunk_run / "model" / name)).graph
        assert not [n.name for n in graph.node if n.op_type == "Pad" and n.name.startswith(GRAPH_SCOPE)], name
        pads = [next(list(a.ints) for a in n.attribute if a.name == "pads") for n in graph.node
                if n.op_type == "Conv" and n.name.startswith(GRAPH_SCOPE)]
        assert sum(p[:2] != p[2:] for p in pads) == 4, name  # the stem and the three stride-2 blocks


def _top1(vectors: np.ndarray, entities: list[str]) -> float:
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -2.0)
    best = sims.argmax(axis=1)
    return float(np.mean([entities[i] == entities[j] for i, j in enumerate(best)]))


def test_the_head_finds_reprints_the_untrained_tower_misses(trunk_run):
    """Trained on the trunk's features alone, the head brings one story's reprints nearer than
    the tower of a run too short to learn them: photo-alone top-1 over the training photos."""
    from clippings.data.dataset import load_dataset

    model, cfg, _ = load_checkpoint(trunk_run / "run" / "stage1.pt")
    records = [r for r in load_dataset(trunk_run / "train").records if r.image is not None]
    enc = encode_records(records, cfg.preprocess, make_tokenizer(cfg.preprocess, None), desc="encode")
    pixels = enc.pixels.float()
    with torch.no_grad():
        before = model.encode_tower(pixels).numpy()
    losses = train_photo_head(model, enc, HeadConfig(steps=300, seed=3))
    with torch.no_grad():
        after = model.encode_image(pixels).numpy()
    assert bool(model.head_trained) and losses[-1] < losses[0]
    assert _top1(after, enc.entities) > _top1(before, enc.entities) + 0.1


def test_fine_tuning_starts_from_the_served_trunk_and_head(trunk_run):
    """`clippings train --init MODEL_DIR` rebuilds the model from its graph alone: the trunk's
    folded convolutions and the trained head come back, so the photo vectors are the served ones."""
    from clippings.models.config import preset
    from clippings.models.factory import create_model
    from clippings.models.reader import load_exported_weights

    model = create_model(preset("lede-grid-trunk"))
    load_exported_weights(model, trunk_run / "model")
    model.eval()
    emb, pixels, ids = _val_inputs(trunk_run, trunk_run / "model")
    served, _ = emb.run(pixels, ids)
    with torch.no_grad():
        rebuilt = model.encode_image(torch.from_numpy(pixels)).numpy()
    assert bool(model.head_trained) and np.sum(served * rebuilt, axis=1).min() > 0.9999


def test_a_trunk_of_another_input_size_is_refused_not_loaded():
    """The shipped news graph's trunk reads the tower's 64 pixels as they are; a preset that
    upsamples them would take every weight and compute other vectors: refused by name."""
    from dataclasses import replace
    from pathlib import Path

    from clippings.errors import ModelError
    from clippings.models.config import preset
    from clippings.models.factory import create_model
    from clippings.models.reader import load_exported_weights
    from clippings.runtime.onnx_model import resolve_model

    cfg = preset("lede-grid-trunk")
    load_exported_weights(create_model(cfg), Path(resolve_model("news")))
    other = replace(cfg, vision=replace(cfg.vision, trunk_size=96))
    with pytest.raises(ModelError, match="another size"):
        load_exported_weights(create_model(other), Path(resolve_model("news")))
