"""Shift sets (`clippings shift`): a tiny real build, checked for the format and
for independence from the training generator (names, fonts, OCR)."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest

from clippings.data.dataset import load_dataset
from clippings.cli import main
from clippings.data.shift.build import build
from clippings.data.shift.fonts import FACES
from clippings.data.shift.names import LEGAL, firm_names, generator_could_make, lexicon_names
from clippings.data.synth import names as gen_names
from clippings.data.synth.fonts import HELDOUT_FONTS, TRAIN_FONTS
from clippings.errors import ConfigError

ENTITIES = 6


@pytest.fixture(scope="module")
def shift(tmp_path_factory) -> Path:
    return build("jp-firms", tmp_path_factory.mktemp("shift"), entities=ENTITIES, seed=3, progress=False)


def _meta(path: Path) -> list[dict]:
    return [json.loads(line) for line in (path / "meta.jsonl").open(encoding="utf-8")]


def _strip_legal(name: str) -> str:
    for spellings in LEGAL.values():
        for s in sorted(spellings, key=len, reverse=True):
            name = name.replace(s, "")
    return name


def test_loads_as_a_link_set(shift):
    ds = load_dataset(shift)
    splits = {r.split for r in ds.records}
    assert splits == {"corpus", "query"}
    corpus = [r for r in ds.records if r.split == "corpus"]
    assert len(corpus) == ENTITIES
    assert all(r.image and (shift / r.image).is_file() for r in ds.records)
    assert len(_meta(shift)) == len(ds.records)
    info = json.loads((shift / "shift.json").read_text(encoding="utf-8"))
    assert info["counts"]["corpus"] == ENTITIES and info["ocr"].startswith("tesseract")


def test_names_come_from_the_lexicon_not_the_generator(shift):
    lexicon = set(lexicon_names())
    canonical = {m["canonical"] for m in _meta(shift)}
    cores = {_strip_legal(c) for c in canonical}
    assert cores <= lexicon
    # No core is one the generator's grammar can produce, nor one of its sampled names.
    assert not any(generator_could_make(c) for c in cores)
    rng = __import__("numpy").random.default_rng(0)
    generated = {_strip_legal(f.text) for f in gen_names.firm_names(rng, 2000) if f.script == "ja"}
    assert not cores & generated
    assert not set(firm_names()) & generated


def test_text_is_tesseract_output(shift):
    ds = load_dataset(shift)
    meta = {m["id"]: m for m in _meta(shift)}
    norm = lambda s: unicodedata.normalize("NFKC", s or "").replace(" ", "")  # noqa: E731
    differs = [r for r in ds.records if norm(r.text) != norm(meta[r.id]["truth"])]
    assert differs, "every text equals the printed truth: not an OCR engine's output"
    assert all(meta[r.id]["ocr"].startswith("tesseract jpn") for r in ds.records)
    # Yet it is a reading of the crop: the clean corpus listings are mostly read right.
    corpus = [r for r in ds.records if r.split == "corpus"]
    close = [r for r in corpus if len(set(norm(r.text)) & set(norm(meta[r.id]["truth"])))
             >= len(set(norm(meta[r.id]["truth"]))) // 2]
    assert len(close) >= len(corpus) // 2


def test_fonts_are_outside_the_generator_sets(shift):
    generator_files = {f.file for f in TRAIN_FONTS + HELDOUT_FONTS}
    generator_packages = {f.package for f in TRAIN_FONTS + HELDOUT_FONTS}
    for face in FACES:
        assert Path(face.path).name not in generator_files
        assert face.package not in generator_packages
    used = {m["font"] for m in _meta(shift)}
    assert used <= {f.name for f in FACES}
    assert {m["package"] for m in _meta(shift)}.isdisjoint(generator_packages)


def test_same_seed_same_plan_and_cli_refuses_a_full_folder(shift, capsys):
    from clippings.data.shift.build import plan

    assert plan(ENTITIES, 3) == plan(ENTITIES, 3)
    assert main(["shift", "jp-firms", str(shift), "--entities", "2", "--no-progress"]) == 2
    assert "not empty" in capsys.readouterr().err
    with pytest.raises(ConfigError):
        build("jp-firms", shift / "x", entities=1, progress=False)
