"""The match probability: fitted on candidate pairs, stored in the manifest, read by the linker."""

from __future__ import annotations

import json

import numpy as np
import pytest

from clippings.errors import ModelError
from clippings.evaluation.probability import candidate_pairs, curve_scores, fit_curve
from clippings.runtime.manifest import Manifest
from clippings.runtime.modality import CODES, IMAGE_ONLY, TEXT_ONLY
from clippings.runtime.probability import match_probability, pair_probability, reference_cuts
from clippings.services.linker.decide import DecisionRule
from test_services_linking import clustered, items_of, new_state, run


def test_fit_recovers_the_curve_that_drew_the_labels():
    rng = np.random.default_rng(0)
    margins = rng.uniform(-0.3, 0.3, 40_000)
    same = rng.random(len(margins)) < 1 / (1 + np.exp(-(25 * margins + 1.5)))
    curve = fit_curve(margins, same, "dedup")
    assert curve["slope"] == pytest.approx(25, rel=0.08) and curve["intercept"] == pytest.approx(1.5, abs=0.1)
    assert curve["pairs"] == len(margins) and curve["cut"] == "dedup"
    # Fitted, it scores better than the same curve with the wrong sign or a wrong offset.
    fitted = curve_scores(margins, same, curve)["brier"]
    assert fitted < curve_scores(margins, same, {**curve, "slope": -curve["slope"]})["brier"]
    assert fitted < curve_scores(margins, same, {**curve, "intercept": curve["intercept"] - 2})["brier"]
    with pytest.raises(ValueError, match="matching and non-matching"):
        fit_curve(margins, np.ones(len(margins), bool), "dedup")


def test_probability_rises_with_the_margin_and_reads_the_pair_cut():
    curve = {"cut": "dedup", "slope": 20.0, "intercept": 0.5, "pairs": 10}
    p = match_probability(np.array([0.5, 0.8, 0.82, 0.9]), 0.82, curve)
    assert np.all(np.diff(p) > 0) and p[2] == pytest.approx(1 / (1 + np.exp(-0.5)))
    cuts = (0.82, 0.55, 0.74)
    assert pair_probability(0.6, TEXT_ONLY, "", curve, cuts) == pytest.approx(match_probability(0.6, 0.55, curve))
    assert pair_probability(0.6, "", IMAGE_ONLY, curve, cuts) == pytest.approx(match_probability(0.6, 0.74, curve))
    assert pair_probability(0.99, TEXT_ONLY, IMAGE_ONLY, curve, cuts) == 0.0  # never linked, never probable


def test_candidate_pairs_are_each_clippings_nearest_once_with_their_pair_cuts():
    v = np.array([[1, 0], [0.96, 0.28], [0.8, 0.6], [0, 1], [-1, 0]], np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    entities = ["a", "a", "b", "b", None]
    codes = np.array([CODES[""], CODES[TEXT_ONLY], CODES[IMAGE_ONLY], CODES[""], CODES[""]])
    margins, same = candidate_pairs(v, entities, codes, (0.9, 0.5, 0.7), k=1)
    # Nearest: 0-1, 1-0 (one pair), 2-1 (a caption alone and a photo alone: never), 3-2, 4-3.
    expected = {(0, 1): (float(v[0] @ v[1]) - 0.5, True), (2, 3): (float(v[2] @ v[3]) - 0.7, True),
                (3, 4): (float(v[3] @ v[4]) - 0.9, False)}
    assert sorted(np.round(margins, 5)) == sorted(round(m, 5) for m, _ in expected.values())
    assert sorted(same.tolist()) == sorted(s for _, s in expected.values())
    # On a linking set, queries pair with corpus entries only.
    splits = ["corpus", "query", "corpus", "query", "corpus"]
    margins, same = candidate_pairs(v, entities, np.zeros(5, int), (0.9, None, None), splits, k=1)
    assert np.allclose(sorted(margins), sorted([float(v[1] @ v[0]) - 0.9, float(v[3] @ v[2]) - 0.9]))
    assert same.tolist() == [True, True]


def test_manifest_keeps_the_curve_and_refuses_a_misspelt_key(tmp_path):
    from clippings.runtime.onnx_model import resolve_model

    m = Manifest.load(resolve_model("news"))
    curve = {"cut": "dedup", "slope": 30.0, "intercept": 0.2, "pairs": 100}
    m.model_copy(update={"match_probability": curve}).save(tmp_path)
    assert Manifest.load(tmp_path).match_probability == curve
    assert reference_cuts(Manifest.load(tmp_path)) == (m.thresholds["dedup"], m.thresholds.get("text_only"),
                                                       m.thresholds.get("image_only"))
    raw = json.loads((tmp_path / "manifest.json").read_text())
    raw["match_probability"]["slop"] = raw["match_probability"].pop("slope")
    (tmp_path / "manifest.json").write_text(json.dumps(raw))
    with pytest.raises(ModelError, match="match_probability.slop"):
        Manifest.load(tmp_path)


def test_link_events_carry_the_probability_of_their_match_or_nearest_neighbour():
    curve = {"cut": "dedup", "slope": 40.0, "intercept": 0.3, "pairs": 100}
    vectors = clustered(3, noise=0.3)
    rng = np.random.default_rng(7)
    patterns = rng.choice(3, size=len(vectors), p=[0.6, 0.25, 0.15])
    r = DecisionRule(threshold=0.9, search="range", knn_k=32, neighbours_in_event=3, model_version="v1",
                     near=0.2, text_only=0.7, image_only=0.95, curve=curve, curve_cuts=(0.85, 0.7, 0.95))
    outcomes = run(new_state(), items_of(vectors, np.arange(len(vectors)), patterns=patterns), iter(lambda: 4, None), r)
    kinds = ("", TEXT_ONLY, IMAGE_ONLY)
    kind_of = {f"c{i}": kinds[p] for i, p in enumerate(patterns)}
    with_neighbours = 0
    for o in outcomes:
        d = o.fresh
        for n in d.neighbours:  # each read at its own pair's cut, from the curve's cuts (0.85), not the rule's
            want = pair_probability(n.similarity, kind_of[d.id], kind_of[n.id], curve, (0.85, 0.7, 0.95))
            assert n.probability == pytest.approx(want, abs=1e-5)
        if d.neighbours:
            with_neighbours += 1
            best = d.matched_id or d.neighbours[0].id
            sim = d.similarity if d.matched_id else d.neighbours[0].similarity
            assert d.probability == pytest.approx(
                pair_probability(sim, kind_of[d.id], kind_of[best], curve, (0.85, 0.7, 0.95)), abs=1e-5)
        else:
            assert d.probability is None
    assert with_neighbours > 10
    # Without a curve, no probability.
    plain = DecisionRule(threshold=0.9, search="range", knn_k=32, neighbours_in_event=3, model_version="v1")
    assert all(o.fresh.probability is None for o in run(new_state(), items_of(vectors, np.arange(len(vectors))),
                                                        iter(lambda: 4, None), plain))
