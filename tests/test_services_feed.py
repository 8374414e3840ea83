"""What `clippings replay` reads: a dataset folder or a live feed's records.jsonl (no broker needed)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
from pathlib import Path

import pytest

from clippings.errors import DatasetError
from clippings.services.local.replay import raw_event, select_records


def write_feed(folder: Path, *records: dict, image_from: Path | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if image_from is not None:
        (folder / "images").mkdir(exist_ok=True)
        shutil.copy(image_from, folder / "images" / "a.jpg")
    (folder / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return folder


def event(record, **kw):
    return raw_event(record, kw.get("source", "feed"), kw.get("block", "default"), "", "inline", 700_000)


def test_a_live_feed_needs_no_split(tmp_path):
    feed = write_feed(tmp_path / "live", {"id": "c-1", "text": "a caption"}, {"id": "c-2", "text": "another"})
    records = select_records(feed, None, None)
    assert [r.id for r in records] == ["c-1", "c-2"]
    assert event(records[0]).text == "a caption"


def test_an_empty_image_path_is_no_image(tmp_path):
    feed = write_feed(tmp_path / "live", {"id": "c-1", "text": "a caption", "image": ""},
                      {"id": "c-2", "text": "another", "image": "", "image_uri": ""})
    records = select_records(feed, None, None)
    assert [(r.image, r.image_uri) for r in records] == [(None, None), (None, None)]
    assert event(records[0]).image is None and event(records[0]).image_uri is None


def test_split_filter_keeps_records_of_that_split_only(tmp_path):
    feed = write_feed(tmp_path / "mixed", {"id": "a", "text": "x", "split": "val"}, {"id": "b", "text": "y"},
                      {"id": "c", "text": "z", "split": "test"})
    assert [r.id for r in select_records(feed, ["val"], None)] == ["a"]


def test_the_raw_events_own_fields_reach_the_event(tmp_path):
    feed = write_feed(tmp_path / "live", {
        "id": "c-1", "text": "caption", "block": "1923-05-01", "published_at": "1923-05-01",
        "source": "chronicle", "metadata": {"page": 3}, "entity": "e-1",
    })
    (record,) = select_records(feed, None, None)
    ev = event(record, source="live", block="default")
    assert (ev.block, ev.source, ev.published_at, ev.metadata) == ("1923-05-01", "chronicle", dt.date(1923, 5, 1),
                                                                   {"page": 3})


def test_defaults_apply_to_records_that_give_no_block_or_source(tmp_path):
    feed = write_feed(tmp_path / "live", {"id": "c-1", "text": "caption"})
    (record,) = select_records(feed, None, None)
    ev = raw_event(record, "the-feed", "b-7", "", "inline", 700_000)
    assert (ev.block, ev.source) == ("b-7", "the-feed")


def test_unknown_fields_are_named_in_one_warning(tmp_path, caplog):
    feed = write_feed(tmp_path / "live", *({"id": f"c-{i}", "text": "x", "colour": "red", "page_no": i}
                                           for i in range(5)))
    with caplog.at_level(logging.WARNING):
        assert len(select_records(feed, None, None)) == 5
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "colour(5)" in warnings[0] and "page_no(5)" in warnings[0]


def test_an_image_url_is_passed_on_as_image_uri(tmp_path):
    url = "https://images.example.org/scans/c-1.jpg"
    feed = write_feed(tmp_path / "live", {"id": "c-1", "image": url}, {"id": "c-2", "image_uri": url, "text": "t"})
    first, second = (event(r) for r in select_records(feed, None, None))
    assert first.image_uri == url and first.image is None
    assert second.image_uri == url and second.text == "t"


def test_local_images_still_go_inline(tmp_path, sample_feed):
    image = next((sample_feed / "images").iterdir())
    feed = write_feed(tmp_path / "live", {"id": "c-1", "image": "images/a.jpg"}, image_from=image)
    (record,) = select_records(feed, None, None)
    assert event(record).image == image.read_bytes()


def test_a_jsonl_file_is_a_feed_too(tmp_path):
    folder = write_feed(tmp_path / "live", {"id": "c-1", "text": "x"})
    assert [r.id for r in select_records(folder / "records.jsonl", None, None)] == ["c-1"]


@pytest.mark.parametrize("record, message", [
    ({"id": "c-1", "image": "images/gone.jpg"}, "missing image file images/gone.jpg"),
    ({"id": "c-1", "image": "ftp://host/a.jpg"}, "image URL scheme 'ftp'"),
    ({"id": "c-1", "text": "x", "published_at": "yesterday"}, "published_at"),
    ({"id": "c-1", "text": "x", "block": ""}, "block"),
    ({"id": 7, "text": "x"}, "id"),
    ({"id": "c-1"}, "neither image nor text"),
    # The dataset reader's own field rules (clippings/data/dataset.py): a number or false is not a
    # caption, and true is not an entity's name.
    ({"id": "c-1", "text": 0, "image_uri": "https://a/b.jpg"}, "'text' must be a string"),
    ({"id": "c-1", "text": False, "image_uri": "https://a/b.jpg"}, "'text' must be a string"),
    ({"id": "c-1", "text": "x", "entity": True}, "'entity' must be a string or null"),
])
def test_bad_records_are_reported_with_their_line(tmp_path, record, message):
    feed = write_feed(tmp_path / "bad", {"id": "ok", "text": "fine"}, record)
    with pytest.raises(DatasetError) as err:
        select_records(feed, None, None)
    assert "records.jsonl:2:" in str(err.value) and message in str(err.value)


def test_deeply_nested_json_is_a_bad_line_not_a_crash(tmp_path):
    feed = tmp_path / "deep"
    feed.mkdir()
    (feed / "records.jsonl").write_text("[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="records.jsonl:1: broken JSON"):
        select_records(feed, None, None)
