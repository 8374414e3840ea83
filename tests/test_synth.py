"""`clippings synth`: small real generations of every kind and task, checked as the
trainer and the evaluator will read them."""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from clippings.data.dataset import load_dataset
from clippings.data.synth.cli import register
from clippings.data.synth.generate import generate
from clippings.data.synth.fonts import HELDOUT_FONTS, TRAIN_FONTS, FontFace, check_fonts, missing_glyphs
from clippings.data.synth.names import firm_names, name_characters
from clippings.data.synth.ocr import char_error_rate, ocr_text
from clippings.errors import ConfigError

ENTITIES = 12
TRAIN_INSTANCES = 3


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[tuple[str, str], Path]:
    """One small data set per (kind, task)."""
    out = {}
    for kind in ("jp-firms", "news"):
        for task in ("train", "link", "dedup"):
            path = tmp_path_factory.mktemp(f"{kind}-{task}")
            instances = TRAIN_INSTANCES if task == "train" else None
            out[kind, task] = generate(kind, path, task=task, entities=ENTITIES, instances=instances, seed=5,
                                       progress=False)
    return out


def _meta(path: Path) -> dict[str, dict]:
    return {m["id"]: m for m in map(json.loads, (path / "meta.jsonl").open(encoding="utf-8"))}


def _slots_by_entity(slots) -> dict[int, list]:
    groups = defaultdict(list)
    for s in slots:
        groups[s.entity].append(s)
    return groups


def _by_entity(records) -> dict[str, list]:
    groups = defaultdict(list)
    for r in records:
        groups[r.entity].append(r)
    return groups


@pytest.mark.parametrize("kind", ["jp-firms", "news"])
def test_train_task_gives_every_entity_m_instances(made, kind):
    ds = load_dataset(made[kind, "train"])
    assert {r.split for r in ds.records} == {"train"}
    groups = _by_entity(ds.records)
    assert len(groups) == ENTITIES and all(len(g) == TRAIN_INSTANCES for g in groups.values())
    summary = json.loads((made[kind, "train"] / "synth.json").read_text())
    assert summary["records"] == len(ds.records) == ENTITIES * TRAIN_INSTANCES


@pytest.mark.parametrize("kind", ["jp-firms", "news"])
def test_link_task_has_one_corpus_record_per_entity_and_unlisted_queries(made, kind):
    ds = load_dataset(made[kind, "link"])
    assert ds.task == "link" and {r.split for r in ds.records} == {"corpus", "query"}
    corpus = Counter(r.entity for r in ds.split("corpus"))
    queries = Counter(r.entity for r in ds.split("query"))
    assert len(corpus) == ENTITIES and set(corpus.values()) == {1}
    assert set(queries.values()) <= {1, 2} and set(corpus) <= set(queries)
    unlisted = set(queries) - set(corpus)
    assert len(unlisted) == 1  # round(12 * 0.1 / 0.9): about 10% of queries have no corpus entity


@pytest.mark.parametrize("kind,largest", [("jp-firms", 5), ("news", 6)])
def test_dedup_task_has_clusters_split_by_entity(made, kind, largest):
    ds = load_dataset(made[kind, "dedup"])
    assert ds.task == "dedup" and {r.split for r in ds.records} == {"val", "test"}
    val = {r.entity for r in ds.split("val")}
    test = {r.entity for r in ds.split("test")}
    assert not val & test and len(val) == len(test) == ENTITIES // 2
    sizes = [len(g) for g in _by_entity(ds.records).values()]
    assert min(sizes) >= 1 and max(sizes) <= largest and 1 in sizes and max(sizes) > 1


def test_jp_crops_are_grayscale_pngs_of_printed_names(made):
    ds = load_dataset(made["jp-firms", "train"])
    meta = _meta(made["jp-firms", "train"])
    for r in ds.records:
        with Image.open(r.image) as im:
            assert im.format == "PNG" and im.mode == "L"
            w, h = im.size
        m = meta[r.id]
        across = w if m["vertical"] else h  # the line's thickness: one character plus margins
        assert 24 <= m["char_px"] <= 40 and 0.6 * m["char_px"] <= across <= 1.3 * m["char_px"] + 30
        assert (h > w) == m["vertical"] or len(m["truth"]) <= 2
    assert any(m["vertical"] for m in meta.values()) and not all(m["vertical"] for m in meta.values())
    # the OCR text is a noisy reading of the printed name, not of another firm's
    close = [char_error_rate(meta[r.id]["truth"], r.text) < 0.6 for r in ds.records if r.text]
    assert np.mean(close) > 0.9


def test_news_clippings_are_small_rgb_jpegs(made):
    ds = load_dataset(made["news", "dedup"])
    for r in ds.records:
        with Image.open(r.image) as im:
            assert im.format == "JPEG" and im.mode == "RGB"
            # 96-128 px on the short side before a slight rotation adds a paper border
            assert 96 <= min(im.size) <= 128 + 20 and max(im.size) <= 260
        assert r.image.stat().st_size < 20_000
    meta = _meta(made["news", "dedup"])
    for entity, group in _by_entity(ds.records).items():
        assert len({meta[r.id]["scene_seed"] for r in group}) == 1  # duplicates reprint one photo


@pytest.mark.parametrize("kind,task,workers", [("jp-firms", "link", 2), ("news", "dedup", 1)])
def test_same_seed_gives_identical_output_with_any_workers(made, tmp_path, kind, task, workers):
    again = generate(kind, tmp_path / "again", task=task, entities=ENTITIES, seed=5, workers=workers, progress=False)
    first = made[kind, task]
    assert (again / "records.jsonl").read_bytes() == (first / "records.jsonl").read_bytes()
    assert (again / "meta.jsonl").read_bytes() == (first / "meta.jsonl").read_bytes()
    for r in load_dataset(first).records:
        assert (again / "images" / r.image.name).read_bytes() == r.image.read_bytes()


def test_other_seeds_and_tasks_draw_other_entities(made):
    for kind, key in (("jp-firms", "truth"), ("news", "caption")):
        train = {m[key] for m in _meta(made[kind, "train"]).values()} - {""}
        link = {m[key] for m in _meta(made[kind, "link"]).values()} - {""}
        assert len(train & link) <= 2, kind  # same seed, other task: other entities
    # and at scale: train and test sets drawn with different seeds share few firms
    a = {f.text for f in firm_names(np.random.default_rng([1, 1, 1, 0]), 2500)}
    b = {f.text for f in firm_names(np.random.default_rng([3, 1, 2, 0]), 1100)}
    assert len(a) == 2500 and len(a & b) / len(b) < 0.05


def test_train_and_heldout_fonts_are_disjoint_installed_and_complete():
    train = {(f.file, f.index) for f in TRAIN_FONTS}
    heldout = {(f.file, f.index) for f in HELDOUT_FONTS}
    assert not train & heldout
    assert not {f.name for f in TRAIN_FONTS} & {f.name for f in HELDOUT_FONTS}
    check_fonts(TRAIN_FONTS + HELDOUT_FONTS)
    chars = name_characters()
    for face in TRAIN_FONTS + HELDOUT_FONTS:
        if face.script == "ja":
            assert missing_glyphs(face, chars) == "", face.name
    assert {f.script for f in HELDOUT_FONTS} == {"ja", "latin"}


def test_heldout_generation_uses_only_heldout_fonts(tmp_path):
    path = generate("jp-firms", tmp_path, task="train", entities=ENTITIES, instances=2, seed=9, fonts="heldout",
                    degradations="heldout", progress=False)
    used = {m["font"] for m in _meta(path).values()}
    assert used <= {f.name for f in HELDOUT_FONTS}
    assert {m["degradations"] for m in _meta(path).values()} == {"heldout"}


def test_missing_fonts_name_the_apt_packages():
    ghost = FontFace("Ghost Mincho", "ghost-mincho.ttf", 0, "fonts-ghost-mincho", "ja")
    with pytest.raises(ConfigError, match="apt-get install fonts-ghost-mincho"):
        check_fonts((ghost,))


def test_ocr_noise_rate_follows_the_level():
    rng = np.random.default_rng(0)
    names = [f.text for f in firm_names(rng, 400) if f.script == "ja"]
    assert [ocr_text(n, rng, 0.0) for n in names] == names  # level 0: a perfect reading

    def cer(level: float, vertical: bool) -> float:
        return float(np.mean([char_error_rate(n, ocr_text(n, rng, level, vertical)) for n in names]))

    light, heavy, heavy_vertical = cer(0.2, False), cer(0.8, False), cer(0.8, True)
    assert 0.02 < light < 0.10
    assert 0.12 < heavy < 0.35
    assert heavy_vertical > heavy * 1.2  # vertical crops read worse, as real OCR does


def test_queries_are_noisier_than_the_corpus_and_some_texts_are_empty(tmp_path):
    from clippings.data.synth.jp import JpFirms
    from clippings.data.synth.tasks import task_layout

    gen = JpFirms("train", "train")
    n, slots = task_layout("link", 1000, 2, np.random.default_rng(1))
    firms = gen.entities(np.random.default_rng(2), n)
    plans = []
    for e, group in _slots_by_entity(slots).items():
        plans += gen.plan(f"e{e}", firms[e], group, np.random.default_rng([3, e]), firms, (4, e))
    corpus = [p.ocr_level for p in plans if p.split == "corpus"]
    query = [p.ocr_level for p in plans if p.split == "query"]
    assert np.mean(query) > 2 * np.mean(corpus)
    assert 0.015 < np.mean([p.empty_text for p in plans]) < 0.05
    vertical_ja = np.mean([p.layout.vertical for p in plans if not p.truth.isascii()])
    assert 0.35 < vertical_ja < 0.55
    assert 0.10 < np.mean([p.truth.isascii() for p in plans]) < 0.20  # romanised firm names


def test_string_matching_is_genuinely_hard_on_a_link_task():
    """Levenshtein top-1 on the text of a 400-firm link task sits in the paper's regime
    (its real data: 0.731), far from both chance and a solved task."""
    from clippings.evaluation.baselines import levenshtein_similarity
    from clippings.data.synth.jp import JpFirms
    from clippings.data.synth.tasks import task_layout

    gen = JpFirms("train", "train")
    n, slots = task_layout("link", 400, 2, np.random.default_rng(11))
    firms = gen.entities(np.random.default_rng(12), n)
    corpus, queries = [], []
    for e, group in _slots_by_entity(slots).items():
        for p in gen.plan(f"e{e}", firms[e], group, np.random.default_rng([13, e]), firms, (14, e)):
            rng = np.random.default_rng(p.seed)
            text = "" if p.empty_text else ocr_text(p.truth, rng, p.ocr_level, p.layout.vertical)
            (corpus if p.split == "corpus" else queries).append((p.entity_id, text))
    listed = {e for e, _ in corpus}
    queries = [(e, t) for e, t in queries if e in listed]
    best = levenshtein_similarity([t for _, t in queries], [t for _, t in corpus]).argmax(axis=1)
    top1 = np.mean([corpus[j][0] == e for j, (e, _) in zip(best, queries)])
    assert 0.55 < top1 < 0.85


def test_news_stories_need_both_modalities():
    """Some different photos carry near-identical captions, some stories are look-alike
    portraits, and some reprints carry another paper's rewrite."""
    from rapidfuzz.distance import Levenshtein

    from clippings.data.synth.news import News
    from clippings.data.synth.tasks import Slot

    gen = News("train")
    stories = gen.entities(np.random.default_rng(0), 400)
    siblings = [s for s in stories if s.sibling_of is not None]
    assert 0.1 < len(siblings) / len(stories) < 0.35
    for s in siblings:
        base = stories[s.sibling_of]
        assert s.scene.seed != base.scene.seed
        assert Levenshtein.normalized_similarity(s.caption, base.caption) > 0.8
    assert 0.1 < np.mean([s.scene.kind == "portrait" for s in stories]) < 0.3
    assert len({s.caption for s in stories if s.sibling_of is None}) == len([s for s in stories if s.sibling_of is None])
    plans = [p for i, s in enumerate(stories)
             for p in gen.plan(f"e{i}", s, [Slot(i, "dup", "test", k) for k in range(4)],
                               np.random.default_rng(i), stories, (i,))]
    variants = Counter(p.variant for p in plans)
    assert set(variants) == {"wire", "edit", "truncated", "rewrite", "none"}
    assert 0.02 < variants["none"] / len(plans) < 0.1
    assert 0.07 < variants["rewrite"] / len(plans) < 0.2


def test_bad_arguments_give_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown kind 'maps'"):
        generate("maps", tmp_path / "a", entities=3)
    with pytest.raises(ConfigError, match="unknown task 'rank'"):
        generate("news", tmp_path / "a", task="rank", entities=3)
    with pytest.raises(ConfigError, match="--entities must be a positive integer, got 0"):
        generate("jp-firms", tmp_path / "a", entities=0)
    with pytest.raises(ConfigError, match="--instances must be a positive integer"):
        generate("jp-firms", tmp_path / "a", entities=3, instances=-1)
    with pytest.raises(ConfigError, match="--seed must be a non-negative integer"):
        generate("jp-firms", tmp_path / "a", entities=3, seed=-4)
    with pytest.raises(ConfigError, match="--fonts applies to jp-firms only"):
        generate("news", tmp_path / "a", entities=3, fonts="heldout")
    with pytest.raises(ConfigError, match="unknown font set 'comic'"):
        generate("jp-firms", tmp_path / "a", entities=3, fonts="comic")
    assert not (tmp_path / "a").exists()  # nothing is written on bad arguments


def test_non_empty_out_dir_needs_overwrite(tmp_path):
    generate("jp-firms", tmp_path, task="train", entities=2, instances=1, seed=1, progress=False)
    (tmp_path / "NOTES.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="is not empty"):
        generate("jp-firms", tmp_path, task="train", entities=2, instances=1, seed=2, progress=False)
    generate("jp-firms", tmp_path, task="train", entities=3, instances=1, seed=2, overwrite=True, progress=False)
    ds = load_dataset(tmp_path)
    assert len(ds.records) == 3 and len(list((tmp_path / "images").iterdir())) == 3
    assert (tmp_path / "NOTES.txt").read_text() == "keep me"  # only the data set is replaced


def test_cli(tmp_path, capsys):
    # The synth subcommand alone: the full `clippings` parser imports every command's module.
    parser = argparse.ArgumentParser(prog="clippings")
    register(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "cli"
    args = parser.parse_args(["synth", "jp-firms", str(out), "--task", "link", "--entities", "3", "--seed", "4",
                              "--fonts", "all", "--degradations", "heldout"])
    assert args.func(args) == 0
    assert load_dataset(out).task == "link"
    assert json.loads((out / "synth.json").read_text())["fonts"] == "all"
    args = parser.parse_args(["synth", "news", str(out), "--entities", "3"])
    with pytest.raises(ConfigError, match="is not empty"):
        args.func(args)
    with pytest.raises(SystemExit):
        parser.parse_args(["synth", "jp-firms", str(tmp_path / "x"), "--entities", "3", "--task", "cluster"])
    assert "invalid choice: 'cluster'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["synth", "news", str(tmp_path / "x")])
    assert "--entities" in capsys.readouterr().err


def test_tesseract_text_is_the_real_engine_s_reading_of_the_same_crops(tmp_path):
    """--ocr tesseract changes the text only: the same crops, each read by tesseract as a real
    feed's OCR would read it."""
    from clippings.data.shift.ocr import read

    sim = load_dataset(generate("jp-firms", tmp_path / "sim", task="link", entities=4, seed=77, progress=False))
    real = load_dataset(generate("jp-firms", tmp_path / "real", task="link", entities=4, seed=77,
                                 ocr="tesseract", progress=False))
    meta = {m["id"]: m for m in map(json.loads, (tmp_path / "real" / "meta.jsonl").read_text().splitlines())}
    for a, b in zip(sim.records, real.records):
        assert a.id == b.id and a.image.read_bytes() == b.image.read_bytes()
        assert meta[b.id]["ocr"] == "tesseract"
        if a.text:  # the generator's few empty texts stay empty
            assert b.text == read(b.image, meta[b.id]["vertical"])
    assert [r.text for r in sim.records] != [r.text for r in real.records]


def test_news_tesseract_text_is_the_engine_s_reading_of_the_printed_caption(tmp_path):
    """news --ocr tesseract: the same photos; each caption printed in a column, scanned (kept
    under captions/) and read back by tesseract; a clipping without a caption stays without."""
    from clippings.data.shift.ocr import read_block

    kw = dict(task="dedup", entities=8, seed=78, captions="long", progress=False)
    sim = load_dataset(generate("news", tmp_path / "sim", **kw))
    real = load_dataset(generate("news", tmp_path / "real", ocr="tesseract", **kw))
    meta = {m["id"]: m for m in map(json.loads, (tmp_path / "real" / "meta.jsonl").read_text().splitlines())}
    read = 0
    for a, b in zip(sim.records, real.records):
        m = meta[b.id]
        assert a.id == b.id and a.image.read_bytes() == b.image.read_bytes() and m["ocr"] == "tesseract"
        if not m["caption"]:
            assert b.text == "" and "caption_scan" not in m
            continue
        assert b.text == read_block(tmp_path / "real" / m["caption_scan"], m["scan_scale"])
        assert m["cer"] == round(char_error_rate(m["caption"], b.text), 4)
        read += 1
    assert read >= 10
    assert [r.text for r in sim.records] != [r.text for r in real.records]


def test_same_place_siblings_are_another_shot_of_their_event_s_scene(tmp_path):
    """--sibling-photos same-place: a story about an earlier story's event shows the same place
    (its scene seed, another shot), so its photo is nearer the earlier one than another scene
    of the kind is; the default draws another scene, as before."""
    from clippings.data.synth.scene import SceneSpec, another_shot, draw_scene, random_scene

    def palette(spec):  # the place's colours, whatever the framing
        return np.histogram(np.asarray(draw_scene(spec).convert("L")), bins=16, range=(0, 256), density=True)[0]

    rng = np.random.default_rng(5)
    nearer = 0
    for kind in ("street", "crowd", "harbour", "interior"):
        for _ in range(3):
            base = random_scene(rng, kind)
            shot, other = another_shot(rng, base), random_scene(rng, kind)
            assert shot.seed == base.seed and shot.shot != 0
            assert draw_scene(shot).tobytes() != draw_scene(base).tobytes()
            nearer += np.abs(palette(shot) - palette(base)).sum() < np.abs(palette(other) - palette(base)).sum()
    # Two scenes of one kind can share a palette by chance (one pair of these 12 does); a shot
    # that ignored its place would be nearer about half the time.
    assert nearer >= 11
    assert draw_scene(SceneSpec(base.kind, base.seed, base.aspect)).tobytes() == draw_scene(base).tobytes()

    kw = dict(task="dedup", entities=40, seed=79, progress=False)
    same = generate("news", tmp_path / "same", sibling_photos="same-place", **kw)
    meta = [json.loads(line) for line in (same / "meta.jsonl").read_text().splitlines()]
    shots = [m for m in meta if m["shot"]]
    assert shots and all(any(o["scene_seed"] == m["scene_seed"] and o["shot"] != m["shot"] for o in meta)
                         for m in shots)
    other_dir = generate("news", tmp_path / "other", **kw)
    other = [json.loads(line) for line in (other_dir / "meta.jsonl").read_text().splitlines()]
    assert not any(m["shot"] for m in other)
    with pytest.raises(ConfigError, match="--sibling-photos applies to news only"):
        generate("jp-firms", tmp_path / "jp", entities=3, sibling_photos="same-place")
