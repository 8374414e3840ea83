"""The events on the five topics, as versioned pydantic models (docs/events.md shows examples).

Every event carries schema_version. Adding an optional field keeps the version; removing or
changing the meaning of one bumps it, and consumers accept both versions while producers
migrate. Unknown fields are ignored, so an older consumer reads a newer producer's additive
change. Binary payloads (inline images, vectors) travel as standard base64 in the JSON.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from datetime import date
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, ValidationError, model_validator
from pydantic_core import from_json

SCHEMA_VERSION = 1
DEFAULT_BLOCK = "default"
IMAGE_URI_SCHEMES = ("file", "http", "https", "s3")
DLQ_HEADER = "clippings.dlq"
# Fields copied from one event into the next are bounded, so a valid input never makes an
# output too large to produce (librdkafka's message.max.bytes is about 1 MB).
ID_MAX = 512
NAME_MAX = 256  # block, source, model names

# Characters that show nothing: controls, format characters (zero-width, bidi marks, BOM),
# separators, surrogates, unassigned code points, and Unicode's other default-ignorables.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Cn", "Zs", "Zl", "Zp"})
_IGNORABLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)

DlqReason = Literal[
    "schema",  # not JSON, or not a valid event of this topic's schema
    "empty",  # neither an image nor text: nothing to embed
    "image_too_large",  # over image_inline_max_bytes inline, or image_max_bytes fetched
    "image_undecodable",  # bytes that are no image Pillow can read
    "decompression_bomb",  # width x height over image_max_pixels
    "image_fetch_failed",  # image_uri unreachable, refused, or outside the allowed roots
    "vector_invalid",  # a vector of the wrong length or with non-finite values
    "model_mismatch",  # embedded by another model version than the linker's index
    "correction_refused",  # a reviewer's correction that cannot apply (a clipping the linker does not hold, ...)
]
DLQ_REASONS: tuple[str, ...] = DlqReason.__args__  # type: ignore[attr-defined]


def _b64decode(value: Any) -> Any:
    # JSON carries base64 text; Python callers may pass bytes as they are.
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"not standard base64: {exc}") from None
    return value


Base64Bytes = Annotated[
    bytes,
    BeforeValidator(_b64decode),
    PlainSerializer(lambda b: base64.b64encode(b).decode("ascii"), return_type=str, when_used="json"),
]


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode("utf-8")


class KafkaPosition(BaseModel):
    model_config = ConfigDict(frozen=True)

    topic: str
    partition: int
    offset: int


class RawClipping(_Event):
    """clippings.raw: one clipping from a feed. Key: the clipping id."""

    schema_version: Literal[1] = SCHEMA_VERSION
    id: str = Field(min_length=1, max_length=ID_MAX)
    source: str = Field("", max_length=NAME_MAX)  # where it comes from: a paper, a scan batch, a feed name
    block: str = Field(DEFAULT_BLOCK, min_length=1, max_length=NAME_MAX)  # only clippings of one block are compared
    text: str = ""  # OCR of the crop or the caption
    image: Base64Bytes | None = None  # inline image bytes (PNG/JPEG/...), bounded by image_inline_max_bytes
    image_uri: str | None = None  # claim check: file://, http(s):// or s3:// reference instead
    image_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")  # checked after a fetch when given
    published_at: date | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_image_source(self):
        if self.image is not None and self.image_uri is not None:
            raise ValueError("give image (inline) or image_uri (reference), not both")
        if self.image_uri is not None:
            scheme = urlsplit(self.image_uri).scheme
            if scheme not in IMAGE_URI_SCHEMES:
                raise ValueError(f"image_uri scheme {scheme!r} not one of {', '.join(IMAGE_URI_SCHEMES)}")
        return self

    @property
    def has_image(self) -> bool:
        return bool(self.image) or self.image_uri is not None

    @property
    def has_text(self) -> bool:
        """At least one visible character: a caption of zero-width or control characters is empty."""
        return visible(self.text)


class EmbeddedClipping(_Event):
    """clippings.embedded: the pooled vector of one clipping. Key: the block."""

    schema_version: Literal[1] = SCHEMA_VERSION
    id: str = Field(min_length=1, max_length=ID_MAX)
    source: str = Field("", max_length=NAME_MAX)
    block: str = Field(min_length=1, max_length=NAME_MAX)
    model: str = Field(max_length=NAME_MAX)  # model name from the manifest
    model_version: str = Field(max_length=NAME_MAX)  # manifest version: the linker refuses vectors of another model
    dim: int = Field(gt=0)
    vector: Base64Bytes  # dim float32 values, little-endian, unit L2 norm
    has_image: bool
    has_text: bool
    origin: KafkaPosition  # the clippings.raw record it was made from
    raw_ts_ms: int  # timestamp of that raw record: the start of end-to-end latency
    embedded_ts_ms: int

    @model_validator(mode="after")
    def _vector_length(self):
        if len(self.vector) != 4 * self.dim:
            raise ValueError(f"vector has {len(self.vector)} bytes, dim {self.dim} needs {4 * self.dim}")
        return self

    def array(self) -> np.ndarray:
        """(dim,) float32 view on the payload, no copy."""
        return np.frombuffer(self.vector, dtype="<f4")

    @staticmethod
    def pack(vector: np.ndarray) -> bytes:
        return np.ascontiguousarray(vector, dtype="<f4").tobytes()


class Neighbour(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    similarity: float  # cosine
    entity_id: str  # its entity before this decision
    probability: float | None = None  # that it is the same entity: the manifest's match probability


CorrectionAction = Literal["confirm", "reject", "merge"]


class Correction(_Event):
    """clippings.corrections: a reviewer's correction of the linker's decisions. Key: the block.

    Produced to the partition of the clipping's clippings.embedded record (its link event's
    origin.partition): the linker holding that partition applies it, once per id.
    - confirm: the clipping's decision stands (a label; the linker's state does not change);
    - reject: the clipping leaves its entity, for its own new entity (target_id None) or the
      entity of target_id; the entity it left and the one it is in now may not be linked again
      (a cannot-link);
    - merge: the entities of clipping_id and target_id become one (lifting a cannot-link between them).
    Entities are named through member clippings: an entity id changes when it is merged away,
    a clipping id never does.
    """

    schema_version: Literal[1] = SCHEMA_VERSION
    id: str = Field(min_length=1, max_length=ID_MAX)  # unique per correction: the idempotency key
    action: CorrectionAction
    block: str = Field(min_length=1, max_length=NAME_MAX)
    clipping_id: str = Field(min_length=1, max_length=ID_MAX)
    target_id: str | None = Field(None, min_length=1, max_length=ID_MAX)  # a clipping of the other entity
    reviewer: str = Field(min_length=1, max_length=NAME_MAX)
    at_ms: int
    note: str = Field("", max_length=2000)

    @model_validator(mode="after")
    def _target_fits_action(self):
        if self.action == "merge" and self.target_id is None:
            raise ValueError("a merge needs target_id: a clipping of the other entity")
        if self.action == "confirm" and self.target_id is not None:
            raise ValueError("a confirm takes no target_id")
        if self.target_id == self.clipping_id:
            raise ValueError("target_id must be another clipping than clipping_id")
        return self


class CorrectionRef(BaseModel):
    """In a link event made by a correction: which one."""

    model_config = ConfigDict(frozen=True)

    id: str
    action: CorrectionAction
    reviewer: str
    at_ms: int


class LinkEvent(_Event):
    """clippings.links: the linker's decision for one clipping. Key: the block (decision order kept).

    A clipping joins every entity that has a member at cosine >= threshold; when there are
    several, they merge into the oldest, named in entity_id, and the others are listed in
    merged_entities. Replaying a clipping re-emits this same event.
    """

    schema_version: Literal[1] = SCHEMA_VERSION
    id: str
    block: str
    entity_id: str
    is_duplicate: bool  # joined an existing entity
    matched_id: str | None = None  # the most similar earlier clipping at or above threshold
    similarity: float | None = None
    # The manifest's match probability (its match_probability curve) that this clipping is the
    # same entity as matched_id, or, when new, as its most similar neighbour; absent when the
    # model has no curve or the clipping no neighbour.
    probability: float | None = None
    neighbours: list[Neighbour] = Field(default_factory=list)  # top neighbours, any similarity
    merged_entities: list[str] = Field(default_factory=list)  # now part of entity_id
    model_version: str
    threshold: float
    origin: KafkaPosition  # the clippings.embedded record decided
    raw_ts_ms: int
    embedded_ts_ms: int
    linked_ts_ms: int
    # Set on the events a reviewer's correction makes (origin is then the clippings.corrections
    # record): a reject moves `id` to entity_id; a merge names the absorbed in merged_entities.
    correction: CorrectionRef | None = None


class DlqRecord(BaseModel):
    """clippings.dlq: value, key and headers are the original record's, untouched (so the record
    can be fixed and re-published as it was), unless a part is too large for one message: then
    it is cut (the value to its first bytes, the key and headers dropped) and named in
    `truncated`. This JSON rides in the header 'clippings.dlq'."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: Literal[1] = SCHEMA_VERSION
    stage: Literal["embedder", "linker"]
    reason: DlqReason
    detail: str = Field(max_length=2000)
    clipping_id: str | None = Field(None, max_length=ID_MAX)  # the first ID_MAX characters of a longer one
    origin: KafkaPosition  # where the whole original still is, until the topic's retention ends
    failed_ts_ms: int
    service: str  # client id of the process that rejected it
    truncated: list[Literal["value", "key", "headers", "clipping_id"]] = Field(default_factory=list)
    value_bytes: int | None = None  # when the value is truncated: the original's size ...
    value_sha256: str | None = None  # ... and SHA-256 (hex), to check a copy fetched from origin

    def to_header(self) -> tuple[str, bytes]:
        skip = None if self.truncated else {"truncated"}
        return DLQ_HEADER, self.model_dump_json(exclude_none=True, exclude=skip).encode("utf-8")

    @classmethod
    def from_headers(cls, headers: list[tuple[str, bytes]] | None) -> "DlqRecord":
        for name, value in headers or []:
            if name == DLQ_HEADER:
                return cls.model_validate_json(value)
        raise ValueError(f"no {DLQ_HEADER} header")


def visible(text: str) -> bool:
    """Does the text hold a character that shows? (scans only up to the first one that does)"""
    return any(unicodedata.category(c) not in _INVISIBLE_CATEGORIES and not _IGNORABLE.match(c) for c in text)


def peek_id(value: bytes | None) -> str | None:
    """The 'id' of a record that failed validation, when it has one (of any length: DeadLetters bounds it).

    pydantic's JSON parser, not json.loads: it has a nesting limit and raises ValueError past
    it, where json.loads raises RecursionError on a deeply nested record.
    """
    try:
        obj = from_json(value or b"")
    except ValueError:
        return None
    rid = obj.get("id") if isinstance(obj, dict) else None
    return rid if isinstance(rid, str) else None


def validation_summary(exc: ValidationError) -> str:
    """A one-line reason for the DLQ: the first few fields and what is wrong with them."""
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['msg']}" for e in exc.errors()[:5])
