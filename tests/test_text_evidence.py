"""Text evidence: the captions' character pairs in the served vector (runtime/text_evidence.py),
chosen by `clippings calibrate --text-evidence`, scored by `clippings eval` on the vectors the
embedder publishes. Real shipped graphs, small generated sets."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from clippings.data.dataset import load_dataset
from clippings.data.synth.generate import generate
from clippings.evaluation.linking import labels_of, single_linkage
from clippings.evaluation.scoring import TowerSet, tune_serving_sets
from clippings.export.recalibrate import TEXT_WEIGHT_GRID, calibrated_version, graph_version, tower_set
from clippings.runtime.manifest import Manifest
from clippings.runtime.onnx_model import OnnxEmbedder, pool
from clippings.runtime.preprocess import load_image
from clippings.runtime.text_evidence import char_pair_vectors, with_text_evidence

CAPTION = "Mayor opens the new harbour bridge at Kingston before a crowd of two thousand"


def pair_set(text: str) -> set[str]:
    t = " ".join(text.casefold().split())
    return {t[i:i + 2] for i in range(len(t) - 1)}


def test_pair_vectors_follow_the_caption_not_its_case_or_spacing():
    v = char_pair_vectors([CAPTION, CAPTION.upper().replace(" ", "   "), "", "x"], 256)
    assert np.allclose(v[0], v[1]) and np.linalg.norm(v[0]) == pytest.approx(1.0)
    assert not v[2].any() and not v[3].any()  # no pair: nothing, not noise


def test_pair_cosine_tracks_the_share_of_pairs_two_captions_have():
    """Signed hashing: the cosine of two pair vectors estimates |A & B| / sqrt(|A| |B|)."""
    other = "Fire destroys warehouse on quay; three firemen hurt, cause unknown"
    noisy = CAPTION.replace("harbour", "harb0ur").replace("crowd", "crovvd")
    v = char_pair_vectors([CAPTION, noisy, other], 512)
    for a, b, (i, j) in ((CAPTION, noisy, (0, 1)), (CAPTION, other, (0, 2))):
        share = len(pair_set(a) & pair_set(b)) / np.sqrt(len(pair_set(a)) * len(pair_set(b)))
        assert float(v[i] @ v[j]) == pytest.approx(share, abs=0.12)
    assert float(v[0] @ v[1]) > 0.8 and float(v[0] @ v[2]) < 0.45  # English shares its common pairs


def test_served_cosine_is_the_weighted_sum_of_the_two():
    rng = np.random.default_rng(0)
    pooled = rng.standard_normal((3, 16)).astype(np.float32)
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
    texts = [CAPTION, CAPTION[:40] + " and more", ""]
    served = with_text_evidence(pooled, texts, 0.3, 256)
    pairs = char_pair_vectors(texts, 256)
    assert served.shape == (3, 16 + 256)
    assert float(served[0] @ served[1]) == pytest.approx(0.7 * float(pooled[0] @ pooled[1]) + 0.3 * float(pairs[0] @ pairs[1]),
                                                         abs=1e-6)
    # No caption: the pooled vector as it is, so against a captioned clipping sqrt(0.7) x the model's cosine.
    assert np.allclose(served[2, :16], pooled[2]) and not served[2, 16:].any()
    assert float(served[2] @ served[0]) == pytest.approx(np.sqrt(0.7) * float(pooled[2] @ pooled[0]), abs=1e-6)


def test_calibration_weighs_the_captions_in_where_the_towers_cannot_tell():
    """Towers that put every clipping at the same cosine to every other: only the captions say
    which are duplicates. Without text evidence no cut separates them; with it one does."""
    stories = [CAPTION, "Fire destroys warehouse on quay; three firemen hurt, cause unknown",
               "Council votes to close the old tram line from the station to the park",
               "Champion jockey wins the autumn cup by a length on a heavy track"]
    texts, entities = [], []
    for k, story in enumerate(stories):
        texts += [story, story.replace("e", "c", 2)]  # a reprint with OCR damage
        entities += [f"s{k}", f"s{k}"]
    n = len(texts)
    flat = np.full((n, 8), 1 / np.sqrt(8), np.float32)  # every cosine 1: towers that see nothing
    s = TowerSet(flat, flat, np.ones(n, np.float32), np.ones(n, np.float32), ["val"] * n, entities, texts)
    without = tune_serving_sets([s])
    chosen = tune_serving_sets([s], TEXT_WEIGHT_GRID)
    assert without["text_weight"] == 0.0 and without["val_ari"] < 0.5
    assert chosen["text_weight"] > 0 and chosen["val_ari"] == 1.0
    served = s.served(chosen["image_weight"], chosen["text_weight"])
    assert adjusted_rand_score(labels_of(entities), single_linkage(served, chosen["dedup"])) == 1.0


def test_manifest_keeps_text_evidence_and_leaves_it_out_when_unset(tmp_path):
    news = OnnxEmbedder("news").manifest.model_copy(update={"pooling": "sum"})
    assert news.text_evidence is None and news.served_dim == news.embedding_dim
    news.save(tmp_path)
    assert "text_evidence" not in json.loads((tmp_path / "manifest.json").read_text())
    with_evidence = news.model_copy(update={"text_evidence": {"weight": 0.3, "dim": 256}})
    with_evidence.save(tmp_path)
    loaded = Manifest.load(tmp_path)
    assert loaded.text_evidence == {"weight": 0.3, "dim": 256} and loaded.served_dim == news.embedding_dim + 256


@pytest.fixture(scope="module")
def news_sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("text-evidence")
    generate("news", root / "a", task="dedup", entities=24, seed=411, progress=False)
    return root / "a"


def clippings(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "clippings.cli", *args], capture_output=True, text=True, timeout=600)


def test_calibrate_text_evidence_writes_what_tuning_chose(news_sets, tmp_path):
    out = tmp_path / "news-text"
    proc = clippings("calibrate", "news", "--data", str(news_sets), "--out", str(out), "--text-evidence")
    assert proc.returncode == 0, proc.stderr[-2000:]
    base = OnnxEmbedder("news")
    tuned = tune_serving_sets([tower_set(base, load_dataset(news_sets).split("val"))], TEXT_WEIGHT_GRID)
    m = Manifest.load(out)
    evidence = {"weight": tuned["text_weight"], "dim": 256} if tuned["text_weight"] else None
    assert m.text_evidence == evidence
    assert (m.image_weight, m.thresholds["dedup"]) == (tuned["image_weight"], tuned["dedup"])
    assert m.version == calibrated_version(graph_version(base.model_dir, base.manifest, m.variant), m.image_weight,
                                           m.thresholds["link"], m.thresholds["dedup"], evidence, m.thresholds,
                                           m.pooling, m.variant)


def test_eval_scores_the_served_vectors_and_the_model_alone(news_sets, tmp_path):
    model = tmp_path / "news-text"
    base = OnnxEmbedder("news")
    shutil.copytree(base.model_dir, model)
    m = base.manifest.model_copy(update={"text_evidence": {"weight": 0.3, "dim": 256}, "version": "text-test"})
    m.save(model)
    proc = clippings("eval", str(news_sets), "--model", str(model), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads(proc.stdout)["metrics"]
    emb = OnnxEmbedder(model)
    test = load_dataset(news_sets).split("test")
    texts = [r.text for r in test]
    img, txt, ip, tp = emb.embed_towers([load_image(r.image) if r.image else None for r in test], texts)
    served = emb.embed([load_image(r.image) if r.image else None for r in test], texts)
    assert served.shape[1] == base.manifest.served_dim + 256
    assert np.allclose(served, with_text_evidence(pool(img, txt, ip, tp, m.image_weight, m.pooling), texts, 0.3, 256), atol=1e-6)
    truth = labels_of([r.entity for r in test])
    assert metrics["clippings"]["ari"] == pytest.approx(
        adjusted_rand_score(truth, single_linkage(served, m.thresholds["dedup"])))
    # embedding_only: the pooled vectors without the captions' pairs, at its own cut tuned on val.
    only = metrics["embedding_only"]
    assert adjusted_rand_score(truth, single_linkage(pool(img, txt, ip, tp, only["image_weight"], m.pooling), only["threshold"])) \
        == pytest.approx(only["ari"])
