"""The two shipped default models: present, small, verified, and better than string matching
on fresh held-out synthetic data (fonts and degradations never seen in training)."""

import pytest

from clippings.data.dataset import load_dataset
from clippings.data.synth import generate
from clippings.embedding import SHIPPED_MODELS_DIR, Manifest, OnnxEmbedder, shipped_models
from clippings.evaluate import evaluate_dedup, evaluate_link

MAX_BYTES = 25 * 1024 * 1024


def test_both_defaults_ship_within_size_and_were_verified():
    assert {"jp-firms", "news"} <= set(shipped_models())
    for name in ("jp-firms", "news"):
        folder = SHIPPED_MODELS_DIR / name
        assert sum(p.stat().st_size for p in folder.iterdir()) <= MAX_BYTES
        manifest = Manifest.load(folder)
        assert manifest.parity["fp32"]["min_cosine"] > 0.999
        assert 0.0 < manifest.thresholds["dedup"] < 1.0 and 0.0 <= manifest.thresholds["link"] < 1.0


def test_jp_firms_beats_string_matching_on_held_out_fonts(tmp_path):
    ds = load_dataset(generate("jp-firms", tmp_path / "jp", task="link", entities=150, seed=9001,
                               fonts="heldout", degradations="heldout", progress=False))
    m = evaluate_link(OnnxEmbedder("jp-firms"), ds)["metrics"]
    best_string = max(m["levenshtein"]["top1"], m["jaccard"]["top1"])
    assert m["clippings"]["top1"] > best_string + 0.05, m


@pytest.mark.parametrize("variant", ["fp16", "int8"])
def test_reduced_precision_variants_keep_the_ranking(variant, tmp_path):
    ds = load_dataset(generate("jp-firms", tmp_path / "jp", task="link", entities=60, seed=9002, progress=False))
    fp32 = evaluate_link(OnnxEmbedder("jp-firms"), ds)["metrics"]["clippings"]["top1"]
    reduced = evaluate_link(OnnxEmbedder("jp-firms", variant=variant), ds)["metrics"]["clippings"]["top1"]
    assert reduced >= fp32 - 0.05


def test_news_beats_string_matching_on_held_out_degradations(tmp_path):
    ds = load_dataset(generate("news", tmp_path / "news", task="dedup", entities=120, seed=9003,
                               degradations="heldout", progress=False))
    m = evaluate_dedup(OnnxEmbedder("news"), ds)["metrics"]
    best_string = max(m["levenshtein"]["ari"], m["jaccard"]["ari"])
    assert m["clippings"]["ari"] > best_string + 0.05, m
