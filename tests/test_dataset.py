"""The dataset reader: good folders load, every bad line is reported with its number."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from clippings.data.dataset import load_dataset
from clippings.errors import DatasetError


def _write(root: Path, lines: list[str | dict], images: tuple[str, ...] = ("a.png", "b.png")) -> Path:
    (root / "images").mkdir(parents=True, exist_ok=True)
    for name in images:
        Image.new("L", (40, 12), 255).save(root / "images" / name)
    text = "\n".join(line if isinstance(line, str) else json.dumps(line, ensure_ascii=False) for line in lines)
    (root / "records.jsonl").write_text(text + "\n", encoding="utf-8")
    return root


def _rec(rid: str, split: str = "corpus", **kw) -> dict:
    return {"id": rid, "image": "images/a.png", "text": "東洋紡績", "entity": "e-1", "split": split, **kw}


def test_good_link_dataset_loads(tmp_path):
    root = _write(tmp_path, [
        _rec("c-1"),
        _rec("q-1", "query", image="images/b.png", text="東洋紡續"),
        _rec("q-2", "query", image=None, text="Toyo Spinning", entity=7),
        "",  # blank lines are skipped
        _rec("q-3", "query", text=None, entity=None),
        _rec("q-4", "query", image="", text="東洋"),  # an empty path is no image, as null is
    ])
    ds = load_dataset(root)
    assert [r.id for r in ds.records] == ["c-1", "q-1", "q-2", "q-3", "q-4"]
    assert ds.records[4].image is None and ds.records[4].text == "東洋"
    assert ds.task == "link"
    first = ds.records[0]
    assert first.image == (root / "images" / "a.png").resolve() and first.image.is_absolute()
    assert first.text == "東洋紡績" and first.entity == "e-1" and first.split == "corpus"
    assert ds.records[2].image is None and ds.records[2].entity == "7"  # int entity ids become strings
    assert ds.records[3].text == "" and ds.records[3].entity is None  # null text: image only
    assert [r.id for r in ds.split("query")] == ["q-1", "q-2", "q-3", "q-4"]


def test_a_byte_order_mark_and_windows_line_ends_are_read(tmp_path):
    root = _write(tmp_path, [_rec("c-1"), _rec("q-1", "query")])
    jsonl = root / "records.jsonl"
    jsonl.write_bytes(b"\xef\xbb\xbf" + jsonl.read_bytes().replace(b"\n", b"\r\n"))
    assert [r.id for r in load_dataset(root).records] == ["c-1", "q-1"]



def test_a_line_that_is_not_utf8_names_its_line(tmp_path):
    """A Latin-1 byte (an export from an old tool) is a bad line like broken JSON, not a
    UnicodeDecodeError from deep inside the reader."""
    root = _write(tmp_path, [_rec("a"), _rec("b")])
    good = (root / "records.jsonl").read_bytes()
    (root / "records.jsonl").write_bytes(good + b'{"id": "c", "text": "Caf\xe9 du Nord", "split": "corpus"}\n')
    with pytest.raises(DatasetError) as err:
        load_dataset(root)
    assert "records.jsonl:3: not UTF-8" in str(err.value) and "1 bad record(s)" in str(err.value)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_a_utf16_or_utf32_file_says_so(tmp_path, encoding):
    root = _write(tmp_path, [_rec("a")])
    text = (root / "records.jsonl").read_text(encoding="utf-8")
    (root / "records.jsonl").write_bytes(text.encode(encoding))  # with its byte-order mark, as Notepad saves it
    with pytest.raises(DatasetError, match=f"records\\.jsonl is {encoding.upper()} text.*UTF-8"):
        load_dataset(root)

def test_dedup_and_train_tasks(tmp_path):
    dedup = load_dataset(_write(tmp_path / "d", [_rec("a", "val"), _rec("b", "test")]))
    assert dedup.task == "dedup"
    train = load_dataset(_write(tmp_path / "t", [_rec("a", "train"), _rec("b", "train")]))
    with pytest.raises(DatasetError, match="no corpus\\+query"):
        train.task


def test_broken_json_names_its_line(tmp_path):
    root = _write(tmp_path, [_rec("a"), '{"id": "b", "split": "corpus", "text": "x"', _rec("c")])
    with pytest.raises(DatasetError) as err:
        load_dataset(root)
    assert "records.jsonl:2: broken JSON" in str(err.value)
    assert "1 bad record(s)" in str(err.value)


def test_missing_image_names_its_line(tmp_path):
    root = _write(tmp_path, [_rec("a"), _rec("b"), _rec("c", image="images/nope.png")])
    with pytest.raises(DatasetError, match=r"records\.jsonl:3: missing image file images/nope\.png"):
        load_dataset(root)


def test_unknown_split_names_its_line(tmp_path):
    root = _write(tmp_path, [_rec("a", "dev")])
    with pytest.raises(DatasetError, match=r"records\.jsonl:1: unknown split 'dev'"):
        load_dataset(root)


def test_empty_record_names_its_line(tmp_path):
    root = _write(tmp_path, [_rec("a"), {"id": "b", "split": "query", "text": "", "image": None}])
    with pytest.raises(DatasetError, match=r"records\.jsonl:2: record has neither image nor text"):
        load_dataset(root)


def test_duplicate_id_names_both_lines(tmp_path):
    root = _write(tmp_path, [_rec("a"), _rec("b"), _rec("a", "query")])
    with pytest.raises(DatasetError, match=r"records\.jsonl:3: duplicate id 'a' \(first on line 1\)"):
        load_dataset(root)


def test_every_bad_line_is_reported(tmp_path):
    root = _write(tmp_path, [
        "[1, 2]",
        _rec("b", "dev"),
        _rec("c"),
        {"id": "", "split": "corpus", "text": "x"},
        _rec("e", text=5),
        _rec("f", entity=["e"]),
        _rec("g", image=3),
    ])
    with pytest.raises(DatasetError) as err:
        load_dataset(root)
    msg = str(err.value)
    assert msg.startswith("6 bad record(s)")
    for lineno, reason in [(1, "not a JSON object"), (2, "unknown split"), (4, "'id' must be a non-empty string"),
                           (5, "'text' must be a string"), (6, "'entity' must be a string or null"),
                           (7, "'image' must be a relative path or null")]:
        assert f"records.jsonl:{lineno}: {reason}" in msg
    assert "records.jsonl:3:" not in msg


def test_a_boolean_is_not_an_entity(tmp_path):
    root = _write(tmp_path, [_rec("a"), _rec("b", entity=True)])
    with pytest.raises(DatasetError, match=r"records\.jsonl:2: 'entity' must be a string or null"):
        load_dataset(root)


def test_missing_or_empty_records_file(tmp_path):
    with pytest.raises(DatasetError, match="no records.jsonl"):
        load_dataset(tmp_path)
    (tmp_path / "records.jsonl").write_text("\n\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="no records"):
        load_dataset(tmp_path)
