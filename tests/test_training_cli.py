"""`clippings train` as a new user meets it: it refuses held-out records, says when there is no
validation set, names a corrupt image's line, picks the preset from the data, and draws its
curves. Each case runs the real CLI on tiny generated data."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from clippings.data.dataset import load_dataset
from clippings.data.synth.generate import generate
from clippings.errors import DatasetError
from clippings.training.inputs import infer_preset
from dataset_copies import broken_copy


def clippings(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "clippings.cli", *args], capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("train-cli")
    generate("news", root / "news-train", task="train", entities=12, instances=3, seed=201, progress=False)
    generate("news", root / "news-dedup", task="dedup", entities=10, seed=202, progress=False)
    generate("jp-firms", root / "jp-train", task="train", entities=8, instances=2, seed=203, progress=False)
    return root


def test_training_on_a_held_out_split_is_refused(sets, tmp_path):
    proc = clippings("train", "--data", str(sets / "news-dedup"), "--out", str(tmp_path / "r"))
    assert proc.returncode == 2
    assert "test" in proc.stderr and "val" in proc.stderr and "split=train" in proc.stderr
    assert not (tmp_path / "r" / "last.pt").exists()


def test_two_sets_that_give_one_id_to_two_clippings_are_refused(sets, tmp_path):
    """The same --seed with other options names other stories (other photos) with the same
    ids: merged, each entity would hold two stories. Refused, naming the record; the same
    clippings twice (jp crops read by simulated OCR and by tesseract) stay welcome."""
    from clippings.training.inputs import training_records

    generate("news", tmp_path / "long", task="train", entities=12, instances=3, seed=201, captions="long",
             progress=False)
    proc = clippings("train", "--data", str(sets / "news-train"), str(tmp_path / "long"), "--out", str(tmp_path / "r"))
    assert proc.returncode == 2 and "news201-000000-t0" in proc.stderr and "its own --seed" in proc.stderr
    assert not (tmp_path / "r" / "last.pt").exists()
    generate("jp-firms", tmp_path / "jp-ocr", task="train", entities=8, instances=2, seed=203, ocr="tesseract",
             progress=False)
    both = training_records([sets / "jp-train", tmp_path / "jp-ocr"], None)
    assert len(both) == 2 * len(load_dataset(sets / "jp-train").records)


def test_validation_set_that_is_also_training_data_is_refused(sets, tmp_path):
    proc = clippings("train", "--data", str(sets / "news-train"), "--val", str(sets / "news-train"),
                     "--out", str(tmp_path / "r"))
    assert proc.returncode == 2 and "--val" in proc.stderr and "also in --data" in proc.stderr


def test_corrupt_image_is_reported_with_file_and_line(sets, tmp_path):
    ds = tmp_path / "bad"
    (ds / "images").mkdir(parents=True)
    good = load_dataset(sets / "news-train").records[:3]
    lines = []
    for i, r in enumerate(good):
        dst = ds / "images" / f"{i}.png"
        dst.write_bytes(r.image.read_bytes())
        lines.append({"id": f"r{i}", "image": f"images/{i}.png", "text": r.text, "entity": "e", "split": "train"})
    # Line 3's image: a real PNG cut short, as a failed copy leaves it.
    (ds / "images" / "2.png").write_bytes(good[2].image.read_bytes()[:200])
    (ds / "records.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    proc = clippings("train", "--data", str(ds), "--out", str(tmp_path / "r"), "--mode", "self-supervised",
                     "--stage1-epochs", "1")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"{ds / 'records.jsonl'}:3" in proc.stderr and "images/2.png" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_preset_follows_the_data(sets):
    assert infer_preset(load_dataset(sets / "news-train").records) == "lede-grid-trunk"
    assert infer_preset(load_dataset(sets / "jp-train").records) == "small-crops"


def test_unknown_device_is_refused(sets, tmp_path):
    proc = clippings("train", "--data", str(sets / "news-train"), "--out", str(tmp_path / "r"), "--device", "cuda:7")
    assert proc.returncode == 2 and "cuda:7" in proc.stderr and "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def run_without_val(sets, tmp_path_factory):
    run = tmp_path_factory.mktemp("noval") / "run"
    proc = clippings("train", "--data", str(sets / "news-train"), "--out", str(run), "--stage1-epochs", "1",
                     "--stage2-epochs", "1", "--classes-per-batch", "4", "--seed", "3", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run, proc


def test_training_without_val_warns_and_draws_curves(run_without_val):
    run, proc = run_without_val
    assert "no --val" in proc.stderr
    assert "best validation score" not in proc.stdout and "training loss" in proc.stdout
    from clippings.models.factory import load_checkpoint

    _, cfg, _ = load_checkpoint(run / "best.pt")
    assert cfg.name == "lede-grid-trunk"  # chosen from the photos in the data, no --preset given
    with Image.open(run / "training-curves.png") as im:
        assert im.size[0] >= 400 and im.size[1] >= 200


def test_export_refuses_to_tune_on_training_records(run_without_val, sets, tmp_path):
    run, _ = run_without_val
    proc = clippings("export", str(run), "--out", str(tmp_path / "m"))
    assert proc.returncode == 2 and "--data" in proc.stderr and "training" in proc.stderr
    proc = clippings("export", str(run), "--out", str(tmp_path / "m"), "--data", str(sets / "news-train"))
    assert proc.returncode == 2 and "training" in proc.stderr
    assert not (tmp_path / "m").exists()


def test_dataset_error_lines_are_exact(tmp_path):
    """A record's position in its file travels with it, for errors found after loading."""
    (tmp_path / "records.jsonl").write_text('\n{"id": "a", "text": "x", "split": "train"}\n'
                                           '{"id": "b", "text": "y", "split": "train"}\n')
    recs = load_dataset(tmp_path).records
    assert [r.line for r in recs] == [2, 3]
    with pytest.raises(DatasetError):
        load_dataset(tmp_path / "missing")


def test_photo_augmentation_is_refused_for_text_crops(sets, tmp_path):
    proc = clippings("train", "--data", str(sets / "jp-train"), "--out", str(tmp_path / "r"), "--photo-augment")
    assert proc.returncode == 2 and "--photo-augment is for photos" in proc.stderr and "Traceback" not in proc.stderr


def test_a_reprint_moves_and_recolours_the_photo_but_keeps_its_size():
    import torch

    from clippings.training.augment import reprint

    torch.manual_seed(0)
    x = torch.zeros(64, 3, 32, 32)
    x[:, 0, 8:24, 8:24] = 1.0  # a red square in the middle of a grey frame
    y = reprint(x)
    assert y.shape == x.shape
    red_mass = y[:, 0].sum(dim=(1, 2))
    assert (red_mass - x[:, 0].sum(dim=(1, 2))).abs().max() > 1.0  # cropped: the square grows or shifts
    grey = (y[:, 0] - y[:, 1]).abs().amax(dim=(1, 2)) < 1e-6
    assert 0 < int(grey.sum()) < len(y)  # some printed in grey, not all
    assert torch.equal(reprint(torch.zeros(2, 3, 32, 32)), torch.zeros(2, 3, 32, 32))  # nothing from nothing


def test_a_reprint_of_a_grey_photo_stays_one_grey_channel():
    """lede-grid-grey reads photos as one channel: the plates' balance must not make it three."""
    import torch

    from clippings.training.augment import augment

    torch.manual_seed(0)
    x = torch.rand(8, 1, 32, 32)
    assert augment(x, photos=True).shape == x.shape


def test_export_names_a_corrupt_image_of_its_data(run_without_val, sets, tmp_path):
    bad = tmp_path / "bad"
    line, name = broken_copy(sets / "news-dedup", bad, "val")
    proc = clippings("export", str(run_without_val[0]), "--out", str(tmp_path / "m"), "--data", str(bad))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"{bad / 'records.jsonl'}:{line}" in proc.stderr and name in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "m").exists()
