"""Zero padding folded into the convolution that reads it, in an exported graph.

The photo trunk pads like TensorFlow's "same" (models/photo_trunk.py): a stride-2 convolution
pads more at the end than at the start, which nn.Conv2d cannot express, so the exporter writes a
Pad node (its pads computed by a small subgraph of constants) before the Conv. ONNX Runtime does
not fold such a Pad into the Conv, and around it leaves its blocked (NCHWc) layout and comes back,
a conversion each way. ONNX's Conv takes asymmetric `pads` itself: moved there, the graph gives
the same vectors bit for bit and runs faster (docs/performance.md, "The photo trunk's padding").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def fold_pads_file(path: Path) -> int:
    """fold_pads on the graph file at path, rewritten in place when anything folded."""
    import onnx

    model = onnx.load(str(path))
    folded = fold_pads(model)
    if folded:
        onnx.save(model, str(path))
    return folded


def fold_pads(model) -> int:
    """Every constant zero Pad of the two spatial axes whose only reader is a Conv: moved into
    the Conv's `pads`. Edits `model` in place -> how many were folded."""
    from onnx import helper

    graph = model.graph
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    readers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    folded = []
    for pad in list(graph.node):
        if pad.op_type != "Pad" or len(readers.get(pad.output[0], [])) != 1:
            continue
        conv, pads = readers[pad.output[0]][0], _zero_spatial_pads(graph, pad, opset)
        if conv.op_type != "Conv" or pads is None or any(a.name == "auto_pad" and a.s not in (b"", b"NOTSET")
                                                        for a in conv.attribute):
            continue
        old = next((list(a.ints) for a in conv.attribute if a.name == "pads"), [0, 0, 0, 0])
        kept = [a for a in conv.attribute if a.name != "pads"]
        del conv.attribute[:]
        conv.attribute.extend(kept + [helper.make_attribute("pads", [o + p for o, p in zip(old, pads)])])
        conv.input[0] = pad.input[0]
        folded.append(pad)
    for pad in folded:
        graph.node.remove(pad)
    if folded:
        del graph.value_info[:]  # shapes inferred with the Pads; ONNX Runtime infers them again
    return len(folded)


def _zero_spatial_pads(graph, pad, opset: int) -> list[int] | None:
    """A Pad of a 4-D tensor that adds zeros on height and width only -> its [top, left,
    bottom, right] (the order of Conv's `pads`); None for any other Pad."""
    mode = next((a.s for a in pad.attribute if a.name == "mode"), b"constant")
    if mode != b"constant" or len(pad.input) < 2 or (len(pad.input) > 3 and pad.input[3]):  # axes: not handled
        return None
    pads = constant_value(graph, pad.input[1], opset)
    value = constant_value(graph, pad.input[2], opset) if len(pad.input) > 2 and pad.input[2] else np.zeros(1)
    if pads is None or value is None or pads.size != 8 or np.any(value != 0):
        return None
    begin, end = pads.astype(np.int64)[:4], pads.astype(np.int64)[4:]
    if begin[:2].any() or end[:2].any() or (pads < 0).any():
        return None
    return [int(begin[2]), int(begin[3]), int(end[2]), int(end[3])]


def constant_value(graph, name: str, opset: int) -> np.ndarray | None:
    """The value of tensor `name` when it depends on no graph input (an initializer, or nodes
    that read only constants); None otherwise."""
    import onnx
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    inits = {t.name: t for t in graph.initializer}
    if name in inits:
        return numpy_helper.to_array(inits[name])
    made_by = {out: node for node in graph.node for out in node.output}
    needed, todo, used = set(), [name], set()
    while todo:
        tensor = todo.pop()
        if tensor in inits:
            used.add(tensor)
            continue
        node = made_by.get(tensor)
        if node is None:  # a graph input
            return None
        if id(node) not in needed:
            needed.add(id(node))
            todo.extend(t for t in node.input if t)
    nodes = [n for n in graph.node if id(n) in needed]  # in the graph's (topological) order
    output = helper.make_tensor_value_info(name, onnx.TensorProto.UNDEFINED, None)
    sub = helper.make_graph(nodes, "constant", [], [output], initializer=[inits[t] for t in used])
    model = helper.make_model(sub, opset_imports=[helper.make_opsetid("", opset)])
    return np.asarray(ReferenceEvaluator(model).run(None, {})[0])
