"""A pretrained text-line reader as the crop tower's trunk: PaddleOCR's PP-OCRv6 small
recogniser, as the ONNX graph that the `rapidocr` wheel ships (Apache-2.0; attribution in
the shipped model's NOTICE.md).

Found through the installed package's files, never imported (its own imports pull in
OpenCV) and never downloaded. Frozen: training runs it once per crop through ONNX Runtime
and keeps its output, and `clippings export` joins the same graph in front of the trained
head, so what is served is what was trained on.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from clippings.errors import ModelError

INSTALL_HINT = "pip install --no-deps rapidocr==3.10.0 (or pip install 'clippings[reader]')"


@dataclass(frozen=True)
class TrunkSpec:
    package: str
    file: str  # inside the package
    input: str
    output: str  # CTC posteriors (batch, steps, classes); class 0 is the CTC blank


TRUNKS = {
    "ppocrv6-small": TrunkSpec("rapidocr", "models/PP-OCRv6_rec_small.onnx", "x", "fetch_name_0"),
}


def trunk_spec(name: str) -> TrunkSpec:
    try:
        return TRUNKS[name]
    except KeyError:
        raise ModelError(f"unknown trunk {name!r} (known: {', '.join(TRUNKS)})") from None


def trunk_path(name: str) -> Path:
    """The graph's file in the installed package; a clear error when it is not installed."""
    spec = trunk_spec(name)
    return package_file(spec.package, spec.file, f"trunk {name!r}")


def package_file(package: str, file: str, what: str, hint: str = INSTALL_HINT) -> Path:
    """`file` inside the installed `package`, found without importing it; a ModelError
    naming `what` needs it and how to install it (`hint`) when the package or the file is
    missing."""
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise ModelError(f"{what} needs the {package} package: {hint}")
    path = Path(list(found.submodule_search_locations)[0]) / file
    if not path.is_file():
        raise ModelError(f"{what}: {path} is missing from the installed {package}; {hint}")
    return path


@lru_cache(maxsize=4)
def trunk_dictionary(name: str) -> tuple[str, ...]:
    """The recogniser's classes after the blank: class i + 1 reads dictionary[i]. PaddleOCR
    keeps the list in the graph's metadata and appends a space as the last class."""
    import onnx

    model = onnx.load(str(trunk_path(name)), load_external_data=False)
    meta = {p.key: p.value for p in model.metadata_props}
    if "character" not in meta:
        raise ModelError(f"trunk {name!r}: no character list in {trunk_path(name)}")
    return tuple(meta["character"].split("\n")) + (" ",)


class TrunkRunner:
    """Pixels (N, 3, 48, W) -> the reading summed over the line (N, 1, classes): how often
    each class was seen, the blank included; float32."""

    def __init__(self, name: str, threads: int = 0):
        import onnxruntime as ort

        from clippings.runtime.onnx_model import cpu_budget

        self.spec = trunk_spec(name)
        path = trunk_path(name)
        self.identity = f"{name}:{path.stat().st_size}"  # for feature caches: another file, other features
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or cpu_budget()
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

        self.name = name

    def posteriors(self, pixels: np.ndarray) -> np.ndarray:
        """-> (N, steps, classes): the recogniser's CTC output, one row of class
        probabilities per 8 pixels of width."""
        (out,) = self.session.run([self.spec.output], {self.spec.input: pixels.astype(np.float32)})
        return out

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        return self.posteriors(pixels).sum(axis=1, keepdims=True)

    def read(self, pixels: np.ndarray) -> list[str]:
        """Greedy CTC decoding: the most likely class per step, repeats merged, blanks dropped."""
        dictionary = trunk_dictionary(self.name)
        texts = []
        for best in self.posteriors(pixels).argmax(axis=2):
            kept = [c for i, c in enumerate(best) if c != 0 and (i == 0 or c != best[i - 1])]
            texts.append("".join(dictionary[c - 1] for c in kept).strip())
        return texts
