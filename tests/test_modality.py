"""Clippings missing a modality: the pair cuts (runtime/modality.py), how `clippings calibrate`
chooses them, and `clippings eval` scoring with them as the linker decides."""

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
from clippings.evaluation.scoring import TowerSet, highest_within_one_se, middle_of_best_run, tune_partial_cuts
from clippings.runtime.modality import COMPLETE, IMAGE_ONLY, NEVER, TEXT_ONLY, pair_cut, pattern, pattern_codes
from clippings.runtime.onnx_model import OnnxEmbedder
from clippings.runtime.preprocess import load_image


def test_pair_cuts():
    assert pattern(True, True) == COMPLETE and pattern(False, True) == TEXT_ONLY and pattern(True, False) == IMAGE_ONLY
    cut = lambda a, b: pair_cut(0.8, 0.6, 0.9, a, b)
    assert cut(COMPLETE, COMPLETE) == cut(TEXT_ONLY, TEXT_ONLY) == cut(IMAGE_ONLY, IMAGE_ONLY) == 0.8
    assert cut(TEXT_ONLY, COMPLETE) == cut(COMPLETE, TEXT_ONLY) == 0.6
    assert cut(IMAGE_ONLY, COMPLETE) == 0.9 and cut(TEXT_ONLY, IMAGE_ONLY) == NEVER
    # A model without the cuts holds every pair to its own, as before they existed.
    assert all(pair_cut(0.8, None, None, a, b) == 0.8 for a in "ab" for b in "ab")
    assert pair_cut(0.8, None, None, TEXT_ONLY, IMAGE_ONLY) == 0.8


def towers_of_stories(stories: int, caption_to_photo: float, rng) -> TowerSet:
    """Two complete reprints per story: the same photo and caption embeddings up to noise, the
    caption at cosine `caption_to_photo` to the photo; stories far apart."""
    d = 4 * stories
    img, txt, ent = [], [], []
    for k in range(stories):
        photo, caption = np.eye(d)[4 * k], np.eye(d)[4 * k + 1]
        caption = caption_to_photo * photo + np.sqrt(1 - caption_to_photo**2) * caption
        for _ in range(2):
            img.append(photo + 0.01 * rng.standard_normal(d))
            txt.append(caption + 0.01 * rng.standard_normal(d))
            ent.append(f"s{k}")
    unit = lambda x: (np.array(x) / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    n = len(ent)
    return TowerSet(unit(img), unit(txt), np.ones(n, np.float32), np.ones(n, np.float32), ["val"] * n, ent)


def test_calibration_finds_the_cut_at_which_a_caption_alone_finds_its_reprint():
    """A caption alone against its complete reprint sits at about 0.92 (pooled at w 0.5 with a
    caption-to-photo cosine of 0.7), far below two complete reprints; other stories are at 0."""
    s = towers_of_stories(6, 0.7, np.random.default_rng(0))
    cuts = tune_partial_cuts([s], 0.5, 0.95)
    assert cuts["val_text_only_links"] == 1.0 and cuts["val_text_only_false_links"] == 0.0
    assert cuts["val_text_only_ari"] == 1.0 and cuts["text_only"] <= 0.92
    assert cuts["val_image_only_links"] == 1.0 and cuts["image_only"] <= 0.92


def test_a_cut_that_reaches_a_reprint_and_a_sibling_story_is_not_chosen():
    """A caption alone (x0) finds its reprint at 0.62 but a sibling story of four reprints (z)
    at 0.58, whose captions share most sentences with it; another caption alone (y0) finds its
    reprint only at 0.51. Counting each caption's nearest neighbour, 0.50 links both and never
    wrongly; in single linkage it also joins x0 to z, merging two stories. The cut must lie
    between 0.58 and 0.62."""
    basis = iter(np.eye(24))
    u, gx, gz, gy, hx, hz, hy = (next(basis) for _ in range(7))
    txt, img, ent = [], [], []
    for e, shared, own, face in (("x", (0.82, 0.06), gx, hx), ("z", (0.82, 0.08), gz, hz), ("z", (0.82, 0.08), gz, hz),
                                 ("z", (0.82, 0.08), gz, hz), ("z", (0.82, 0.08), gz, hz), ("y", (0.0, 0.72), gy, hy),
                                 ("x", (0.82, 0.06), gx, hx), ("y", (0.0, 0.72), gy, hy)):
        a, b = shared
        # caption: sqrt(a) of the sentences x and z share, sqrt(b) of the story's own, the rest this reprint's
        txt.append(np.sqrt(a) * u + np.sqrt(b) * own + np.sqrt(1 - a - b) * next(basis))
        img.append(face)  # one photo per story, the same in every reprint
        ent.append(e)
    n = len(ent)
    s = TowerSet(np.array(img, np.float32), np.array(txt, np.float32), np.ones(n, np.float32),
                 np.ones(n, np.float32), ["val"] * n, ent)
    # Of the eight complete clippings with a duplicate, the 1st and the 6th (x0 and y0) lose their photo.
    cuts = tune_partial_cuts([s], 0.5, 0.8)
    assert 0.59 <= cuts["text_only"] <= 0.62
    assert cuts["val_text_only_ari"] == pytest.approx(adjusted_rand_score(
        [0, 1, 1, 1, 1, 2, 0, 2], [0, 1, 1, 1, 1, 2, 0, 3]))  # x kept whole, y0 left alone


@pytest.fixture(scope="module")
def news_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("modality") / "news"
    generate("news", root, task="dedup", entities=24, seed=421, progress=False)
    return root


def test_eval_scores_with_the_manifests_pair_cuts(news_set, tmp_path):
    """Half the test clippings lose their photo; eval's ARI is single linkage with the pair cuts."""
    records = [json.loads(line) for line in (news_set / "records.jsonl").read_text().splitlines()]
    for k, r in enumerate(records):
        if r["split"] == "test" and k % 2 and r.get("text"):
            r["image"] = None
    stripped = tmp_path / "stripped"
    shutil.copytree(news_set, stripped)
    (stripped / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    base = OnnxEmbedder("news")
    model = tmp_path / "news-cuts"
    shutil.copytree(base.model_dir, model)
    # A caption alone held to 0.5: low enough, with the shipped model, to link captions the
    # complete-pair cut would leave apart, so that the pair cuts change the clusters.
    th = {**base.manifest.thresholds, "text_only": 0.5, "image_only": 0.9}
    base.manifest.model_copy(update={"thresholds": th, "version": "cuts-test"}).save(model)

    proc = subprocess.run([sys.executable, "-m", "clippings.cli", "eval", str(stripped), "--model", str(model), "--json"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    test = load_dataset(stripped).split("test")
    emb = OnnxEmbedder(model)
    img, txt, ip, tp = emb.embed_towers([load_image(r.image) if r.image else None for r in test], [r.text for r in test])
    assert (ip == 0).sum() >= 5
    vectors = emb.served(img, txt, ip, tp, [r.text for r in test])
    truth = labels_of([r.entity for r in test])
    with_cuts = adjusted_rand_score(truth, single_linkage(vectors, th["dedup"], pattern_codes(ip, tp), 0.5, 0.9))
    assert result["metrics"]["clippings"]["ari"] == pytest.approx(with_cuts)
    assert with_cuts != pytest.approx(adjusted_rand_score(truth, single_linkage(vectors, th["dedup"])))
    assert result["metrics"]["clippings"]["text_only"] == 0.5
    assert result["missing_modality"]["text_only_threshold"] == 0.5


def test_of_equal_cuts_the_middle_of_the_longest_run_is_chosen():
    grid = np.round(np.arange(0.50, 0.60, 0.01), 2)
    scores = np.array([0.9, 0.9, 0.5, 0.9, 0.9, 0.9, 0.9, 0.2, 0.9, 0.1])
    assert middle_of_best_run(grid, scores) == 0.55  # run 0.53-0.56, not the median of all tied cuts
    assert middle_of_best_run(grid, np.arange(10.0)) == 0.59  # one best cut


def test_a_partial_cut_is_the_highest_the_calibration_cannot_tell_from_the_best():
    """One standard error rule: from the best cut up, the highest whose score is within one
    standard error of the best's; below the best (where a caption alone bridges two stories)
    never; with no standard error (one calibration set), the middle of the best run as before."""
    grid = np.round(np.arange(0.50, 0.70, 0.01), 2)
    scores = np.array([0.60, 0.70, 0.78, 0.82, 0.83, 0.835, 0.833, 0.83, 0.826, 0.824, 0.81, 0.80, 0.79, 0.78, 0.77,
                       0.76, 0.75, 0.74, 0.73, 0.72])
    assert highest_within_one_se(grid, scores, np.full(len(grid), 0.012)) == 0.59  # 0.824 >= 0.835 - 0.012
    assert highest_within_one_se(grid, scores, np.full(len(grid), 0.003)) == 0.56  # 0.830 < 0.835 - 0.003
    assert highest_within_one_se(grid, scores, np.zeros(len(grid))) == middle_of_best_run(grid, scores) == 0.55
