"""`clippings calibrate`: an exported model's serving decision, tuned again on labelled sets.

The graphs are copied unchanged; the image weight and the two cuts are chosen for the mean
score over the given sets (scoring.tune_serving_sets) and written into a new manifest whose
version changes with them: w changes the served vectors, and a linker must never mix vectors
pooled two ways under one version. No PyTorch and no checkpoint: what a shipped model ships
is enough, e.g. to fit it to a feed from the review page's labels (`clippings labels export`).
With --text-evidence the caption's character pairs may join the served vector too
(runtime/text_evidence.py), at the weight that scores best over the sets.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path
from typing import Sequence, get_args

from clippings.data.dataset import Dataset, Record, load_dataset
from clippings.errors import ConfigError, DatasetError
from clippings.evaluation.evaluate import towers
from clippings.evaluation.probability import fit_match_curve
from clippings.evaluation.scoring import SET_SIZE, TowerSet, sets_of_size, tune_partial_cuts, tune_serving_sets
from clippings.runtime.manifest import Manifest, Pooling, TextEvidence, Thresholds
from clippings.runtime.onnx_model import OnnxEmbedder
from clippings.runtime.text_evidence import DEFAULT_DIM as TEXT_DIM

log = logging.getLogger(__name__)

# A dedup set is tuned on every split but these: "test" stays for `clippings eval`, "train"
# (a labels export's) is what a fine-tuned model has seen.
HELD_BACK = ("test", "train")


def tuning_records(ds: Dataset, splits: Sequence[str] | None = None) -> list[Record]:
    """The labelled records of ds a decision may be tuned on: of a dedup set, those of
    `splits`, by default every split but HELD_BACK."""
    if ds.task == "link":
        records = ds.split("corpus", "query")
    elif splits:
        records = ds.split(*splits)
        if not records:
            raise DatasetError(f"{ds.root}: no records in split(s) {', '.join(splits)} to calibrate on")
    else:
        records = [r for r in ds.records if r.split not in HELD_BACK]
        if not records:
            raise DatasetError(f"{ds.root}: no records outside the {'/'.join(HELD_BACK)} splits to calibrate on")
    labelled = [r for r in records if r.entity is not None]
    if len({r.entity for r in labelled}) < 2:
        raise DatasetError(f"{ds.root}: calibration needs entity labels on at least two entities")
    return labelled


# The text evidence's weights tried by --text-evidence (0: none; runtime/text_evidence.py).
TEXT_WEIGHT_GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)


def tower_set(emb: OnnxEmbedder, records: Sequence[Record], pooling: str | None = None) -> TowerSet:
    """pooling: how the set's towers are to be pooled (default: as emb's manifest says)."""
    return TowerSet(*towers(emb, records), [r.split for r in records], [r.entity for r in records],
                    [r.text or "" for r in records], pooling or emb.manifest.pooling)


def graph_version(model_dir: Path, manifest: Manifest, variant: str = "fp32") -> str:
    """The hash of the graph a decision serves: its fp32 file (the version `clippings export`
    gave it) or the variant's own file. An int8 graph quantised anew from the same fp32 graph
    serves other vectors, so it must not keep the version of the old one."""
    return hashlib.sha256((model_dir / manifest.files[variant]).read_bytes()).hexdigest()[:12]


def calibrated_version(base: str, image_weight: float, link: float, dedup: float,
                       text_evidence: TextEvidence | None = None, thresholds: Thresholds | None = None,
                       pooling: str = "sum", variant: str = "fp32") -> str:
    key = f"{base}|w={image_weight:.4f}|link={link:.4f}|dedup={dedup:.4f}"
    # What a decision did not have stays out of the key: the versions of older decisions hold.
    if pooling != "sum":
        key += f"|pooling={pooling}"
    if variant != "fp32":  # another graph's vectors: never mixed with fp32's under one version
        key += f"|variant={variant}"
    if text_evidence is not None:
        key += f"|text={text_evidence['weight']:.4f}x{text_evidence['dim']}"
    for name in ("text_only", "image_only"):
        if thresholds and name in thresholds:
            key += f"|{name}={thresholds[name]:.4f}"
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def recalibrate(
    model: str | Path, data_dirs: Sequence[Path], out_dir: Path,
    link_threshold: float | None = None, dedup_threshold: float | None = None, splits: Sequence[str] | None = None,
    text_evidence: bool = False, keep_decision: bool = False, pooling: str | None = None,
    set_size: int | None = None, variant: str | None = None,
) -> tuple[Manifest, dict]:
    """-> (the new manifest, written with the graphs to out_dir; the tuning scores).

    text_evidence: also choose the weight of the caption's character pairs in the served vector
    (TEXT_WEIGHT_GRID, 0 among them); without it a model that has text evidence keeps its weight.
    keep_decision: tune nothing; only fit the match probability, under the same version.
    pooling: "sum" or "concat" (runtime/onnx_model.pool; default: the model's).
    set_size: dedup sets are tuned as sets of this many clippings drawn from them
    (scoring.sets_of_size; None: SET_SIZE; 0: as given), since the best cut rises with a set's size.
    variant: the graph to serve ("fp32", "fp16", "int8" where exported; default: the model's), whose
    vectors the decision is tuned on."""
    if keep_decision and (text_evidence or link_threshold is not None or dedup_threshold is not None):
        raise ConfigError("--keep-decision keeps the model's decision: it takes no --text-evidence or thresholds")
    set_size = _check_options(data_dirs, pooling, set_size, variant, keep_decision)
    emb = OnnxEmbedder(model, variant=variant, providers=["CPUExecutionProvider"])
    if out_dir.resolve() == emb.model_dir.resolve():
        raise ConfigError(f"--out {out_dir} is the model's own folder: write the recalibrated model elsewhere")
    sets = [_calibration_set(emb, d, splits, pooling) for d in data_dirs]
    base = emb.manifest
    if keep_decision:
        manifest = base.model_copy(update={
            "match_probability": fit_match_curve(sets, base.image_weight, base.thresholds, base.text_evidence)})
        _write(emb.model_dir, manifest, out_dir)
        return manifest, {}
    had = base.text_evidence
    weights = TEXT_WEIGHT_GRID if text_evidence else (had["weight"] if had else 0.0,)
    dim = had["dim"] if had else TEXT_DIM
    tuning, size = _at_size(sets, set_size)
    try:
        tuned = tune_serving_sets(tuning, weights, dim)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    link = link_threshold if link_threshold is not None else tuned["link"]
    dedup = dedup_threshold if dedup_threshold is not None else tuned["dedup"]
    evidence: TextEvidence | None = {"weight": tuned["text_weight"], "dim": dim} if tuned["text_weight"] else None
    thresholds: Thresholds = {"link": link, "dedup": dedup}
    if sets[0].task == "dedup":  # a clipping missing its photo or caption against a complete one
        partial = tune_partial_cuts(tuning, tuned["image_weight"], dedup, tuned["text_weight"], dim)
        thresholds |= {"text_only": partial["text_only"], "image_only": partial["image_only"]}
        tuned |= {k: v for k, v in partial.items() if k.startswith("val_")}
    curve = fit_match_curve(sets, tuned["image_weight"], thresholds, evidence)
    pooled_as = pooling or base.pooling
    manifest = base.model_copy(update={
        "image_weight": tuned["image_weight"], "thresholds": thresholds, "pooling": pooled_as, "variant": emb.variant,
        "text_evidence": evidence, "match_probability": curve,
        # From the graph's own hash, not the manifest's version: the same decision on the same
        # graph is the same version, however often it was calibrated. The curve is not part of
        # it: it changes what link events say, not which vectors are served nor how they link.
        "version": calibrated_version(graph_version(emb.model_dir, base, emb.variant), tuned["image_weight"], link, dedup,
                                      evidence, thresholds, pooled_as, emb.variant),
        "calibrated_on": [str(d) for d in data_dirs],
        "calibrated_set_size": size,
    })
    _write(emb.model_dir, manifest, out_dir)
    return manifest, tuned


def _check_options(data_dirs: Sequence[Path], pooling: str | None, set_size: int | None, variant: str | None,
                   keep_decision: bool) -> int:
    """-> the set size to tune for; raises ConfigError on options that cannot go together."""
    if keep_decision and (pooling or set_size is not None or variant):
        raise ConfigError("--keep-decision keeps the model's decision: it takes no --pooling, --set-size or --variant")
    set_size = SET_SIZE if set_size is None else set_size
    if set_size < 0:
        raise ConfigError(f"--set-size {set_size}: a number of clippings, or 0 to tune on the sets as given")
    if pooling is not None and pooling not in get_args(Pooling):
        raise ConfigError(f"--pooling {pooling!r}: {' or '.join(get_args(Pooling))}")
    if not data_dirs:
        raise ConfigError("give at least one labelled set with --data")
    return set_size


def _at_size(sets: list[TowerSet], set_size: int) -> tuple[list[TowerSet], int | None]:
    """The sets a decision is tuned on, and the set size it is tuned for (None: as given, or a
    linking decision, which does not depend on it)."""
    if not set_size or sets[0].task == "link":
        return sets, None
    smaller = [len(s.entities) for s in sets if len(s.entities) <= set_size]
    if smaller:
        log.warning("calibration set(s) of %s clippings, no more than --set-size %d: tuned as they are, for fewer "
                    "clippings (a lower cut) than asked; give larger labelled sets (--splits may add splits that "
                    "no evaluation reads) or a smaller --set-size", "/".join(map(str, smaller)), set_size)
    if len(smaller) == len(sets):
        return sets, None
    drawn = sets_of_size(sets, set_size)
    log.info("tuning on %d sets of about %d clippings", len(drawn), set_size)
    return drawn, set_size


def _calibration_set(emb: OnnxEmbedder, data_dir: Path, splits: Sequence[str] | None,
                     pooling: str | None) -> TowerSet:
    records = tuning_records(load_dataset(data_dir), splits)
    log.info("calibration set %s: %d labelled records", data_dir, len(records))
    return tower_set(emb, records, pooling)


def _write(model_dir: Path, manifest: Manifest, out_dir: Path) -> None:
    """The graphs of model_dir and the new manifest -> out_dir, replaced only once complete."""
    staging = out_dir.parent / f".{out_dir.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(model_dir, staging)
    manifest.save(staging)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    staging.rename(out_dir)
