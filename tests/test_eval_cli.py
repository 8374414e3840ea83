"""`clippings eval` as a user meets it: it names the model or refuses to guess, scores the
model's decision where the services make it (the manifest's thresholds), and draws the score
distributions next to its JSON. Real shipped models, small generated sets."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import adjusted_rand_score

from clippings.data.dataset import load_dataset
from clippings.data.synth.generate import generate
from clippings.runtime.onnx_model import OnnxEmbedder, pool
from clippings.evaluation.linking import labels_of, single_linkage
from clippings.runtime.modality import pattern_codes
from clippings.runtime.preprocess import load_image
from dataset_copies import broken_copy


def clippings(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "clippings.cli", *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def news_dedup(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval-cli") / "news-dedup"
    generate("news", root, task="dedup", entities=24, seed=301, progress=False)
    return root


def test_eval_refuses_to_guess_the_model(news_dedup):
    proc = clippings("eval", str(news_dedup))
    assert proc.returncode == 2 and "--model" in proc.stderr and "jp-firms" in proc.stderr


def test_default_scores_the_decision_the_services_make(news_dedup, tmp_path):
    out = tmp_path / "report"
    proc = clippings("eval", str(news_dedup), "--model", "news", "--json", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert json.loads((out / "eval.json").read_text()) == result
    served = result["metrics"]["clippings"]
    emb = OnnxEmbedder("news")
    assert served["threshold"] == emb.manifest.thresholds["dedup"] and served["image_weight"] == emb.image_weight
    # The same ARI the linker's clusters would give: single linkage at the manifest's cut.
    test = load_dataset(news_dedup).split("test")
    img, txt, ip, tp = emb.embed_towers([load_image(r.image) if r.image else None for r in test], [r.text for r in test])
    th = emb.manifest.thresholds
    clusters = single_linkage(pool(img, txt, ip, tp, emb.image_weight, emb.manifest.pooling), th["dedup"],
                              pattern_codes(ip, tp), th.get("text_only"), th.get("image_only"))
    assert served["ari"] == pytest.approx(adjusted_rand_score(labels_of([r.entity for r in test]), clusters))
    assert result["metrics"]["embedding_only"]["ari"] == served["ari"]  # the decision is the cosine alone
    # Its errors are those clusters': pairs of one story left apart, counted one by one.
    truth = labels_of([r.entity for r in test])
    apart = sum(clusters[i] != clusters[j] for i in range(len(test)) for j in range(i) if truth[i] == truth[j])
    assert result["errors"]["missed_pairs"] == apart
    # The shipped cut is tuned for sets of about 700 clippings; this one is far smaller, and eval says so.
    assert served["calibrated_set_size"] == emb.manifest.calibrated_set_size == 700
    assert f"tuned for sets of 700 (clippings calibrate --set-size {len(test)}" in proc.stderr
    with Image.open(out / "scores.png") as im:
        assert im.size[0] >= 400

    tuned = json.loads(clippings("eval", str(news_dedup), "--model", "news", "--json", "--thresholds", "tuned").stdout)
    assert tuned["thresholds"] == "tuned" and "val_ari" in tuned["metrics"]["clippings"]
    assert tuned["metrics"]["levenshtein"] == result["metrics"]["levenshtein"]  # baselines: always tuned on val


def test_link_decision_at_the_manifest_threshold(tmp_path):
    root = tmp_path / "jp-link"
    generate("jp-firms", root, task="link", entities=20, seed=302, progress=False)
    result = json.loads(clippings("eval", str(root), "--model", "jp-firms", "--json").stdout)
    c = result["metrics"]["clippings"]
    emb = OnnxEmbedder("jp-firms")
    cut = emb.manifest.thresholds["link"]
    assert c["threshold"] == cut and c["thresholds"] == "manifest"
    assert result["metrics"]["embedding_only"]["top1"] == c["top1"]
    # Recomputed by brute force: a query is decided right when it links (cosine >= cut) to its
    # own entity, or links to nothing and its entity is not in the corpus.
    records = load_dataset(root).split("corpus", "query")
    img, txt, ip, tp = emb.embed_towers([load_image(r.image) if r.image else None for r in records],
                                        [r.text for r in records])
    v = pool(img, txt, ip, tp, emb.image_weight)
    corpus = [i for i, r in enumerate(records) if r.split == "corpus"]
    queries = [i for i, r in enumerate(records) if r.split == "query"]
    sims = v[queries] @ v[corpus].T
    known = {records[i].entity for i in corpus}
    right = []
    for qi, row in zip(queries, sims):
        best = corpus[int(np.argmax(row))]
        linked = row.max() >= cut
        right.append(records[best].entity == records[qi].entity if linked else records[qi].entity not in known)
    assert c["decision_accuracy"] == pytest.approx(np.mean(right))


@pytest.mark.parametrize("command", ["eval", "calibrate"])
def test_a_corrupt_image_is_reported_with_its_file_and_line(news_dedup, tmp_path, command):
    bad = tmp_path / "bad"
    line, name = broken_copy(news_dedup, bad, "val")
    args = {"eval": ["eval", str(bad), "--model", "news"],
            "calibrate": ["calibrate", "news", "--data", str(bad), "--out", str(tmp_path / "m")]}[command]
    proc = clippings(*args)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"{bad / 'records.jsonl'}:{line}" in proc.stderr and name in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "m").exists()
