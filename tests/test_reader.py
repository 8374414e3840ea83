"""The reader family: a pretrained line recogniser (from the installed rapidocr wheel) as the
crop tower's trunk, a character table shared by both towers, and its export as one graph."""

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from clippings.data.synth.fonts import font_path
from clippings.errors import ModelError
from clippings.models import trunk as trunk_mod
from clippings.models.config import preset
from clippings.models.factory import create_model
from clippings.runtime.onnx_model import SHIPPED_MODELS_DIR
from clippings.runtime.preprocess import PreprocessConfig, normalize_text, prepare_image, tokenize_ngrams

READER = preset("reader-crops")
FONT = font_path("ipag.ttf")


def render(text: str, vertical: bool = False, size: int = 32) -> Image.Image:
    from PIL import ImageFont

    font = ImageFont.truetype(str(FONT), size)
    if vertical:
        img = Image.new("L", (size + 12, len(text) * (size + 4) + 12), 255)
        draw = ImageDraw.Draw(img)
        for i, ch in enumerate(text):
            draw.text((6, 6 + i * (size + 4)), ch, font=font, fill=0)
        return img
    img = Image.new("L", (len(text) * (size + 2) + 16, size + 16), 255)
    ImageDraw.Draw(img).text((8, 6), text, font=font, fill=0)
    return img


def pixels_of(images, cfg: PreprocessConfig = READER.preprocess) -> np.ndarray:
    return np.stack([prepare_image(img, cfg) for img in images])


def test_the_trunk_is_the_installed_wheel_s_graph_and_reads_japanese():
    path = trunk_mod.trunk_path("ppocrv6-small")
    package_dir = importlib.util.find_spec("rapidocr").submodule_search_locations[0]
    assert str(path).startswith(package_dir) and path.suffix == ".onnx"
    runner = trunk_mod.TrunkRunner("ppocrv6-small", threads=1)
    names = ["株式会社山田製作所", "東洋紡績(株)"]
    # Compared after NFKC: it reads the parentheses of (株) in either width.
    assert [normalize_text(t) for t in runner.read(pixels_of([render(n) for n in names]))] == names
    # A vertical print is turned counter-clockwise, so it reads top to bottom as a line.
    assert runner.read(pixels_of([render("大日本印刷", vertical=True)])) == ["大日本印刷"]


def test_the_trunk_is_found_without_importing_the_package():
    """rapidocr's own import pulls in OpenCV and can fetch models: we only read its files."""
    code = ("import sys; from clippings.models.trunk import TrunkRunner, trunk_dictionary; "
            "TrunkRunner('ppocrv6-small', threads=1); assert len(trunk_dictionary('ppocrv6-small')) == 18709; "
            "assert 'rapidocr' not in sys.modules and 'cv2' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_a_missing_trunk_package_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(trunk_mod.TRUNKS, "absent", trunk_mod.TrunkSpec("no_such_package_x", "m.onnx", "x", "y"))
    with pytest.raises(ModelError, match="pip install"):
        trunk_mod.trunk_path("absent")
    with pytest.raises(ModelError, match="unknown trunk"):
        trunk_mod.trunk_path("nope")


def test_ngram_ids_are_characters_then_ordered_pairs():
    cfg = READER.preprocess
    ab, ba = tokenize_ngrams("山田", cfg), tokenize_ngrams("田山", cfg)
    assert list(ab[:2]) == list(ba[:2])[::-1]  # the same two characters
    assert 1 <= ab[:2].min() and ab[:2].max() < cfg.text_buckets
    assert cfg.text_buckets <= ab[2] < cfg.text_buckets + cfg.text_bigram_buckets
    assert ab[2] != ba[2] and (ab[3:] == 0).all()  # pairs keep their order
    assert (tokenize_ngrams("ＡＢＣ", cfg) == tokenize_ngrams("ABC", cfg)).all()  # NFKC


def test_casefold_makes_house_styles_of_case_one_text():
    """A kicker in capitals, a lead-in in small capitals: with casefold the hashed tokenizers
    see one text; without it (the reader's crops keep case) they differ."""
    from dataclasses import replace

    from clippings.runtime.preprocess import tokenize_text

    folded = replace(READER.preprocess, casefold=True)
    for tok in (tokenize_ngrams, tokenize_text):
        assert (tok("FIRE SWEEPS Mill", folded) == tok("fire sweeps mill", folded)).all()
        assert (tok("FIRE SWEEPS Mill", READER.preprocess) != tok("fire sweeps mill", READER.preprocess)).any()


def test_an_untrained_reader_already_matches_a_crop_with_its_own_text():
    """The recogniser's classes index their characters' rows of the text table: one space
    for both towers before any training, for every character of the recogniser."""
    torch.manual_seed(0)
    model = create_model(READER).eval()
    names = ["山田製作所", "田中商事", "大阪瓦斯", "東洋紡績"]
    runner = trunk_mod.TrunkRunner("ppocrv6-small", threads=1)
    feats = torch.from_numpy(runner(pixels_of([render(n) for n in names])))
    ids = torch.from_numpy(np.stack([tokenize_ngrams(n, READER.preprocess) for n in names]))
    with torch.no_grad():
        img, txt = model(feats, ids)
    sim = (img @ txt.T).numpy()
    assert (sim.argmax(axis=1) == np.arange(len(names))).all(), sim


def test_training_leaves_the_rows_of_unseen_characters_alone():
    from clippings.models.losses import supcon_loss
    from clippings.training.loop import _param_groups

    torch.manual_seed(0)
    model = create_model(READER)
    opt = torch.optim.AdamW(_param_groups(model, weight_decay=0.05), lr=1e-2)
    ids = torch.from_numpy(np.stack([tokenize_ngrams(t, READER.preprocess) for t in ["山田", "山田", "田中", "田中"]]))
    before = model.text.table.weight.detach().clone()
    for _ in range(3):
        loss = supcon_loss(model.encode_text(ids), torch.tensor([0, 0, 1, 1]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    used = torch.zeros(len(before), dtype=torch.bool)
    used[ids.flatten()] = True
    after = model.text.table.weight.detach()
    assert not torch.equal(after[used], before[used])
    assert torch.equal(after[~used], before[~used])


def test_tall_crops_turn_counter_clockwise_and_lines_start_at_the_left():
    img = Image.new("L", (20, 100), 255)
    ImageDraw.Draw(img).rectangle((0, 0, 19, 19), fill=0)  # ink at the top of a vertical crop
    arr = prepare_image(img, READER.preprocess)  # (3, 48, 320)
    ink = (arr[0] < 0).any(axis=0)
    assert ink[:5].all() and not ink[60:].any()  # the top is now at the far left


def test_feature_cache_is_used_and_follows_the_images(tmp_path):
    from clippings.data.dataset import Record
    from clippings.runtime.preprocess import make_tokenizer
    from clippings.training.data import encode_records

    calls = []

    def trunk(pixels):
        calls.append(len(pixels))
        return pixels.mean(axis=(2, 3))[:, None, :]

    trunk.identity = "mean"
    paths = []
    for i, name in enumerate(["山田", "田中"]):
        paths.append(tmp_path / f"{i}.png")
        render(name).save(paths[-1])
    records = [Record(id=str(i), image=p, text="x", entity=str(i), split="train") for i, p in enumerate(paths)]
    cfg, tok = READER.preprocess, make_tokenizer(READER.preprocess, None)
    first = encode_records(records, cfg, tok, trunk=trunk, cache_dir=tmp_path / "cache")
    again = encode_records(records, cfg, tok, trunk=trunk, cache_dir=tmp_path / "cache")
    assert calls == [2] and torch.equal(first.pixels, again.pixels)
    render("大阪").save(paths[1])  # an image changed: its features must be computed again
    changed = encode_records(records, cfg, tok, trunk=trunk, cache_dir=tmp_path / "cache")
    assert calls == [2, 2] and not torch.equal(changed.pixels[1], first.pixels[1])


@pytest.fixture(scope="module")
def tiny_reader(tmp_path_factory):
    from test_pipeline import tiny_run

    return tiny_run(tmp_path_factory.mktemp("reader"), "jp-firms", "link", (30, 20), 201, "reader-crops")


def test_the_exported_reader_is_one_graph_that_matches_pytorch(tiny_reader):
    """Served: recogniser and head in one ONNX file with the usual inputs. It must equal the
    recogniser's own graph followed by the PyTorch head, as trained."""
    import json

    from clippings.models.factory import load_checkpoint
    from clippings.runtime.manifest import Manifest
    from clippings.runtime.onnx_model import OnnxEmbedder
    from clippings.runtime.preprocess import load_image

    manifest = Manifest.load(tiny_reader / "model")
    assert manifest.family == "reader" and manifest.parity["fp32"]["min_cosine"] > 0.999
    assert [t["name"] for t in manifest.inputs] == ["pixels", "text_ids"]
    assert manifest.preprocess.rotate_tall and manifest.preprocess.tokenizer == "ngrams"
    model, cfg, _ = load_checkpoint(tiny_reader / "run")
    rows = [json.loads(line) for line in (tiny_reader / "val" / "records.jsonl").read_text().splitlines()]
    emb = OnnxEmbedder(tiny_reader / "model")
    pixels, _, ids, tp = emb.prepare([load_image(tiny_reader / "val" / r["image"]) for r in rows], [r["text"] for r in rows])
    ort_img, ort_txt = emb.run(pixels, ids)
    with torch.no_grad():
        feats = torch.from_numpy(trunk_mod.TrunkRunner(cfg.trunk, threads=1)(pixels))
        pt_img, pt_txt = model(feats, torch.from_numpy(ids))
    assert np.sum(ort_img * pt_img.numpy(), axis=1).min() > 0.999
    assert np.sum(ort_txt * pt_txt.numpy(), axis=1)[tp > 0].min() > 0.999
    one_img, _ = emb.run(pixels[:1], ids[:1])
    assert np.allclose(one_img, ort_img[:1], atol=1e-5)


def test_an_exported_reader_is_a_starting_point_for_fine_tuning(tiny_reader, tmp_path):
    """The reader's graph holds its whole trained head, so a shipped model fine-tunes without a
    checkpoint; a graph of another family's preprocessing is refused, saying why."""
    from test_pipeline import clippings

    from clippings.models.factory import load_checkpoint
    from clippings.models.reader import load_exported_weights

    trained, _, _ = load_checkpoint(tiny_reader / "run")
    fresh = create_model(READER)
    load_exported_weights(fresh, tiny_reader / "model")
    assert torch.allclose(fresh.text.table.weight, trained.text.table.weight, rtol=1e-3, atol=1e-4)
    with pytest.raises(ModelError, match="other preprocessing or embedding size than preset 'reader-crops'"):
        load_exported_weights(create_model(READER), SHIPPED_MODELS_DIR / "news")
    proc = clippings("train", "--data", str(tiny_reader / "train"), "--val", str(tiny_reader / "val"), "--out",
                     str(tmp_path / "tuned"), "--preset", "reader-crops", "--init", str(tiny_reader / "model"),
                     "--stage1-epochs", "0", "--stage2-epochs", "1", "--classes-per-batch", "8")
    assert "initialised weights from exported model" in proc.stderr
    assert (tmp_path / "tuned" / "best.pt").is_file()
