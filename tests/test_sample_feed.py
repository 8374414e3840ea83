"""The demo's sample feed is the selection scripts/make_sample_feed.py makes with the shipped
news model: a new model ships with its feed selected again, so the demo's flags stay the
clear-cut reprints its README promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from clippings.data.synth.generate import generate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from make_sample_feed import clear_cut_stories, weakest_pair  # noqa: E402


def test_the_shipped_feed_is_the_selection_of_the_shipped_model(tmp_path, sample_feed):
    pool = generate("news", tmp_path / "pool", task="dedup", entities=80, seed=4, workers=1, progress=False)
    out = tmp_path / "feed"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_sample_feed.py"), str(pool), "--model", "news",
                    "--out", str(out)], check=True, cwd=ROOT)
    for name in ("records.jsonl", "meta.jsonl"):
        assert (out / name).read_text() == (sample_feed / name).read_text(), f"{name}: select the feed again"
    for image in (out / "images").iterdir():
        assert image.read_bytes() == (sample_feed / "images" / image.name).read_bytes()
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(p.name for p in (sample_feed / "images").iterdir())


def test_a_story_is_clear_cut_only_when_every_pair_reaches_the_cut():
    # a-b 0.95, b-c 0.91, a-c 0.5: single linkage joins them at 0.91, but a linker that sees a
    # then c flags c new (c reaches a only through b): the story is held to its weakest pair
    sim = np.array([[1.0, 0.95, 0.5], [0.95, 1.0, 0.91], [0.5, 0.91, 1.0]])
    assert weakest_pair(sim) == 0.5
    assert weakest_pair(np.ones((1, 1))) == 1.0
    v = np.array([[1.0, 0.0], [0.95, np.sqrt(1 - 0.95**2)], [0.5, np.sqrt(0.75)]], np.float32)
    assert clear_cut_stories(["s", "s", "s"], v, within=0.4, across=0.99) == ["s"]
    assert clear_cut_stories(["s", "s", "s"], v, within=0.6, across=0.99) == []


def test_a_story_close_to_another_or_loose_within_is_not_clear_cut():
    v = np.array([[1.0, 0.0], [0.999, 0.045], [0.0, 1.0], [0.6, 0.8]], np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    # cosines: a-b 0.999, c-d 0.8, a-d 0.6, b-d 0.64, a-c 0, b-c 0.05
    assert clear_cut_stories(["s1", "s1", "s2", "s3"], v, within=0.9, across=0.85) == ["s1", "s2", "s3"]
    assert clear_cut_stories(["s1", "s1", "s2", "s3"], v, within=0.9, across=0.7) == ["s1"]
    # b and c as one story: joined only at 0.05, so not clear-cut however far the others are
    assert clear_cut_stories(["s1", "s2", "s2", "s3"], v, within=0.9, across=1.01) == ["s1", "s3"]
