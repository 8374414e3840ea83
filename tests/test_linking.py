import numpy as np
import pytest

from clippings.baselines import jaccard_similarity, levenshtein_similarity
from clippings.embedding import l2_normalize, pool
from clippings.linking import cluster_dense, single_linkage, top1, tune_dedup_threshold


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


def test_top1_finds_nearest():
    corpus = unit([1, 0], [0, 1])
    idx, sim = top1(unit([0.1, 1.0], [1.0, 0.2]), corpus)
    assert idx.tolist() == [1, 0] and np.all(sim > 0.9)


def test_pool_drops_a_missing_modality():
    img, txt = unit([1, 0]), unit([0, 1])
    both = pool(img, txt, np.array([1.0]), np.array([1.0]), 0.5)
    only_img = pool(img, txt, np.array([1.0]), np.array([0.0]), 0.5)
    assert np.allclose(both, [[2**-0.5, 2**-0.5]], atol=1e-6) and np.allclose(only_img, img)


def test_string_baselines():
    lev = levenshtein_similarity(["株式会社山田製作所"], ["株式会社山田製作所", "山田商店"])
    assert lev[0, 0] == 1.0 and lev[0, 1] < 0.6
    jac = jaccard_similarity(["abc d", ""], ["abc d", "xyz"])
    assert jac[0, 0] == 1.0 and jac[0, 1] == 0.0 and jac[1, 0] == 0.0
    word = jaccard_similarity(["the cat sat"], ["the cat ran"], n=1, unit="word")
    assert word[0, 0] == pytest.approx(2 / 4)
