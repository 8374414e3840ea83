"""Scoring for `clippings eval`: the exported model against image-only, text-only and string matching.

Embeddings come from the exported ONNX model through `OnnxEmbedder`, the service's own path.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
from sklearn.metrics import adjusted_rand_score

from clippings.evaluation.baselines import STRING_METHODS
from clippings.data.dataset import Dataset, Record, record_image
from clippings.runtime.manifest import Manifest
from clippings.runtime.modality import pattern_codes
from clippings.runtime.onnx_model import OnnxEmbedder, pool, served_vectors
from clippings.errors import DatasetError
from clippings.evaluation.plots import plot_dedup_scores, plot_link_scores
from clippings.evaluation.linking import (
    cluster_dense, grid_search, labels_of, link_errors, single_linkage, tune_dedup_threshold, tune_dense_threshold,
)
from clippings.evaluation.partial import missing_modality
from clippings.evaluation.probability import candidate_pairs, curve_scores
from clippings.runtime.probability import reference_cuts
from clippings.evaluation.scoring import WEIGHT_GRID, dedup_scores, link_decision_accuracy, link_scores

log = logging.getLogger(__name__)


def towers(emb: OnnxEmbedder, records: Sequence[Record]):
    """-> image_emb, text_emb, image_present, text_present of records, images read from disk."""
    images = [record_image(r) for r in records]
    return emb.embed_towers(images, [r.text for r in records])


def _string_link(records: Sequence[Record]) -> dict[str, dict]:
    corpus = [r for r in records if r.split == "corpus"]
    queries = [r for r in records if r.split == "query"]
    known = {r.entity for r in corpus if r.entity is not None}
    scored = [q for q in queries if q.entity in known]
    out = {}
    for name, fn in STRING_METHODS.items():
        sim = fn([q.text for q in scored], [c.text for c in corpus])
        best = sim.argmax(axis=1)
        out[name] = {"top1": float(np.mean([corpus[j].entity == q.entity for j, q in zip(best, scored)])), "n": len(scored)}
    return out


def probability_report(served: np.ndarray, entities: Sequence[str | None], codes: np.ndarray,
                       splits: Sequence[str] | None, manifest: Manifest | None) -> dict | None:
    """How well the manifest's match probability fits this set's candidate pairs (the served
    vectors' K nearest, the probabilities the linker's events would carry); None without a curve."""
    if manifest is None or manifest.match_probability is None:
        return None
    margins, same = candidate_pairs(served, entities, codes, reference_cuts(manifest), splits)
    return {"curve": dict(manifest.match_probability), **curve_scores(margins, same, manifest.match_probability)}


def evaluate_link(emb: OnnxEmbedder, ds: Dataset, served: bool = False, plot_to: Path | None = None) -> dict:
    """Top-1 of every method. served=True reports the "clippings" decision at the manifest's
    "no match" threshold (what the linker uses) instead of the one tuned on this set."""
    records = ds.split("corpus", "query")
    img, txt, ip, tp = towers(emb, records)
    texts = [r.text or "" for r in records]
    splits = [r.split for r in records]
    entities = [r.entity for r in records]
    vectors = {"clippings": emb.served(img, txt, ip, tp, texts), "embedding_only": pool(img, txt, ip, tp, emb.image_weight, emb.manifest.pooling),
               "image_only": pool(img, txt, ip, tp, 1.0), "text_only": pool(img, txt, ip, tp, 0.0)}
    metrics = {}
    for name, w in (("clippings", emb.image_weight), ("image_only", 1.0), ("text_only", 0.0)):
        s = link_scores(vectors[name], splits, entities)
        metrics[name] = {"top1": s["top1"], "threshold": s["threshold"], "image_weight": w,
                         "decision_accuracy": s["decision_accuracy"]}
    if served:
        served_link = emb.manifest.thresholds["link"]
        accuracy = link_decision_accuracy(vectors["clippings"], splits, entities, served_link)
        metrics["clippings"].update(threshold=served_link, decision_accuracy=accuracy, thresholds="manifest")
    # The model's pooled cosine alone; without text evidence it is what the linker decides on.
    metrics["embedding_only"] = {"top1": link_scores(vectors["embedding_only"], splits, entities)["top1"],
                                 "image_weight": emb.image_weight}
    strings = _string_link(records)
    metrics["levenshtein"] = strings["levenshtein"]
    metrics["jaccard"] = {"top1": max(strings["jaccard_char"]["top1"], strings["jaccard_word"]["top1"]),
                          "char_bigram_top1": strings["jaccard_char"]["top1"],
                          "word_top1": strings["jaccard_word"]["top1"]}
    if plot_to is not None:
        plot_link_scores(vectors["clippings"], splits, entities, metrics["clippings"]["threshold"], plot_to)
    split_a = np.asarray(splits)
    partial = missing_modality(img, txt, ip, tp, entities, emb.image_weight, metrics["clippings"]["threshold"],
                               queries=np.flatnonzero(split_a == "query"), targets=np.flatnonzero(split_a == "corpus"),
                               texts=texts, manifest=emb.manifest)
    probability = probability_report(vectors["clippings"], entities, pattern_codes(ip, tp), splits, emb.manifest)
    return {"task": "link", "n": s["n"], "metrics": metrics, "missing_modality": partial,
            **({"match_probability": probability} if probability else {})}


def evaluate_dedup(emb: OnnxEmbedder, ds: Dataset, served: bool = False, plot_to: Path | None = None) -> dict:
    """ARI of every method on test. served=True reports the "clippings" clusters at the
    manifest's image weight and dedup threshold (what the linker uses) instead of tuning them
    on val; the string methods, which have no manifest, stay tuned on val."""
    val, test = ds.split("val"), ds.split("test")
    if not val:
        raise DatasetError(f"{ds.root}: a dedup dataset needs a 'val' split to tune the threshold on")
    t_towers = towers(emb, test)
    t_texts = [r.text or "" for r in test]
    result = dedup_report(towers(emb, val), t_towers, val, test, emb.manifest)
    t_ent = [r.entity for r in test]
    t_served, t_codes = emb.served(*t_towers, t_texts), pattern_codes(t_towers[2], t_towers[3])  # at the manifest's decision
    if served:
        w, th = emb.image_weight, emb.manifest.thresholds
        clusters = single_linkage(t_served, th["dedup"], t_codes, th.get("text_only"), th.get("image_only"))
        ari = adjusted_rand_score(labels_of(t_ent), clusters)
        result["metrics"]["clippings"] = {"ari": float(ari), "threshold": th["dedup"], "image_weight": w,
                                          "thresholds": "manifest"}
        result["metrics"]["clippings"] |= {k: th[k] for k in ("text_only", "image_only") if k in th}
        result["errors"] = link_errors(t_served, t_ent, th["dedup"], t_codes, th.get("text_only"), th.get("image_only"))
        size = emb.manifest.calibrated_set_size
        if size:
            result["metrics"]["clippings"]["calibrated_set_size"] = size
            if not size / 1.5 <= len(test) <= size * 1.5:
                # single linkage chains more in a larger set: its best cut moves with the set's size
                log.warning("%d test clippings; the manifest's cut was tuned for sets of %d (clippings calibrate "
                            "--set-size %d fits it to this size)", len(test), size, len(test))
    chosen = result["metrics"]["clippings"]
    result["missing_modality"] = missing_modality(*t_towers, t_ent, chosen["image_weight"], chosen["threshold"],
                                                  texts=t_texts, manifest=emb.manifest)
    if emb.manifest.text_evidence is None:  # the linker decides on the model's pooled cosine alone
        result["metrics"]["embedding_only"] = {"ari": chosen["ari"], "image_weight": chosen["image_weight"]}
    if plot_to is not None:
        plot_dedup_scores(emb.served(*t_towers, t_texts, chosen["image_weight"]), t_ent, chosen["threshold"], plot_to)
    # At the manifest's decision, whatever was tuned: the curve belongs to the served vectors.
    probability = probability_report(t_served, t_ent, t_codes, None, emb.manifest)
    if probability:
        result["match_probability"] = probability
    return result


Towers = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # image_emb, text_emb, image_present, text_present


def dedup_report(v_towers: Towers, t_towers: Towers, val: Sequence[Record], test: Sequence[Record],
                 manifest: Manifest | None = None) -> dict:
    """Every method's ARI on test, each at the threshold (and w) that maximised ARI on val.
    "clippings" is the served vectors (the manifest's text evidence, if any, at its weight);
    with text evidence, "embedding_only" is the model's pooled vectors alone, tuned the same way."""
    v_ent, t_ent = [r.entity for r in val], [r.entity for r in test]
    v_texts, t_texts = [r.text or "" for r in val], [r.text or "" for r in test]
    truth = labels_of(t_ent)

    def vectors(tw: Towers, texts: list[str], w: float, evidence: bool) -> np.ndarray:
        pooled = pool(*tw, w, manifest.pooling if manifest is not None else "sum")
        return served_vectors(pooled, texts, manifest) if evidence and manifest is not None else pooled

    def score(w: float, evidence: bool = False) -> dict:
        s = dedup_scores(vectors(v_towers, v_texts, w, evidence), v_ent, vectors(t_towers, t_texts, w, evidence), t_ent)
        return {"ari": s["ari"], "threshold": s["threshold"], "image_weight": w, "val_ari": s["val_ari"]}

    def tuned(evidence: bool) -> dict:
        # w is tuned on val alone; test is scored once, at the chosen (w, threshold).
        best_w, _ = grid_search(WEIGHT_GRID, lambda w: tune_dedup_threshold(vectors(v_towers, v_texts, float(w), evidence),
                                                                            v_ent)[1])
        return score(best_w, evidence)

    metrics = {"clippings": tuned(True), "image_only": score(1.0), "text_only": score(0.0)}
    if manifest is not None and manifest.text_evidence is not None:
        metrics["embedding_only"] = tuned(False)
    for name, fn in STRING_METHODS.items():
        t, val_ari = tune_dense_threshold(fn([r.text for r in val], [r.text for r in val]), v_ent)
        ari = adjusted_rand_score(truth, cluster_dense(fn([r.text for r in test], [r.text for r in test]), t))
        metrics[name] = {"ari": float(ari), "threshold": t, "val_ari": val_ari}
    jc, jw = metrics.pop("jaccard_char"), metrics.pop("jaccard_word")
    best = jc if jc["val_ari"] >= jw["val_ari"] else jw  # chosen on val, like every threshold here
    metrics["jaccard"] = {**best, "variant": "char_bigram" if best is jc else "word", "char_bigram_ari": jc["ari"],
                          "word_ari": jw["ari"]}
    return {"task": "dedup", "n": len(test), "metrics": metrics}
