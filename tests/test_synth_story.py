"""`clippings synth news --captions long`: paragraph captions whose added sentences reprints
drop or reorder, and that other photos of one event share (clippings/data/synth/story.py)."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from clippings.data.synth.generate import generate
from clippings.data.synth.news import News
from clippings.data.synth.tasks import Slot
from clippings.errors import ConfigError


def _stories(captions: str, n: int = 300):
    return News("train", captions).entities(np.random.default_rng(0), n)


def _printed(gen: News, stories) -> list:
    return [p for i, s in enumerate(stories)
            for p in gen.plan(f"e{i}", s, [Slot(i, "dup", "test", k) for k in range(4)],
                              np.random.default_rng(i), stories, (i,))]


def test_long_captions_are_paragraphs_and_short_ones_stay_as_they_were():
    short, long = _stories("short"), _stories("long")
    assert all(s.body == () for s in short)
    assert all(1 <= len(s.body) <= 4 for s in long)
    gen = News("train", "long")
    wire = [p.caption for p in _printed(gen, long) if p.variant == "wire"]
    assert np.median([len(c) for c in wire]) > 1.6 * np.median([len(s.caption) for s in short])
    # the added sentences sit before the agency's credit, which ends most captions still
    assert np.mean([c.endswith(")") for c in wire]) > 0.6


def test_papers_restyle_the_dateline_and_credit_of_long_captions():
    gen = News("train", "long")
    stories = _stories("long", 300)
    printed = [p.caption for p in _printed(gen, stories) if p.variant == "wire"]
    agency = [c for c in printed if c[:3].isupper() and ", " in c.split(" -- ")[0]]  # "CITY, St., Mon. D -- "
    assert 0.4 < len(agency) / len(printed) < 0.85
    assert any(" (AP) -- " in c for c in printed) and any(c.endswith(" (Staff photo)") for c in printed)
    kicked = [c for c in printed if " -- " in c and c.split(" -- ")[0].isupper() and "," not in c.split(" -- ")[0]]
    assert kicked  # a kicker or a bare city dateline above the text


def test_other_photos_of_one_event_share_whole_sentences():
    stories = _stories("long", 400)
    siblings = [s for s in stories if s.sibling_of is not None]
    assert len(siblings) > 40
    shared = [bool(set(s.body) & set(stories[s.sibling_of].body)) for s in siblings]
    assert np.mean(shared) > 0.8  # a one-sentence body redrawn shares none
    # and unrelated stories meet on the pointers ("See story on Page 3.") now and then
    pointers = Counter(sentence for s in stories if s.sibling_of is None for sentence in s.body if "Page" in sentence)
    assert max(pointers.values()) >= 2


def test_reprints_keep_drop_or_reorder_the_added_sentences():
    gen = News("train", "long")
    stories = _stories("long", 300)
    plans = _printed(gen, stories)
    by_story = {f"e{i}": s for i, s in enumerate(stories)}
    kept = Counter()
    for p in plans:
        body = by_story[p.entity_id].body
        if p.variant in ("wire", "edit", "rewrite") and len(body) > 1:
            kept[p.variant, sum(sentence in p.caption for sentence in body) == len(body)] += 1
    assert kept["wire", False] == 0 and kept["wire", True] > 0
    assert kept["edit", False] > 0 and kept["rewrite", False] > 0


def test_caption_style_is_recorded_deterministic_and_for_news_only(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        generate("news", out, task="dedup", entities=12, seed=3, captions="long", progress=False)
    assert (a / "records.jsonl").read_bytes() == (b / "records.jsonl").read_bytes()
    assert json.loads((a / "synth.json").read_text())["captions"] == "long"
    with pytest.raises(ConfigError, match="--captions applies to news only"):
        generate("jp-firms", tmp_path / "c", entities=3, captions="long")
    with pytest.raises(ConfigError, match="unknown captions 'epic'"):
        generate("news", tmp_path / "c", entities=3, captions="epic")
