"""scripts/photo_reprint_probe.py: reprints of one photo by the shift pipeline's press are told
from other photos by the shipped news model, and the probe's figures say so."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from photo_reprint_probe import main  # noqa: E402


def test_each_reprint_finds_its_own_photo_and_a_folder_of_photos_is_read(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):  # smooth random scenes, each its own photo
        small = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
        Image.fromarray(small).resize((240, 180), Image.Resampling.BICUBIC).save(folder / f"scene{i}.png")
    Image.new("RGB", (50, 50)).save(folder / "logo.png")  # a name the probe passes over: not a photograph
    out = tmp_path / "probe.json"
    assert main(["--photos", str(folder), "--drawn", "6", "--reprints", "2", "--json", str(out)]) == 0
    results = json.loads(out.read_text())["results"]
    assert results["photos"]["photos"] == 3 and results["drawn"]["photos"] == 6
    drawn = results["drawn"]
    assert drawn["top1"] == 1.0 and drawn["auc"] > 0.95
    assert drawn["same_median"] > drawn["other_p99"]
