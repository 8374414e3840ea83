"""The manifest: what a served model needs beside its weights, written once by `clippings export`.

Typed and closed: a key the runtime does not know (a misspelling, a field of another
exporter) fails the load and names itself, where a dropped preprocessing key would serve
vectors prepared unlike training without a word.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, with_config
from typing_extensions import NotRequired, TypedDict  # pydantic needs this TypedDict on Python < 3.12

from clippings.errors import ModelError
from clippings.runtime.preprocess import PreprocessConfig

MANIFEST_NAME = "manifest.json"
CLOSED = ConfigDict(extra="forbid")


@with_config(CLOSED)
class Thresholds(TypedDict):
    link: float  # top-1 cosine below which a clipping links to nothing (a new entity)
    dedup: float  # clustering cut: a chain of pairs at cosine >= dedup is one entity
    # A clipping without its photo / without its caption against a complete one (runtime/modality.py).
    text_only: NotRequired[float]
    image_only: NotRequired[float]


# How the two towers' unit vectors become one (runtime/onnx_model.pool): "sum", the paper's
# normalize(w * img + (1 - w) * txt); "concat", each tower in its own half, sqrt(w) * img beside
# sqrt(1 - w) * txt, so that two complete clippings' cosine is w x their photos' cosine +
# (1 - w) x their captions'.
Pooling = Literal["sum", "concat"]
# The graphs an export may write (Manifest.files keys), any of which a manifest may serve.
Variant = Literal["fp32", "fp16", "int8"]


@with_config(CLOSED)
class TextEvidence(TypedDict):
    weight: float  # the character-pair cosine's share in a served cosine (runtime/text_evidence.py)
    dim: int  # hashed character-pair buckets appended to the pooled vector


@with_config(CLOSED)
class MatchCurve(TypedDict):
    # P(same entity) = 1 / (1 + exp(-(slope * (cosine - pair cut) + intercept))) (runtime/probability.py),
    # the pair cut being the manifest's `cut` threshold ("dedup" with the cuts for clippings
    # missing a modality, or "link"), whichever threshold a linker is run with.
    cut: Literal["dedup", "link"]
    slope: float
    intercept: float
    pairs: int  # labelled candidate pairs it was fitted on


@with_config(CLOSED)
class TensorSpec(TypedDict):
    name: str
    dtype: str
    shape: list[str | int]  # "batch" for the dynamic axis


@with_config(CLOSED)
class Parity(TypedDict):
    max_abs_diff: float
    min_cosine: float
    mean_cosine: float
    # The most the cosine of two clippings' vectors of one tower moved (export/convert.py);
    # absent from manifests exported before 2026-12-01.
    image_pair_drift: NotRequired[float]
    text_pair_drift: NotRequired[float]


class Manifest(BaseModel):
    model_config = CLOSED

    name: str
    version: str  # hash of the fp32 ONNX bytes (export), changed again by any new decision (calibrate)
    family: str
    embedding_dim: int
    image_weight: float  # w in normalize(w * img + (1 - w) * txt)
    pooling: Pooling = "sum"  # `clippings calibrate --pooling` (the export's: "sum", as training pools)
    thresholds: Thresholds
    preprocess: PreprocessConfig  # closed too: PreprocessConfig forbids unknown keys
    opset: int
    files: dict[str, str]  # variant ("fp32", "fp16", "int8") -> file name
    # The variant served unless the operator names another (`clippings calibrate --variant`, which
    # tunes the decision on that graph's vectors): what the embedder, `clippings eval` and the
    # other tools load by default.
    variant: Variant = "fp32"
    inputs: list[TensorSpec]
    outputs: list[str]
    parity: dict[str, Parity] = {}  # variant -> ONNX Runtime against PyTorch at export
    created_at: str = ""
    # `clippings calibrate`: the labelled sets the decision was tuned on again (the graphs are
    # those of the export; version changes with the decision).
    calibrated_on: list[str] = []
    # `clippings calibrate --set-size`: the dedup decision was tuned for sets of this many
    # clippings (its best cut rises with a set's size; None: tuned on the sets as given).
    calibrated_set_size: int | None = None
    # The `clippings train --preset` it was trained with ("" for a Hugging Face CLIP folder):
    # fine-tuning it with `--init` builds that preset unless told otherwise.
    preset: str = ""
    # `clippings calibrate --text-evidence`: the caption's character pairs ride in the served
    # vector beside the pooled one (None: the served vector is the pooled one).
    text_evidence: TextEvidence | None = None
    # Fitted with the decision: the match probability link events carry (None: they carry none).
    match_probability: MatchCurve | None = None

    @property
    def served_dim(self) -> int:
        """Length of the vectors the embedder publishes and the linker indexes."""
        pooled = self.embedding_dim * (2 if self.pooling == "concat" else 1)
        return pooled + (self.text_evidence["dim"] if self.text_evidence else 0)

    @classmethod
    def load(cls, model_dir: Path) -> "Manifest":
        path = Path(model_dir) / MANIFEST_NAME
        try:
            return cls.model_validate_json(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelError(f"{model_dir}: no {MANIFEST_NAME}; is this an exported model?") from None
        except ValidationError as exc:
            raise ModelError(f"{path}: invalid manifest: {problems(exc)}") from exc
        except ValueError as exc:  # not UTF-8
            raise ModelError(f"{path}: invalid manifest: {exc}") from exc

    def save(self, model_dir: Path) -> None:
        fields = self.model_dump()
        for key in ("calibrated_on", "calibrated_set_size", "preset", "text_evidence", "match_probability"):  # unset: the manifest reads as it did before the key
            if not fields[key]:
                del fields[key]
        if fields["pooling"] == "sum":
            del fields["pooling"]
        if fields["variant"] == "fp32":
            del fields["variant"]
        (Path(model_dir) / MANIFEST_NAME).write_text(
            json.dumps(fields, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )


def problems(exc: ValidationError) -> str:
    """Pydantic's errors as one line that names each offending key by its dotted path."""
    out = []
    for e in exc.errors():
        key = ".".join(str(p) for p in e["loc"])
        if e["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            out.append(f"unknown key {key!r}")
        elif e["type"] == "missing":
            out.append(f"missing key {key!r}")
        else:
            out.append(f"{key}: {e['msg']}" if key else e["msg"])
    return "; ".join(out)
