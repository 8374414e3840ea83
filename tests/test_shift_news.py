"""The news shift set (`clippings shift news`): a tiny real build (real fonts, real
tesseract, nothing mocked), checked for the dedup format, determinism, whole entities per
split, hard negatives, tesseract's text, and independence from the training generator."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from rapidfuzz.distance import Levenshtein

from clippings.cli import main
from clippings.data.dataset import load_dataset
from clippings.data.shift import news_words, ocr
from clippings.data.shift.build import build
from clippings.data.shift.news import plan
from clippings.data.shift.news_type import FAMILIES
from clippings.errors import ConfigError
from caption_scans import PRINTED, cer, scan_caption

ROOT = Path(__file__).resolve().parent.parent
SHIFT = ROOT / "clippings" / "data" / "shift"
ENTITIES, SEED = 10, 3


@pytest.fixture(scope="module")
def news(tmp_path_factory) -> Path:
    return build("news", tmp_path_factory.mktemp("news"), entities=ENTITIES, seed=SEED, progress=False)


@pytest.fixture(scope="module")
def big_plan():
    return plan(400, 7)  # planning draws everything but renders nothing: cheap


def _meta(path: Path) -> dict[str, dict]:
    return {m["id"]: m for m in map(json.loads, (path / "meta.jsonl").open(encoding="utf-8"))}


def test_loads_as_a_dedup_set_with_whole_entities_per_split(news):
    ds = load_dataset(news)
    assert ds.task == "dedup"
    assert {r.split for r in ds.records} == {"val", "test"}
    split_of = defaultdict(set)
    for r in ds.records:
        split_of[r.entity].add(r.split)
        assert r.image is not None or r.text
        assert r.image is None or r.image.suffix == ".jpg"
    assert len(split_of) == ENTITIES and all(len(s) == 1 for s in split_of.values())
    info = json.loads((news / "shift.json").read_text(encoding="utf-8"))
    assert info["task"] == "dedup" and info["kind"] == "news" and info["ocr"].startswith("tesseract")
    assert info["counts"] == {s: len(ds.split(s)) for s in ("val", "test")}
    assert len(_meta(news)) == len(ds.records)


def test_same_seed_gives_byte_identical_files_whatever_the_workers(news, tmp_path):
    again = build("news", tmp_path / "again", entities=ENTITIES, seed=SEED, workers=2, progress=False)
    for name in ("records.jsonl", "meta.jsonl", "shift.json"):
        assert (again / name).read_bytes() == (news / name).read_bytes(), name
    files = sorted(p.relative_to(news) for p in news.rglob("*.jpg"))
    assert files == sorted(p.relative_to(again) for p in again.rglob("*.jpg"))
    assert any(f.parts[0] == "images" for f in files) and any(f.parts[0] == "captions" for f in files)
    assert all((news / f).read_bytes() == (again / f).read_bytes() for f in files)
    other = plan(ENTITIES, SEED + 1)
    assert [p.story.sentences for p in other] != [p.story.sentences for p in plan(ENTITIES, SEED)]


def test_record_text_is_tesseract_reading_the_saved_caption_scan(news):
    ds = load_dataset(news)
    meta = _meta(news)
    captioned = [r for r in ds.records if meta[r.id]["truth"]]
    assert captioned
    # Read again from the file on disk: the same text, so it is the engine's output of that scan.
    for r in captioned[:3]:
        assert ocr.read_block(news / meta[r.id]["caption_scan"], meta[r.id]["scan_scale"]) == r.text
    cers = [Levenshtein.distance(r.text, meta[r.id]["truth"]) / len(meta[r.id]["truth"]) for r in captioned]
    assert np.median(cers) < 0.15, "tesseract should read most captions well"
    assert any(c > 0 for c in cers), "every text equals the printed truth: not an OCR engine's output"


def test_damage_makes_tesseract_err_where_a_clean_scan_reads_right(tmp_path):
    clean_path, clean_scale, _ = scan_caption(tmp_path, 0.0, 1)
    damaged_path, damaged_scale, effects = scan_caption(tmp_path, 1.0, 4)
    clean, damaged = ocr.read_block(clean_path, clean_scale), ocr.read_block(damaged_path, damaged_scale)
    assert cer(clean) < 0.03, clean
    assert len(effects) > 1 and damaged != PRINTED.text and cer(damaged) > cer(clean)
    assert cer(damaged) < 0.8, "still a reading of the caption, not noise"


def test_cluster_sizes_splits_and_missing_modalities(big_plan):
    per_entity = defaultdict(list)
    for p in big_plan:
        per_entity[p.entity].append(p)
        assert p.photo is not None or p.printed is not None
    sizes = [len(v) for v in per_entity.values()]
    assert 0.35 < sizes.count(1) / len(sizes) < 0.55 and max(sizes) >= 5
    entity_splits = [ps[0].split for ps in per_entity.values()]
    assert abs(entity_splits.count("val") - entity_splits.count("test")) <= 0.1 * len(entity_splits)
    events = defaultdict(set)
    for p in big_plan:
        events[p.story.event].add(p.split)
    assert all(len(s) == 1 for s in events.values()), "an event's stories (hard negatives) stay in one split"
    assert 0.01 < sum(p.photo is None for p in big_plan) / len(big_plan) < 0.07
    assert all(p.printed is not None for p in big_plan), "every reprint has a caption (text on every record)"


def test_captions_are_long_and_reprints_vary(big_plan):
    stories = {p.story.index: p.story for p in big_plan}.values()
    lengths = [len(" ".join(s.sentences)) for s in stories]
    assert np.median(lengths) > 220 and np.mean([150 <= n <= 600 for n in lengths]) > 0.95
    assert all(2 <= len(s.sentences) <= 5 for s in stories)
    texts = [p.printed.text for p in big_plan if p.printed]
    assert any(" (AP) — " in t for t in texts) and any("Staff photo" in t for t in texts)
    ops = {op.split("_to_")[0] for p in big_plan if p.printed for op in p.printed.ops}
    assert {"cut", "reordered", "shortened", "rephrased", "no_credit", "no_dateline", "dated_dateline", "kicker"} <= ops


def test_hard_negatives_share_sentences_scenes_and_sitters(big_plan):
    stories = {p.story.index: p.story for p in big_plan}
    by_sentence = defaultdict(set)
    for s in stories.values():
        for sent in s.sentences[1:]:
            by_sentence[sent].add(s.index)
    shared = {i for group in by_sentence.values() if len(group) > 1 for i in group}
    assert len(shared) > 0.3 * len(stories), "different stories share whole sentences"
    by_location = defaultdict(set)
    for p in big_plan:
        if p.photo is not None:
            by_location[(p.photo.location, p.photo.location_seed)].add(p.story.index)
    same_scene = [g for g in by_location.values() if len(g) > 1]
    assert len(same_scene) > 0.05 * len(stories), "photos of one place across different stories"
    shots = {p.story.shot for p in big_plan}
    assert len(shots) == len(stories), "yet every story has its own frame"
    sitters = defaultdict(set)
    for s in stories.values():
        if s.topic == "portrait":
            sitters[s.official.id].add(s.index)
    assert any(len(v) > 1 for v in sitters.values()), "one official's portrait with different stories"


def test_nothing_comes_from_the_training_generator():
    # jp-firms' names.py reads the generator's grammar to exclude its names; the news path must not.
    news_path = sorted(SHIFT.glob("news*.py")) + [SHIFT / n for n in ("ocr.py", "ppocr.py", "build.py", "cli.py")]
    assert len(news_path) >= 12
    for path in news_path:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.startswith("clippings.data.synth") for n in names), f"{path.name} imports {names}"
    code = ("import sys; from clippings.data.shift.build import build; from clippings.data.shift.news import plan, "
            "make; plan(6, 1); "
            "print(any(m.startswith('clippings.data.synth') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "False"


def test_vocabulary_and_fonts_are_not_the_generators():
    from clippings.data.synth import captions
    from clippings.data.synth.fonts import HELDOUT_FONTS, TRAIN_FONTS

    assert not set(news_words.SURNAMES) & set(captions.LAST_NAMES)
    assert not {town for _, town in news_words.TOWNS} & {city for city, _ in captions.PLACES}
    assert not set(news_words.FIRST_NAMES) & set(captions.MALE_FIRST_NAMES + captions.FEMALE_FIRST_NAMES)
    generator_packages = {f.package for f in TRAIN_FONTS + HELDOUT_FONTS}
    generator_files = {f.file for f in TRAIN_FONTS + HELDOUT_FONTS}
    for fam in FAMILIES:
        assert fam.package not in generator_packages
        assert not {Path(p).name for p in (fam.regular, fam.bold, fam.italic)} & generator_files


def test_bad_arguments_are_refused_before_anything_is_written(tmp_path, capsys):
    with pytest.raises(ConfigError, match="--entities"):
        build("news", tmp_path / "a", entities=2, progress=False)
    with pytest.raises(ConfigError, match="--instances"):
        build("news", tmp_path / "b", entities=10, instances=0, progress=False)
    with pytest.raises(ConfigError, match="--queries"):
        build("news", tmp_path / "c", entities=10, queries=2, progress=False)
    with pytest.raises(ConfigError, match="--instances"):
        build("jp-firms", tmp_path / "d", entities=10, instances=3, progress=False)
    assert not any(tmp_path.iterdir())
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    assert main(["shift", "news", str(tmp_path / "full"), "--entities", "6", "--no-progress"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["shift", "news", str(tmp_path / "e"), "--entities", "1", "--no-progress"]) == 2
    assert "--entities" in capsys.readouterr().err
