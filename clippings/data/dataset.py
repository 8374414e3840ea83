"""The dataset format: a folder with records.jsonl and images/.

One JSON object a line:
    {"id": "q-17", "image": "images/q-17.png", "text": "...", "entity": "e-42", "split": "query"}

"corpus"/"query" records make a linking task, "val"/"test" a dedup task, "train" records
are for training only. Every bad line is reported with its number; none is skipped.
"""

from __future__ import annotations

import codecs
import dataclasses
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, TypeVar

from PIL import Image

from clippings.errors import ConfigError, DatasetError
from clippings.runtime.preprocess import load_image

SPLITS = ("train", "corpus", "query", "val", "test")


class _HasId(Protocol):
    id: str


R = TypeVar("R", bound=_HasId)


@dataclass(frozen=True)
class Record:
    id: str
    image: Path | None  # absolute path, checked to exist
    text: str
    entity: str | None
    split: str
    origin: str = ""  # "records.jsonl path:line", for errors found after loading
    line: int = 0


@dataclass(frozen=True)
class Dataset:
    root: Path
    records: list[Record]

    def split(self, *names: str) -> list[Record]:
        return [r for r in self.records if r.split in names]

    @property
    def task(self) -> str:
        splits = {r.split for r in self.records}
        if {"corpus", "query"} <= splits:
            return "link"
        if "test" in splits:
            return "dedup"
        raise DatasetError(f"{self.root}: no corpus+query (link) or test (dedup) split")


MAX_PROBLEMS_SHOWN = 50


# Bytes that are not UTF-8 arrive as lone surrogates (read with surrogateescape), named here.
_NOT_UTF8 = re.compile("[\udc80-\udcff]")
# Longest first: UTF-32's little-endian mark begins with UTF-16's.
_WIDE_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
              (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))


def _check_utf8(jsonl: Path) -> None:
    """A UTF-16 or UTF-32 file (Windows editors save those) would fail on every line; say it once."""
    with jsonl.open("rb") as fh:
        head = fh.read(4)
    for bom, name in _WIDE_BOMS:
        if head.startswith(bom):
            raise DatasetError(f"{jsonl} is {name} text (its byte-order mark says so); "
                               f"JSON lines must be UTF-8: save it again as UTF-8")


def _decode(line: str) -> dict:
    bad = _NOT_UTF8.search(line)
    if bad is not None:
        raise ValueError(f"not UTF-8 text (byte 0x{ord(bad.group()) - 0xDC00:02x}); save the file as UTF-8")
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError) as exc:  # RecursionError: JSON nested thousands deep
        raise ValueError(f"broken JSON: {getattr(exc, 'msg', type(exc).__name__)}") from None
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    return obj


def read_jsonl(jsonl: Path, parse: Callable[[dict, int], R]) -> list[R]:
    """The records of a JSON-lines file, in order: `parse(object, line number)` makes each
    (a ValueError marks the line bad). Blank lines are skipped; a bad line, a duplicate id or
    an empty file raise one DatasetError naming every problem by file and line (the first 50)."""
    records: list[R] = []
    problems: list[str] = []
    first_line: dict[str, int] = {}
    _check_utf8(jsonl)
    # A UTF-8 byte-order mark (Windows tools write one) is no JSON; other bad bytes are named by line.
    with jsonl.open(encoding="utf-8-sig", errors="surrogateescape") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                rec = parse(_decode(line), lineno)
            except ValueError as exc:
                problems.append(f"{jsonl}:{lineno}: {exc}")
                continue
            if rec.id in first_line:
                problems.append(f"{jsonl}:{lineno}: duplicate id {rec.id!r} (first on line {first_line[rec.id]})")
                continue
            first_line[rec.id] = lineno
            records.append(rec)
    if problems:
        shown = "\n  ".join(problems[:MAX_PROBLEMS_SHOWN])
        extra = len(problems) - MAX_PROBLEMS_SHOWN
        more = f"\n  ... and {extra} more" if extra > 0 else ""
        raise DatasetError(f"{len(problems)} bad record(s):\n  {shown}{more}")
    if not records:
        raise DatasetError(f"{jsonl}: no records")
    return records


def text_field(obj: dict) -> str:
    """A record's `text`: a string; absent or null is no text."""
    text = obj.get("text")
    if text is None:
        return ""
    if not isinstance(text, str):
        raise ValueError("'text' must be a string")
    return text


def optional_str(obj: dict, name: str) -> str | None:
    """An `entity` or `split` label: a string (a number is read as its digits), or null."""
    value = obj.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, (str, int))):
        raise ValueError(f"'{name}' must be a string or null")
    return None if value is None else str(value)


def image_file(root: Path, image: str | None) -> Path | None:
    """A record's `image` path, relative to its folder -> the file, checked to exist; None for
    no image (null, or "" as "" is no text)."""
    if not image:
        return None
    path = (root / image).resolve()
    if not path.is_file():
        raise ValueError(f"missing image file {image}")
    return path


def record_image(r: Record) -> Image.Image | None:
    """r's image decoded, or None when it has none. A file Pillow cannot decode (cut short,
    not an image) is a DatasetError naming r's line, as a bad line of records.jsonl is; the
    file was only checked to exist when the set was loaded."""
    if r.image is None:
        return None
    try:
        return load_image(r.image)
    except Exception as exc:  # noqa: BLE001 (Pillow raises many types on bad files)
        raise DatasetError(f"{r.origin or r.id}: image {r.image} cannot be read: "
                           f"{type(exc).__name__}: {exc}") from None


def _parse_record(root: Path, obj: dict) -> Record:
    rid = obj.get("id")
    if not isinstance(rid, str) or not rid:
        raise ValueError("'id' must be a non-empty string")
    split = obj.get("split")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} (expected one of {', '.join(SPLITS)})")
    text = text_field(obj)
    entity = optional_str(obj, "entity")
    image = obj.get("image")
    if image is not None and not isinstance(image, str):
        raise ValueError("'image' must be a relative path or null")
    image_path = image_file(root, image)
    if image_path is None and not text:
        raise ValueError("record has neither image nor text")
    return Record(rid, image_path, text, entity, split)


def load_dataset(path: str | Path) -> Dataset:
    root = Path(path)
    jsonl = root / "records.jsonl"
    if not jsonl.is_file():
        raise DatasetError(f"{root}: no records.jsonl (expected a dataset folder)")

    def parse(obj: dict, lineno: int) -> Record:
        return dataclasses.replace(_parse_record(root, obj), origin=f"{jsonl}:{lineno}", line=lineno)

    return Dataset(root, read_jsonl(jsonl, parse))


def prepare_output_dir(out: Path, outputs: tuple[str, ...], overwrite: bool) -> Path:
    """A generator's output folder: refused when it holds anything and overwrite is off; with
    overwrite, only the generator's own outputs are removed (nothing else the user keeps there)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ConfigError(f"{out} is not empty (pass --overwrite to replace the data set in it)")
        for name in outputs:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    (out / "images").mkdir(parents=True, exist_ok=True)
    return out
