"""Fine-tuning a small-family model from its exported ONNX graph (no checkpoint ships with it).

The exporter folds each BatchNorm into the convolution before it, so the vision trunk comes
back as convolutions with a bias: each is loaded with its BatchNorm set to the identity
(scale 1, shift the folded bias, running mean 0, variance 1 - eps) and those norms are kept in
eval mode while training (`BiEncoder.frozen_norms`), so the trunk computes exactly what was
served. Every other weight keeps its name in the graph and is copied as it is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from clippings.errors import ModelError
from clippings.models.photo_trunk import GRAPH_SCOPE


def _graph_convs(graph, scope: str) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """(weight, bias) of every 2-D convolution of the module `scope` (the exporter's node names
    begin with `scope`, e.g. "/vision/"), in the graph's (execution) order."""
    from onnx import numpy_helper

    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    out = []
    for node in graph.node:
        if (node.op_type == "Conv" and node.name.startswith(scope) and node.input[1] in inits
                and inits[node.input[1]].ndim == 4):
            bias = inits.get(node.input[2]) if len(node.input) > 2 else None
            out.append((inits[node.input[1]], bias))
    return out


def _load_vision_convs(vision: nn.Module, convs: list[tuple[np.ndarray, np.ndarray | None]]) -> None:
    pairs = [(m, n) for m, n in zip(list(vision.modules()), list(vision.modules())[1:])
             if isinstance(m, nn.Conv2d) and isinstance(n, nn.BatchNorm2d)]
    if len(pairs) != len(convs):
        raise ModelError(f"the graph has {len(convs)} image convolutions, the model {len(pairs)}")
    for (conv, norm), (weight, bias) in zip(pairs, convs):
        if tuple(conv.weight.shape) != weight.shape:
            raise ModelError(f"convolution of shape {weight.shape} in the graph, {tuple(conv.weight.shape)} in the model")
        conv.weight.copy_(torch.from_numpy(np.array(weight)))
        norm.weight.fill_(1.0)
        norm.bias.copy_(torch.from_numpy(np.array(bias)) if bias is not None else torch.zeros_like(norm.bias))
        norm.running_mean.zero_()
        norm.running_var.fill_(1.0 - norm.eps)


def load_small_exported(model: nn.Module, model_dir: Path, graph_file: Path, preprocess, embedding_dim: int) -> None:
    """Weights of a small-family BiEncoder from the ONNX graph it was exported to."""
    import onnx
    from onnx import numpy_helper

    if preprocess != model.cfg.preprocess or embedding_dim != model.cfg.embed_dim:
        raise ModelError(f"{model_dir}: exported with other preprocessing or embedding size than preset "
                         f"{model.cfg.name!r}; train with the preset it was made with")
    graph = onnx.load(str(graph_file)).graph
    named = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    state = model.state_dict()
    with torch.no_grad():
        for name, tensor in state.items():
            if name.startswith(("vision.stages.", "photo_trunk.")) or name in ("logit_scale", "head_trained"):
                continue  # the folded convolutions below; the temperature is a training-only weight
            if name not in named or named[name].shape != tuple(tensor.shape):
                raise ModelError(f"{model_dir}: no weight {name!r} of shape {tuple(tensor.shape)} in its graph")
            tensor.copy_(torch.from_numpy(named[name].astype(np.float32)))
        _load_vision_convs(model.vision, _graph_convs(graph, "/vision/"))
        if model.photo_trunk is not None:  # served with its head: the graph holds both, trained
            resized = any(n.op_type == "Resize" and n.name.startswith(GRAPH_SCOPE) for n in graph.node)
            if resized != (model.photo_trunk.size != model.photo_trunk.input_size):
                raise ModelError(f"{model_dir}: its photo trunk reads the photo at another size than preset "
                                 f"{model.cfg.name!r} ({model.photo_trunk.size} pixels)")
            _load_vision_convs(model.photo_trunk, _graph_convs(graph, GRAPH_SCOPE))
            model.head_trained.fill_(True)
    model.frozen_norms = True
