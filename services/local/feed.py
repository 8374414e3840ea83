"""A feed for `clippings replay`: records.jsonl in a folder (or the .jsonl file itself).

The dataset format (docs/data.md) with what a live feed needs: `split` and `entity` are
optional (a feed has no splits; `entity` only serves `clippings tail --labels`), the raw
event's own fields ride along to clippings.raw (`source`, `block`, `published_at`,
`metadata`, `image_uri`, `image_sha256`), and `image` may be a URL (file, http(s), s3),
passed on as `image_uri` for the embedder to fetch. Other fields are dropped, with one
warning that names them. Every bad line is reported with its number; nothing is sent then.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from clippings.data.dataset import Record, image_file, optional_str, read_jsonl, text_field
from clippings.errors import DatasetError
from clippings.services.ops.logfmt import kv
from clippings.services.schemas import IMAGE_URI_SCHEMES, RawClipping, validation_summary

log = logging.getLogger(__name__)

FEED_FIELDS = ("id", "image", "text", "entity", "split")
RAW_FIELDS = ("source", "block", "published_at", "metadata", "image_sha256", "schema_version")  # sent as given
KNOWN_FIELDS = FEED_FIELDS + RAW_FIELDS + ("image_uri",)
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True)
class FeedRecord:
    id: str
    text: str = ""
    image: Path | None = None  # a local file, read when the event is sent
    image_uri: str | None = None  # a reference the embedder fetches
    entity: str | None = None
    split: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)  # RAW_FIELDS the record gives

    @classmethod
    def of(cls, r: Record) -> "FeedRecord":
        return cls(id=r.id, text=r.text, image=r.image, entity=r.entity, split=r.split)


def _image(root: Path, obj: dict) -> tuple[Path | None, str | None]:
    image, uri = obj.get("image"), obj.get("image_uri")
    if image is not None and not isinstance(image, str):
        raise ValueError("'image' must be a relative path, a URL or null")
    if uri is not None and not isinstance(uri, str):
        raise ValueError("'image_uri' must be a URL string or null")
    image, uri = image or None, uri or None  # "" is no image, as in a dataset
    if image is not None and _URL.match(image):
        scheme = urlsplit(image).scheme
        if scheme not in IMAGE_URI_SCHEMES:
            raise ValueError(f"image URL scheme {scheme!r} not one of {', '.join(IMAGE_URI_SCHEMES)}")
        image, uri = None, uri or image
    if image is not None and uri is not None:
        raise ValueError("give 'image' (a file) or 'image_uri' (a reference), not both")
    return image_file(root, image), uri


def parse_record(root: Path, obj: dict) -> FeedRecord:
    text = text_field(obj)
    image, uri = _image(root, obj)
    raw = {k: obj[k] for k in RAW_FIELDS if obj.get(k) is not None}
    try:  # the event as replay will send it (an image stands in for the file's bytes)
        RawClipping.model_validate({"id": obj.get("id"), "text": text, "image_uri": uri} | raw)
    except ValidationError as exc:
        raise ValueError(validation_summary(exc)) from None
    if image is None and uri is None and not text:
        raise ValueError("record has neither image nor text")
    return FeedRecord(id=obj["id"], text=text, image=image, image_uri=uri, entity=optional_str(obj, "entity"),
                      split=optional_str(obj, "split"), raw=raw)


def load_feed(path: str | Path) -> list[FeedRecord]:
    """The records of a feed, in order; DatasetError listing every bad line."""
    path = Path(path)
    jsonl = path if path.is_file() else path / "records.jsonl"
    if not jsonl.is_file():
        raise DatasetError(f"{path}: no records.jsonl (expected a dataset folder or a .jsonl file)")
    unknown: Counter[str] = Counter()  # field -> records that have it (read only when every line is good)

    def parse(obj: dict, lineno: int) -> FeedRecord:
        rec = parse_record(jsonl.parent, obj)
        unknown.update(k for k in obj if k not in KNOWN_FIELDS)
        return rec

    records = read_jsonl(jsonl, parse)
    if unknown:  # once per feed, not once per record
        fields = ",".join(f"{k}({n})" for k, n in sorted(unknown.items()))
        log.warning(kv("feed_fields_dropped", file=jsonl, fields=fields, known=",".join(KNOWN_FIELDS)))
    return records
