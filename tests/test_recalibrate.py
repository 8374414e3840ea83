"""`clippings calibrate`: an exported model's decision tuned again on labelled sets, through
the real shipped graph, written as a new model folder the services and `clippings eval` load."""

import json
import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import adjusted_rand_score

from clippings.data.dataset import Dataset, Record, load_dataset
from clippings.data.synth.generate import generate
from clippings.evaluation.linking import DEDUP_GRID, dedup_curve, labels_of, plateau, single_linkage
from clippings.evaluation.scoring import (
    SERVING_WINDOW, TowerSet, sets_of_size, tune_partial_cuts, tune_serving_sets,
)
from clippings.evaluation.probability import fit_match_curve
from clippings.export.recalibrate import calibrated_version, recalibrate, tower_set, tuning_records
from clippings.errors import ConfigError, DatasetError
from clippings.runtime.manifest import Manifest
from clippings.runtime.onnx_model import OnnxEmbedder


def pair_at(base: np.ndarray, side: np.ndarray, cosine: float) -> np.ndarray:
    return cosine * base + np.sqrt(1 - cosine**2) * side


def text_set(dup: float, other: float, pairs: int, offset: int) -> TowerSet:
    """Text-only clippings: `pairs` duplicate pairs at cosine `dup`, and as many pairs of
    different entities at cosine `other`."""
    eye = np.eye(256, dtype=np.float32)
    vectors, entities = [], []
    for k in range(pairs):
        a, b = eye[offset + 4 * k], eye[offset + 4 * k + 1]
        vectors += [a, pair_at(a, b, dup)]
        entities += [f"{offset}d{k}", f"{offset}d{k}"]
        c, d = eye[offset + 4 * k + 2], eye[offset + 4 * k + 3]
        vectors += [c, pair_at(c, d, other)]
        entities += [f"{offset}x{k}", f"{offset}y{k}"]
    txt = np.asarray(vectors, np.float32)
    n = len(txt)
    return TowerSet(np.zeros_like(txt), txt, np.zeros(n, np.float32), np.ones(n, np.float32), ["val"] * n, entities)


def mean_ari(sets, cut):
    return np.mean([adjusted_rand_score(labels_of(s.entities), single_linkage(s.pooled(0.0), cut)) for s in sets])


def test_several_sets_share_one_cut_that_suits_both():
    """Set A's duplicates sit at 0.95 and its different pairs at 0.55; set B's at 0.80 and 0.30.
    Tuned on B alone, the cut lands where A's different pairs merge; tuned on both, it is
    right for both."""
    a, b = text_set(0.95, 0.55, 8, 0), text_set(0.80, 0.30, 8, 64)
    cut_b = tune_serving_sets([b])["dedup"]
    both = tune_serving_sets([a, b])
    assert cut_b <= 0.55 and mean_ari([a, b], cut_b) < 1.0
    assert mean_ari([a, b], both["dedup"]) == 1.0
    # the cut is the plateau maximum of the two sets' mean ARI curve
    curve = np.mean([dedup_curve(s.pooled(0.0), s.entities) for s in (a, b)], axis=0)
    smoothed = plateau(DEDUP_GRID, curve, SERVING_WINDOW)
    assert both["dedup"] == DEDUP_GRID[int(np.argmax(smoothed))]


def link_set(known: float, unknown: float, offset: int) -> TowerSet:
    """Text-only linking set: 4 corpus entities; 4 queries of them at cosine `known` to their
    own; 4 queries of entities not in the corpus whose nearest corpus record is at `unknown`."""
    eye = np.eye(256, dtype=np.float32)
    corpus = [eye[offset + k] for k in range(4)]
    queries = [pair_at(eye[offset + k], eye[offset + 8 + k], known) for k in range(4)]
    strangers = [pair_at(eye[offset + k], eye[offset + 16 + k], unknown) for k in range(4)]
    txt = np.asarray(corpus + queries + strangers, np.float32)
    entities = [f"{offset}e{k}" for k in range(4)] * 2 + [f"{offset}z{k}" for k in range(4)]
    n = len(txt)
    return TowerSet(np.zeros_like(txt), txt, np.zeros(n, np.float32), np.ones(n, np.float32),
                    ["corpus"] * 4 + ["query"] * 8, entities)


def test_several_linking_sets_share_one_no_match_cut():
    """A's queries sit at 0.90 from their firm and its strangers at 0.50; B's at 0.60 and 0.30.
    B alone is cut where A's strangers link to a wrong firm; together the cut links every
    query of both and none of their strangers."""
    from clippings.evaluation.scoring import link_decision_accuracy

    a, b = link_set(0.90, 0.50, 0), link_set(0.60, 0.30, 64)
    alone = tune_serving_sets([b])["link"]
    both = tune_serving_sets([a, b])
    assert link_decision_accuracy(a.pooled(0.0), a.splits, a.entities, alone) < 1.0
    for s in (a, b):
        assert link_decision_accuracy(s.pooled(0.0), s.splits, s.entities, both["link"]) == 1.0
    assert both["val_top1"] == 1.0


def test_linking_and_dedup_sets_are_not_mixed():
    link = text_set(0.95, 0.84, 2, 0)
    link = TowerSet(link.image_emb, link.text_emb, link.image_present, link.text_present,
                    ["corpus", "query"] * (len(link.splits) // 2), link.entities)
    with pytest.raises(ValueError, match="all be linking sets or all dedup sets"):
        tune_serving_sets([link, text_set(0.95, 0.84, 2, 64)])


@pytest.fixture(scope="module")
def feeds(tmp_path_factory):
    root = tmp_path_factory.mktemp("recalibrate")
    generate("news", root / "a", task="dedup", entities=30, seed=401, progress=False)
    generate("news", root / "b", task="dedup", entities=30, seed=402, progress=False)
    return root / "a", root / "b"


def test_calibrate_writes_a_model_the_services_load(feeds, tmp_path):
    out = tmp_path / "news-fitted"
    proc = subprocess.run([sys.executable, "-m", "clippings.cli", "calibrate", "news", "--data", str(feeds[0]),
                           "--data", str(feeds[1]), "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    base = OnnxEmbedder("news")
    m = Manifest.load(out)
    # What tune_serving_sets chooses on the two sets' val splits (their test splits held back)
    sets = [tower_set(base, [r for r in load_dataset(d).records if r.split == "val"]) for d in feeds]
    tuned = tune_serving_sets(sets)
    partial = tune_partial_cuts(sets, tuned["image_weight"], tuned["dedup"])
    assert m.image_weight == tuned["image_weight"]
    assert m.thresholds == {"link": tuned["link"], "dedup": tuned["dedup"], "text_only": partial["text_only"],
                            "image_only": partial["image_only"]}
    assert m.calibrated_on == [str(d) for d in feeds]
    # From the served graph's hash (for fp32 the version `clippings export` gave it), not from the manifest's.
    graph = hashlib.sha256((base.model_dir / base.manifest.files[base.variant]).read_bytes()).hexdigest()[:12]
    assert m.pooling == base.manifest.pooling  # kept unless --pooling says otherwise
    assert m.version == calibrated_version(graph, m.image_weight, tuned["link"], tuned["dedup"],
                                           thresholds=m.thresholds, pooling=m.pooling, variant=m.variant)
    assert m.variant == base.manifest.variant  # kept unless --variant says otherwise
    assert m.version != base.manifest.version  # the linker never mixes vectors pooled two ways
    assert m.match_probability == fit_match_curve(sets, m.image_weight, m.thresholds)
    assert m.match_probability["cut"] == "dedup" and m.match_probability["slope"] > 0
    for variant, name in m.files.items():  # the graphs are the shipped ones, byte for byte
        assert (out / name).read_bytes() == (base.model_dir / name).read_bytes(), variant
    assert m.version in proc.stdout and str(m.thresholds["dedup"]) in proc.stdout
    served = OnnxEmbedder(out)  # what the embedder service loads
    assert served.image_weight == tuned["image_weight"]
    # The same decision on the same graph is the same version, however often it is calibrated.
    again, _ = recalibrate(out, list(feeds), tmp_path / "again")
    assert (again.version, again.thresholds, again.match_probability) == (m.version, m.thresholds, m.match_probability)
    # --keep-decision: the shipped decision and version, only a curve fitted to it.
    kept, _ = recalibrate("news", [feeds[0]], tmp_path / "kept", keep_decision=True)
    shipped = base.manifest
    assert (kept.version, kept.image_weight, kept.thresholds) == (shipped.version, shipped.image_weight, shipped.thresholds)
    assert kept.match_probability == fit_match_curve(sets[:1], shipped.image_weight, shipped.thresholds)
    with pytest.raises(ConfigError, match="keep-decision"):
        recalibrate("news", [feeds[0]], tmp_path / "x", dedup_threshold=0.8, keep_decision=True)


def test_calibrate_refuses_what_it_cannot_tune_on(feeds, tmp_path):
    with pytest.raises(ConfigError, match="own folder"):
        recalibrate(OnnxEmbedder("news").model_dir, [feeds[0]], OnnxEmbedder("news").model_dir)
    only_test = Dataset(Path("designed"), [Record(id=f"t{i}", image=None, text="x", entity=str(i % 2), split="test")
                                           for i in range(4)])
    with pytest.raises(DatasetError, match="outside the test/train splits"):
        tuning_records(only_test)
    assert [r.id for r in tuning_records(only_test, ["test"])] == ["t0", "t1", "t2", "t3"]
    with pytest.raises(DatasetError, match=r"no records in split\(s\) train, val"):
        tuning_records(only_test, ["train", "val"])
    unlabelled = Dataset(Path("designed"), [Record(id=f"v{i}", image=None, text="x", entity=None, split="val")
                                            for i in range(4)]
                         + [Record(id="t", image=None, text="x", entity="a", split="test")])
    with pytest.raises(DatasetError, match="entity labels"):
        tuning_records(unlabelled)
    proc = subprocess.run([sys.executable, "-m", "clippings.cli", "calibrate", "news", "--out", str(tmp_path / "x")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--data" in proc.stderr


def test_calibrate_tunes_for_the_set_size_asked(feeds, tmp_path, caplog):
    out = tmp_path / "news-30"
    proc = subprocess.run([sys.executable, "-m", "clippings.cli", "calibrate", "news", "--data", str(feeds[0]),
                           "--data", str(feeds[1]), "--splits", "val,test", "--set-size", "30", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = Manifest.load(out)
    base = OnnxEmbedder("news")
    sets = [tower_set(base, [r for r in load_dataset(d).records if r.split in ("val", "test")]) for d in feeds]
    assert min(len(s.entities) for s in sets) > 30
    drawn = sets_of_size(sets, 30)
    tuned = tune_serving_sets(drawn)
    partial = tune_partial_cuts(drawn, tuned["image_weight"], tuned["dedup"])
    assert (m.calibrated_set_size, m.image_weight) == (30, tuned["image_weight"])
    assert m.thresholds == {"link": tuned["link"], "dedup": tuned["dedup"], "text_only": partial["text_only"],
                            "image_only": partial["image_only"]}
    assert m.match_probability == fit_match_curve(sets, m.image_weight, m.thresholds)  # on the whole sets
    assert "set_size=30" in proc.stdout
    # Sets no larger than the default size are tuned as given, with a warning, and say so.
    with caplog.at_level("WARNING", logger="clippings.export.recalibrate"):
        small, _ = recalibrate("news", list(feeds), tmp_path / "small")
    assert "no more than --set-size 700: tuned as they are" in caplog.text
    assert small.calibrated_set_size is None and "calibrated_set_size" not in (tmp_path / "small" / "manifest.json").read_text()
    as_given, _ = recalibrate("news", list(feeds), tmp_path / "as-given", splits=["val", "test"], set_size=0)
    whole = tune_serving_sets(sets)
    assert (as_given.calibrated_set_size, as_given.thresholds["dedup"]) == (None, whole["dedup"])
    with pytest.raises(ConfigError, match="--set-size -1"):
        recalibrate("news", list(feeds), tmp_path / "x", set_size=-1)
    with pytest.raises(ConfigError, match="keep-decision"):
        recalibrate("news", list(feeds), tmp_path / "x", set_size=30, keep_decision=True)


def test_calibrate_serves_the_variant_it_tuned_on(feeds, tmp_path):
    """--variant: the decision is tuned on that graph's vectors, the manifest serves it (the
    embedder and `clippings eval` load it unless told otherwise), and the version differs from
    the same decision on another graph's vectors, which a linker must not mix with it."""
    shipped = Manifest.load(OnnxEmbedder("news").model_dir)
    other = "int8" if shipped.variant == "fp32" else "fp32"
    out = tmp_path / f"news-{other}"
    m, _ = recalibrate("news", [feeds[0]], out, variant=other)
    graph = OnnxEmbedder("news", other)
    sets = [tower_set(graph, [r for r in load_dataset(feeds[0]).records if r.split == "val"])]
    tuned = tune_serving_sets(sets)
    assert (m.variant, m.image_weight, m.thresholds["dedup"]) == (other, tuned["image_weight"], tuned["dedup"])
    assert ('"variant"' in (out / "manifest.json").read_text()) == (other != "fp32")
    served = OnnxEmbedder(out)  # what the embedder loads with CLIPPINGS_MODEL_VARIANT unset
    records = load_dataset(feeds[0]).records[:16]
    images = [None if r.image is None else Image.open(r.image) for r in records]
    texts = [r.text for r in records]
    assert served.variant == other
    for got, want in zip(served.embed_towers(images, texts), graph.embed_towers(images, texts)):
        assert np.array_equal(got, want)
    graph_hash = hashlib.sha256((graph.model_dir / graph.manifest.files[other]).read_bytes()).hexdigest()[:12]
    key = (graph_hash, m.image_weight, m.thresholds["link"], m.thresholds["dedup"])
    assert m.version == calibrated_version(*key, thresholds=m.thresholds, pooling=m.pooling, variant=other)
    assert m.version != calibrated_version(*key, thresholds=m.thresholds, pooling=m.pooling,
                                           variant="int8" if other == "fp32" else "fp32")
    proc = subprocess.run([sys.executable, "-m", "clippings.cli", "eval", str(feeds[0]), "--model", str(out), "--json"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["model"]["variant"] == other
    with pytest.raises(ConfigError, match="keep-decision"):
        recalibrate("news", [feeds[0]], tmp_path / "x", variant=other, keep_decision=True)


def test_an_int8_graph_quantised_anew_is_served_under_a_version_of_its_own(feeds, tmp_path):
    """The same fp32 graph and the same decision, but another int8 file (here the same graph
    saved with another doc string; in 2026-12 the news int8 graph quantised anew with its bag
    table in float16): a linker must not mix the two graphs' vectors under one version."""
    import shutil

    import onnx

    base = OnnxEmbedder("news").model_dir
    served = Manifest.load(base)
    assert served.variant == "int8"
    again = tmp_path / "requantised"
    shutil.copytree(base, again)
    graph = onnx.load(str(again / served.files["int8"]))
    graph.doc_string = "quantised anew"
    onnx.save(graph, str(again / served.files["int8"]))
    first, _ = recalibrate(base, [feeds[0]], tmp_path / "a", variant="int8")
    second, _ = recalibrate(again, [feeds[0]], tmp_path / "b", variant="int8")
    assert (first.image_weight, first.thresholds) == (second.image_weight, second.thresholds)
    assert first.version != second.version
