from pathlib import Path

import numpy as np
import pytest

from clippings.evaluation.baselines import jaccard_similarity, levenshtein_similarity
from clippings.data.dataset import Dataset, Record
from clippings.runtime.onnx_model import OnnxEmbedder, l2_normalize, pool
from clippings.evaluation.evaluate import dedup_report, evaluate_dedup, evaluate_link
from clippings.evaluation.linking import (
    cluster_dense, grid_search, labels_of, link_errors, single_linkage, top1, tune_dedup_threshold,
    tune_link_threshold,
)


def unit(*rows):
    return l2_normalize(np.array(rows, np.float32))


def test_single_linkage_chains_through_a_bridge():
    # a-b close, b-c close, a-c far: single linkage joins all three; d stays alone.
    a, b, c, d = unit([1, 0, 0], [0.9, 0.44, 0], [0.6, 0.8, 0], [0, 0, 1])
    labels = single_linkage(np.stack([a, b, c, d]), threshold=0.85)
    assert labels[0] == labels[1] == labels[2] != labels[3]


def test_single_linkage_threshold_is_inclusive():
    v = unit([1, 0], [0.6, 0.8])  # cosine exactly 0.6 in float32
    cos = float(v[0] @ v[1])
    assert single_linkage(v, cos)[0] == single_linkage(v, cos)[1]
    assert single_linkage(v, np.nextafter(np.float32(cos), np.float32(1)))[0] != single_linkage(v, 0.61)[1]


def test_single_linkage_agrees_with_dense_clustering():
    rng = np.random.default_rng(0)
    v = l2_normalize(rng.normal(size=(60, 4)).astype(np.float32))
    sim = v @ v.T
    from sklearn.metrics import adjusted_rand_score

    assert adjusted_rand_score(single_linkage(v, 0.8), cluster_dense(sim, 0.8)) == pytest.approx(1.0)


def test_tune_dedup_threshold_recovers_clusters():
    rng = np.random.default_rng(1)
    centres = l2_normalize(rng.normal(size=(10, 16)).astype(np.float32))
    ents = np.repeat(np.arange(10), 3)
    v = l2_normalize(centres[ents] + 0.05 * rng.normal(size=(30, 16)).astype(np.float32))
    threshold, ari = tune_dedup_threshold(v, [str(e) for e in ents])
    assert ari == pytest.approx(1.0) and 0.3 <= threshold < 1.0


def test_grid_search_keeps_the_first_of_equal_scores():
    """The one grid search behind every threshold and weight: the best score wins, the grid's
    order breaks ties, and the value comes back as given (not cast to float32)."""
    assert grid_search([0.1, 0.2, 0.3, 0.4], {0.1: 0.2, 0.2: 0.7, 0.3: 0.7, 0.4: 0.1}.get) == (0.2, 0.7)
    assert grid_search([0.3, 0.2], {0.2: 0.7, 0.3: 0.7}.get) == (0.3, 0.7)
    assert grid_search(np.array([0.7]), lambda t: float(np.float32(0.7) >= t)) == (0.7, 0.0)  # float64 cut


def test_tune_link_threshold_maximises_decision_accuracy():
    # Right links at 0.9 and 0.8, a wrong one at 0.6 whose entity is in the corpus, a query not
    # in the corpus at 0.5: every cut in (0.5, 0.8] gets 3 of 4; ties go to the lowest.
    sims = np.array([0.9, 0.8, 0.6, 0.5], np.float32)
    threshold, acc = tune_link_threshold(sims, np.array([True, True, False, False]), np.array([True, True, True, False]))
    assert threshold == 0.51 and acc == 0.75


def test_top1_finds_nearest():
    corpus = unit([1, 0], [0, 1])
    idx, sim = top1(unit([0.1, 1.0], [1.0, 0.2]), corpus)
    assert idx.tolist() == [1, 0] and np.all(sim > 0.9)


def test_pool_drops_a_missing_modality():
    img, txt = unit([1, 0]), unit([0, 1])
    both = pool(img, txt, np.array([1.0]), np.array([1.0]), 0.5)
    only_img = pool(img, txt, np.array([1.0]), np.array([0.0]), 0.5)
    assert np.allclose(both, [[2**-0.5, 2**-0.5]], atol=1e-6) and np.allclose(only_img, img)


def test_string_baselines_find_no_likeness_in_missing_text():
    """Two clippings without a caption share nothing a string method can see: similarity 0,
    not the 1.0 of two equal empty strings, which chained every caption-less clipping of a
    dedup set into one cluster."""
    texts = ["", " ", "a caption", ""]
    for fn in (levenshtein_similarity, jaccard_similarity):
        sim = fn(texts, texts)
        assert sim[0, 3] == 0.0 and sim[0, 1] == 0.0 and sim[0, 2] == 0.0
        assert sim[2, 2] == 1.0



def test_string_baselines_compare_ocr_variants_as_one_text():
    """Full-width Latin and half-width kana (common OCR variants) and runs of spaces fold to
    one form on both sides before comparing."""
    for a, b in (("ＡＢＣ Ｍｉｌｌ", "ABC  Mill"), ("ｶﾌﾞｼｷｶﾞｲｼｬ", "カブシキガイシャ")):
        for fn in (levenshtein_similarity, jaccard_similarity):
            assert fn([a], [b])[0, 0] == 1.0 and fn([b], [a])[0, 0] == 1.0, (fn.__name__, a)


def test_clippings_without_an_entity_are_each_their_own():
    assert list(labels_of(["a", None, None, "a", "b"])) == [0, 1, 2, 0, 3]


def test_string_clusters_join_a_pair_exactly_at_the_cut():
    sim = np.array([[1.0, 0.5, 0.2], [0.5, 1.0, 0.2], [0.2, 0.2, 1.0]], np.float32)
    assert list(cluster_dense(sim, 0.5)) == [0, 0, 1]

def test_string_baselines():
    lev = levenshtein_similarity(["株式会社山田製作所"], ["株式会社山田製作所", "山田商店"])
    assert lev[0, 0] == 1.0 and lev[0, 1] < 0.6
    jac = jaccard_similarity(["abc d", ""], ["abc d", "xyz"])
    assert jac[0, 0] == 1.0 and jac[0, 1] == 0.0 and jac[1, 0] == 0.0
    word = jaccard_similarity(["the cat sat"], ["the cat ran"], n=1, unit="word")
    assert word[0, 0] == pytest.approx(2 / 4)


# -- `clippings eval`: the threshold is tuned on val, ARI is scored on test ---------------------
def pair_at(base: np.ndarray, side: np.ndarray, cosine: float) -> np.ndarray:
    """A unit vector at `cosine` from the unit vector `base`, towards `side` (orthogonal to base)."""
    return cosine * base + np.sqrt(1 - cosine**2) * side


# The methods that see the records below (text only; image_only sees nothing in them).
TEXT_METHODS = ("clippings", "text_only", "levenshtein", "jaccard")


def text_records(split: str, rows: list[tuple[str, str]]) -> list[Record]:
    return [Record(id=f"{split}-{i}", image=None, text=text, entity=entity, split=split)
            for i, (text, entity) in enumerate(rows)]


def test_dedup_eval_tunes_on_val_and_scores_test():
    """Each split says something else, so the right report is known exactly.
    val: text duplicates at cosine 0.95, other entities up to 0.845 (val's cut: 0.85); one image
    for all (uninformative). test: image duplicates at 0.80, other entities at 0; one text for all.
    Tuning on test, or scoring val, or choosing w on test, each gives other numbers. The texts do
    the same to the string baselines: distinct on val, near-identical across test's entities."""
    e = np.eye(8, dtype=np.float32)
    b1 = pair_at(e[0], e[2], 0.845)
    text_val = np.stack([e[0], pair_at(e[0], e[1], 0.95), b1, pair_at(b1, e[3], 0.95)]).astype(np.float32)
    image_test = np.stack([e[4], pair_at(e[4], e[5], 0.80), e[6], pair_at(e[6], e[7], 0.80)]).astype(np.float32)
    same = np.repeat(e[7:8], 4, axis=0)
    ones = np.ones(4, np.float32)
    val = text_records("val", [("red fox", "a"), ("red fox", "a"), ("blue owl", "b"), ("blue owl", "b")])
    test = text_records("test", [("green cat", "c"), ("green cat", "c"), ("green cap", "d"), ("green cap", "d")])
    report = dedup_report((same, text_val, ones, ones), (image_test, same, ones, ones), val, test)
    m = report["metrics"]
    assert report["n"] == 4
    expected = {"text_only": (0.0, 0.85, 1.0), "clippings": (0.0, 0.85, 1.0), "image_only": (1.0, 0.30, 0.0)}
    for name, want in expected.items():
        assert (m[name]["ari"], m[name]["threshold"], m[name]["val_ari"]) == want, (name, m[name])
    assert m["clippings"]["image_weight"] == 0.0  # on val the image says nothing
    for name in ("levenshtein", "jaccard"):
        assert (m[name]["ari"], m[name]["val_ari"]) == (0.0, 1.0), (name, m[name])


def test_eval_of_a_dataset_scores_its_test_split():
    """The whole of evaluate_dedup on a real model: val holds exact duplicates of two distinct
    captions (ARI 1 at any cut), test two records of one caption labelled as two entities (ARI 0
    at any cut). Every method must report val_ari 1 and ARI 0."""
    val = text_records("val", [("FLOOD WATERS RISE IN THE RIVER VALLEY", "a")] * 2
                       + [("Mayor opens the new public library downtown", "b")] * 2)
    test = text_records("test", [("Harvest festival draws record crowds", "c"),
                                 ("Harvest festival draws record crowds", "d"),
                                 ("Storm closes the harbour for three days", "e")])
    result = evaluate_dedup(OnnxEmbedder("news"), Dataset(Path("designed"), val + test))
    assert result["n"] == 3
    for name in TEXT_METHODS:
        m = result["metrics"][name]
        assert (m["ari"], m["val_ari"]) == (0.0, 1.0), (name, m)


def test_link_eval_top1_is_exact():
    """corpus: two captions; queries: both again, one of them under the other entity, and one
    whose entity is not in the corpus (not scored). Top-1 is exactly 2 of 3 for every method."""
    corpus = [("FLOOD WATERS RISE IN THE RIVER VALLEY", "a"), ("Mayor opens the new public library downtown", "b")]
    queries = corpus + [(corpus[0][0], "b"), ("Harvest festival draws record crowds", "z")]
    ds = Dataset(Path("designed"), text_records("corpus", corpus) + text_records("query", queries))
    result = evaluate_link(OnnxEmbedder("news"), ds)
    assert result["n"] == 3
    for name in TEXT_METHODS:
        m = result["metrics"][name]
        assert m["top1"] == pytest.approx(2 / 3), (name, m)


def test_equal_top1_is_decided_by_the_margin_to_the_best_other_entity():
    """Photos tell the two firms apart cleanly, the queries' texts only just: every w links
    both queries right, and the served w is the one that keeps them furthest from the wrong
    firm (all image), not the middle of the grid."""
    from clippings.evaluation.scoring import link_margin, tune_serving

    img = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0]], np.float32)
    txt = np.array([[0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0.8, 0.6], [0, 0, 0.6, 0.8]], np.float32)
    present = np.ones(4, np.float32)
    splits, entities = ["corpus", "corpus", "query", "query"], ["a", "b", "a", "b"]
    tuned = tune_serving(img, txt, present, present, splits, entities)
    assert tuned["val_top1"] == 1.0 and tuned["image_weight"] == 1.0
    full = pool(img, txt, present, present, 1.0)
    assert link_margin(full, splits, entities) == pytest.approx(1.0)  # own photo 1.0, the other's 0.0


def test_a_served_cut_sits_on_a_plateau_not_beside_a_cliff():
    """Ten duplicate pairs at cosine 0.80 and three pairs of different entities at 0.79: ARI is
    1.0 for cuts 0.79-0.80 only and falls to 0 just above (every duplicate split). With window 0
    that peak wins; with a window the cut moves below it, where a little lower or higher
    still scores."""
    from clippings.evaluation.linking import tune_dedup_threshold

    eye = np.eye(64, dtype=np.float32)
    vectors, entities = [], []
    for k in range(10):
        vectors += [eye[2 * k], pair_at(eye[2 * k], eye[2 * k + 1], 0.80)]
        entities += [f"d{k}", f"d{k}"]
    for k in range(3):
        a, b = eye[20 + 2 * k], eye[21 + 2 * k]
        vectors += [a, pair_at(a, b, 0.79)]
        entities += [f"x{k}", f"y{k}"]
    vectors = np.asarray(vectors, np.float32)
    peak, peak_score = tune_dedup_threshold(vectors, entities)
    assert 0.79 <= peak <= 0.80 and peak_score == 1.0  # 0.79 itself: the false pairs sit a float below it
    cut, plateau = tune_dedup_threshold(vectors, entities, window=0.04)
    assert cut < peak and plateau < 1.0
    grid = np.round(np.arange(0.30, 0.991, 0.01), 2)
    at_peak = np.mean([tune_dedup_threshold(vectors, entities, grid=np.array([t]))[1]
                       for t in grid if abs(t - peak) <= 0.04 + 1e-9])
    assert plateau > at_peak


def test_link_errors_tell_wrong_links_from_missed_pairs():
    # a1 and a2 (one entity) lie apart; b and c (two entities) link; d is alone.
    a1, a2, b, c, d = unit([1, 0, 0, 0], [0.5, 0.866, 0, 0], [0, 0, 1, 0], [0, 0, 0.95, 0.312], [0, 0, 0, 1])
    entities = ["a", "a", "b", "c", "d"]
    errors = link_errors(np.stack([a1, a2, b, c, d]), entities, threshold=0.9)
    assert (errors["wrong_links"], errors["missed_pairs"], errors["entity_pairs"]) == (1, 1, 1)
    from sklearn.metrics import adjusted_rand_score

    truth = [0, 0, 1, 2, 3]
    assert errors["ari_without_wrong_links"] == pytest.approx(adjusted_rand_score(truth, [0, 1, 2, 3, 4]))
    assert errors["ari_without_missed_pairs"] == pytest.approx(adjusted_rand_score(truth, [0, 0, 1, 1, 2]))
    # A clipping of no entity is its own singleton: never a missed pair, and a link to it is wrong.
    errors = link_errors(np.stack([a1, a1, b, c]), ["a", "a", None, "c"], threshold=0.9)
    assert (errors["wrong_links"], errors["missed_pairs"], errors["entity_pairs"]) == (1, 0, 1)
    assert errors["ari_without_missed_pairs"] == pytest.approx(adjusted_rand_score([0, 0, 1, 2], [0, 0, 1, 1]))
