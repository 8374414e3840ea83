"""The news shift set read by a second engine (`clippings shift news --ocr ppocr`): PP-OCR's
detector and recogniser from the installed rapidocr wheel, nothing mocked. The same seed gives
the same scans as the tesseract set, read differently."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rapidfuzz.distance import Levenshtein

from clippings.cli import main
from clippings.data.dataset import load_dataset
from clippings.data.shift import ppocr
from clippings.data.shift.build import build
from clippings.errors import ConfigError
from caption_scans import cer, scan_caption

ENTITIES, SEED = 6, 5


def _meta(path: Path) -> dict[str, dict]:
    return {m["id"]: m for m in map(json.loads, (path / "meta.jsonl").open(encoding="utf-8"))}


@pytest.fixture(scope="module")
def both(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("engines")
    tess = build("news", root / "tesseract", entities=ENTITIES, seed=SEED, progress=False)
    pp = build("news", root / "ppocr", entities=ENTITIES, seed=SEED, workers=2, progress=False, ocr_engine="ppocr")
    return tess, pp


def test_the_same_scans_read_by_the_other_engine(both):
    tess, pp = both
    scans = sorted(p.relative_to(tess) for p in tess.rglob("*.jpg"))
    assert scans and scans == sorted(p.relative_to(pp) for p in pp.rglob("*.jpg"))
    assert all((tess / f).read_bytes() == (pp / f).read_bytes() for f in scans)
    t_text = {r.id: r.text for r in load_dataset(tess).records}
    p_text = {r.id: r.text for r in load_dataset(pp).records}
    assert t_text.keys() == p_text.keys()
    meta = _meta(pp)
    captioned = [i for i in p_text if meta[i]["truth"]]
    assert sum(p_text[i] != t_text[i] for i in captioned) >= len(captioned) // 3, "the same engine's text"
    for i in captioned[:3]:  # the record's text is PP-OCR's reading of the scan on disk
        assert ppocr.read_block(pp / meta[i]["caption_scan"]) == p_text[i]
    cers = [Levenshtein.distance(p_text[i], meta[i]["truth"]) / len(meta[i]["truth"]) for i in captioned]
    assert np.median(cers) < 0.15, "PP-OCR should read most captions well"
    info = json.loads((pp / "shift.json").read_text(encoding="utf-8"))
    assert info["ocr"] == ppocr.version() and meta[captioned[0]]["ocr"] == ppocr.ENGINE
    assert info["ocr_call"] == ppocr.ENGINE
    assert json.loads((tess / "shift.json").read_text(encoding="utf-8"))["ocr"].startswith("tesseract")


def test_damage_makes_ppocr_err_where_a_clean_scan_reads_right(tmp_path):
    clean = cer(ppocr.read_block(scan_caption(tmp_path, 0.0, 1)[0]))
    # Seed 11 at full severity: uneven ink, fill-in, warp, bleed-through, a stain and skew.
    damaged = cer(ppocr.read_block(scan_caption(tmp_path, 1.0, 11)[0]))
    assert clean < 0.05 and clean < damaged < 0.8, (clean, damaged)


def test_regions_are_the_maps_confident_blobs_grown_to_the_image():
    prob = np.zeros((64, 128), np.float32)
    prob[10:18, 8:100] = 0.9  # a line
    prob[40:48, 8:60] = 0.9  # another
    prob[30:33, 110:113] = 0.35  # above the pixel threshold, below the box score: noise
    boxes = ppocr.regions(prob, 2.0, 2.0, 256, 128)
    assert len(boxes) == 2
    first = min(boxes, key=lambda b: b.y0)
    grow = 8 * 92 * ppocr.UNCLIP_RATIO / (2 * (8 + 92))
    assert first.y0 == pytest.approx((10 - grow) * 2) and first.x1 == pytest.approx((100 + grow) * 2)
    assert all(0 <= b.x0 < b.x1 <= 256 and 0 <= b.y0 < b.y1 <= 128 for b in boxes)


def test_reading_order_joins_the_pieces_of_a_skewed_line():
    Box = ppocr.Box
    # Line 1 cut in two pieces (the right one a little lower: skew), line 2 below it.
    right, left, below = Box(120, 12, 200, 32), Box(0, 10, 110, 30), Box(0, 40, 150, 60)
    assert ppocr.reading_order([below, right, left]) == [left, right, below]


def test_jp_firms_refuses_the_second_engine(tmp_path):
    with pytest.raises(ConfigError, match="--ocr ppocr is for news"):
        build("jp-firms", tmp_path / "j", entities=4, progress=False, ocr_engine="ppocr")
    assert main(["shift", "jp-firms", str(tmp_path / "k"), "--ocr", "ppocr", "--no-progress"]) == 2
    with pytest.raises(SystemExit):
        main(["shift", "news", str(tmp_path / "n"), "--ocr", "abbyy", "--no-progress"])
    assert not any(tmp_path.iterdir())
