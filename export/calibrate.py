"""Step 2 of `clippings export`: the serving decision, tuned through the exported graph itself.

The image weight w and the two cosine cuts are chosen on held-out labelled clippings run
through ONNX Runtime, so they fit the vectors that will be served, not PyTorch's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from clippings.data.dataset import Record
from clippings.errors import ExportError
from clippings.evaluation.probability import fit_match_curve
from clippings.evaluation.scoring import TowerSet, tune_serving_sets
from clippings.runtime.manifest import MatchCurve, Thresholds
from clippings.runtime.onnx_model import OnnxEmbedder

log = logging.getLogger(__name__)

# Kept when the verification data has no entity labels to tune on.
UNTUNED_THRESHOLDS: Thresholds = {"link": 0.5, "dedup": 0.8}


@dataclass(frozen=True)
class Decision:
    """What the manifest tells the linker beside the graph: how the towers pool and where a
    link and a duplicate are cut."""

    image_weight: float
    thresholds: Thresholds
    match_probability: MatchCurve | None = None  # None: nothing labelled to fit it on

    def manifest_fields(self) -> dict:
        return {"image_weight": self.image_weight, "thresholds": self.thresholds,
                "match_probability": self.match_probability}


def calibrate(
    emb: OnnxEmbedder, records: list[Record], images: list, texts: list[str], untuned: Decision,
    link_threshold: float | None = None, dedup_threshold: float | None = None,
) -> Decision:
    """The serving decision for emb's graph, tuned on (records, images, texts); a threshold
    given by the caller wins over the tuned one, and untuned's values stand where nothing
    could be tuned."""
    tuned, labelled = _tune(emb, records, images, texts)
    decision = Decision(
        image_weight=tuned.get("image_weight", untuned.image_weight),
        thresholds={
            "link": link_threshold if link_threshold is not None else tuned.get("link", untuned.thresholds["link"]),
            "dedup": dedup_threshold if dedup_threshold is not None else tuned.get("dedup", untuned.thresholds["dedup"]),
        },
    )
    if labelled is None:
        return decision
    curve = fit_match_curve([labelled], decision.image_weight, decision.thresholds)
    return Decision(decision.image_weight, decision.thresholds, curve)


def _tune(emb: OnnxEmbedder, records: list[Record], images: list,
          texts: list[str]) -> tuple[dict, TowerSet | None]:
    """w and thresholds chosen on the verification set, and its labelled clippings' towers;
    nothing to tune on a set without entity labels."""
    labelled = [i for i, r in enumerate(records) if r.entity is not None]
    if len({records[i].entity for i in labelled}) < 2:
        log.warning("no entity labels in the verification data: image weight and thresholds keep their defaults")
        return {}, None
    img, txt, ip, tp = emb.embed_towers([images[i] for i in labelled], [texts[i] for i in labelled])
    towers = TowerSet(img, txt, ip, tp, [records[i].split for i in labelled], [records[i].entity for i in labelled],
                      [texts[i] or "" for i in labelled])
    tuned = tune_serving_sets([towers])
    log.info("tuned %s", " ".join(f"{k}={v:.3f}" for k, v in tuned.items()))
    return tuned, towers


def verification_data(train_config: dict, data_dir: Path | None) -> Path:
    """The held-out clippings that verify the export and tune its thresholds: the run's --val
    by default; never its training data, where every threshold would look perfect."""
    if data_dir is None:
        if not train_config.get("val_data"):
            raise ExportError("the run was trained without --val: give --data with held-out labelled clippings "
                              "(not the training data) to verify the export and tune its thresholds")
        data_dir = Path(train_config["val_data"])
        if train_config.get("val_split"):  # one split of a labels dataset whose train split was trained on
            return data_dir
    if any(Path(d).resolve() == Path(data_dir).resolve() for d in train_config.get("data", ())):
        raise ExportError(f"--data {data_dir} is the run's training data: thresholds tuned there would be too "
                          "optimistic; give held-out labelled clippings")
    return Path(data_dir)
