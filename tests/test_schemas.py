"""The event schemas of the four topics: what they accept, refuse, and how they serialise."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from pydantic import ValidationError

from clippings.services.schemas import (
    DLQ_HEADER,
    DLQ_REASONS,
    Correction,
    DlqRecord,
    EmbeddedClipping,
    KafkaPosition,
    LinkEvent,
    RawClipping,
    peek_id,
    validation_summary,
)

POS = KafkaPosition(topic="clippings.raw", partition=2, offset=41)


def test_raw_inline_image_travels_as_standard_base64():
    raw = RawClipping(id="c-1", text="Fire at the mill", image=b"\xff\xd8\xff\x00binary")
    doc = json.loads(raw.to_bytes())
    assert doc["image"] == base64.b64encode(b"\xff\xd8\xff\x00binary").decode()
    assert doc["block"] == "default" and doc["schema_version"] == 1
    back = RawClipping.model_validate_json(raw.to_bytes())
    assert back.image == b"\xff\xd8\xff\x00binary" and back.has_image and back.has_text


def test_raw_reference_and_claim_check_fields():
    raw = RawClipping.model_validate_json(json.dumps({
        "id": "c-2", "image_uri": "s3://bucket/scans/c-2.jpg", "image_sha256": "a" * 64,
        "published_at": "1951-03-04", "metadata": {"page": 3},
    }))
    assert raw.has_image and not raw.has_text and raw.published_at.year == 1951


@pytest.mark.parametrize("doc, field", [
    ({"text": "no id"}, "id"),
    ({"id": "", "text": "x"}, "id"),
    ({"id": "c", "image": "not base64!"}, "image"),
    ({"id": "c", "image": "aGVs$bG8="}, "image"),  # "hello" with one stray character: not skipped over
    ({"id": "c", "image": "-_-_"}, "image"),  # the URL-safe alphabet is not the standard one
    ({"id": "c", "text": "x", "block": ""}, "block"),
    ({"id": "c", "image_uri": "ftp://host/x.png"}, "record"),
    ({"id": "c", "image": "aGVsbG8=", "image_uri": "file:///x.png"}, "record"),
    ({"id": "c", "text": "x", "schema_version": 2}, "schema_version"),
    ({"id": "c", "image_uri": "file:///x.png", "image_sha256": "xyz"}, "image_sha256"),
])
def test_raw_rejects(doc, field):
    with pytest.raises(ValidationError) as info:
        RawClipping.model_validate_json(json.dumps(doc))
    assert validation_summary(info.value).startswith(field)


def test_raw_ignores_unknown_fields_for_forward_compatibility():
    raw = RawClipping.model_validate_json('{"id": "c", "text": "x", "added_in_a_later_version": 1}')
    assert raw.id == "c"


def test_empty_clipping_is_valid_schema_but_has_nothing_to_embed():
    raw = RawClipping(id="c", text="   ")
    assert not raw.has_image and not raw.has_text
    empty_inline = RawClipping.model_validate_json('{"id": "c", "image": ""}')  # zero bytes: no image
    assert empty_inline.image == b"" and not empty_inline.has_image


def test_embedded_vector_round_trip_is_exact_and_zero_copy():
    v = np.random.default_rng(0).standard_normal(32).astype(np.float32)
    ev = EmbeddedClipping(id="c", block="b", model="news", model_version="abc", dim=32,
                          vector=EmbeddedClipping.pack(v), has_image=True, has_text=False,
                          origin=POS, raw_ts_ms=1, embedded_ts_ms=2)
    back = EmbeddedClipping.model_validate_json(ev.to_bytes())
    arr = back.array()
    assert arr.dtype == np.float32 and np.array_equal(arr, v)
    assert not arr.flags.owndata  # a view on the decoded bytes


@pytest.mark.parametrize("n_bytes", [12, 36])
def test_embedded_rejects_a_vector_of_the_wrong_length(n_bytes):
    with pytest.raises(ValidationError, match="dim 8 needs 32"):
        EmbeddedClipping(id="c", block="b", model="m", model_version="v", dim=8, vector=b"\0" * n_bytes,
                         has_image=False, has_text=True, origin=POS, raw_ts_ms=1, embedded_ts_ms=2)


def test_link_event_round_trip():
    link = LinkEvent(id="c-9", block="b", entity_id="e-c-1", is_duplicate=True, matched_id="c-1",
                     similarity=0.93, merged_entities=["e-c-4"], model_version="v", threshold=0.8,
                     origin=POS, raw_ts_ms=1, embedded_ts_ms=2, linked_ts_ms=3)
    assert LinkEvent.model_validate_json(link.to_bytes()) == link


def test_dlq_record_rides_in_one_header():
    rec = DlqRecord(stage="embedder", reason="decompression_bomb", detail="too many pixels",
                    clipping_id="c", origin=POS, failed_ts_ms=5, service="embedder-0")
    name, value = rec.to_header()
    assert name == DLQ_HEADER
    assert DlqRecord.from_headers([("trace", b"x"), (name, value)]) == rec
    with pytest.raises(ValueError):
        DlqRecord.from_headers([("trace", b"x")])
    with pytest.raises(ValidationError):
        DlqRecord(stage="embedder", reason="no_such_reason", detail="", origin=POS, failed_ts_ms=5, service="s")
    with pytest.raises(ValidationError):  # one header: the detail is bounded
        DlqRecord(stage="embedder", reason="schema", detail="x" * 2001, origin=POS, failed_ts_ms=5, service="s")
    assert {"schema", "empty", "image_too_large", "image_undecodable", "decompression_bomb",
            "image_fetch_failed", "vector_invalid", "model_mismatch", "correction_refused"} == set(DLQ_REASONS)


def test_peek_id_of_broken_records():
    assert peek_id(b'{"id": "c-7", "image": 3}') == "c-7"
    assert peek_id(b"\x00 not json") is None
    assert peek_id(None) is None


# -- hostile input ------------------------------------------------------------------------------
DEEP = b'{"id": "c-deep", "text": "x", "metadata": {"k": ' + b"[" * 5000 + b"]" * 5000 + b"}}"  # 10 KB
DEEPER = b"[" * 15_000 + b"]" * 15_000  # 30 KB, no object at all


@pytest.mark.parametrize("value", [DEEP, DEEPER], ids=["deep-metadata", "deep-array"])
def test_deeply_nested_json_is_a_schema_error_not_a_crash(value):
    """RecursionError is no ValueError: it escaped peek_id and crash-looped the embedder."""
    assert peek_id(value) is None
    for cls in (RawClipping, EmbeddedClipping, LinkEvent):
        with pytest.raises(ValidationError):
            cls.model_validate_json(value)


def _embedded_doc() -> dict:
    return json.loads(EmbeddedClipping(
        id="c", block="b", model="m", model_version="v", dim=2, vector=EmbeddedClipping.pack(np.ones(2) / 2**0.5),
        has_image=False, has_text=True, origin=POS, raw_ts_ms=1, embedded_ts_ms=2).to_bytes())


def _link_doc() -> dict:
    return json.loads(LinkEvent(id="c", block="b", entity_id="e-c", is_duplicate=False, model_version="v",
                                threshold=0.8, origin=POS, raw_ts_ms=1, embedded_ts_ms=2, linked_ts_ms=3).to_bytes())


def _dlq_doc() -> dict:
    return json.loads(DlqRecord(stage="linker", reason="schema", detail="d", origin=POS, failed_ts_ms=5,
                                service="s").to_header()[1])


@pytest.mark.parametrize("cls, doc", [
    (RawClipping, lambda: {"id": "c", "text": "x"}),
    (EmbeddedClipping, _embedded_doc),
    (LinkEvent, _link_doc),
    (DlqRecord, _dlq_doc),
], ids=["raw", "embedded", "link", "dlq"])
def test_consumers_refuse_an_unknown_schema_version(cls, doc):
    good = doc()
    cls.model_validate_json(json.dumps(good))  # the same document at version 1 is fine
    for version in (2, 0, "1"):
        with pytest.raises(ValidationError) as info:
            cls.model_validate_json(json.dumps(good | {"schema_version": version}))
        assert validation_summary(info.value).startswith("schema_version")


@pytest.mark.parametrize("text", [
    "\u200b\u200b\u200b",  # zero-width spaces
    "\ufeff",  # byte-order mark
    "\x00\x01\x02\x1f\x7f",  # C0 controls and DEL
    "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069",  # bidi marks and isolates
    "\u0085\u009b\u2028\u2029",  # C1 controls, line and paragraph separators
    "\u00ad\u2060\u180e\u200c\u200d",  # soft hyphen, word joiner, Mongolian vowel separator, ZWNJ, ZWJ
    " \t\n\u3000\u200b \x00",  # mixed with ordinary and ideographic spaces
    "\u3164\u115f\uffa0\ufe0f\u034f\u180b",  # Hangul fillers, selectors: letters and marks that show nothing
], ids=["zwsp", "bom", "c0", "bidi", "c1-separators", "joiners", "mixed", "fillers-selectors"])
def test_a_caption_of_invisible_characters_has_no_text(text):
    raw = RawClipping(id="c", text=text)
    assert not raw.has_text and not raw.has_image


@pytest.mark.parametrize("text", ["a", "\u200bx\u200b", "火", "\u0301"])
def test_a_caption_with_one_visible_character_has_text(text):
    assert RawClipping(id="c", text=text).has_text


@pytest.mark.parametrize("field, limit", [("source", 256), ("block", 256), ("id", 512)])
def test_fields_copied_into_outgoing_events_are_bounded(field, limit):
    """An unbounded field copied into clippings.embedded would make that event too large to produce."""
    RawClipping.model_validate({"id": "c", "text": "x", field: "s" * limit})
    with pytest.raises(ValidationError):
        RawClipping.model_validate({"id": "c", "text": "x", field: "s" * (limit + 1)})
    doc = _embedded_doc()
    EmbeddedClipping.model_validate(doc | {field: "s" * limit})
    with pytest.raises(ValidationError):
        EmbeddedClipping.model_validate(doc | {field: "s" * (limit + 1)})


@pytest.mark.parametrize("doc, refused", [
    ({"action": "merge"}, "a merge needs target_id"),
    ({"action": "confirm", "target_id": "c-2"}, "a confirm takes no target_id"),
    ({"action": "reject", "target_id": "c-1"}, "another clipping"),
    ({"action": "reject", "note": "n" * 2001}, "note"),
])
def test_a_correction_that_cannot_mean_anything_is_refused(doc, refused):
    base = {"id": "k-1", "block": "b", "clipping_id": "c-1", "reviewer": "ann", "at_ms": 1}
    Correction.model_validate(base | {"action": "reject", "target_id": "c-2"})
    with pytest.raises(ValidationError, match=refused):
        Correction.model_validate(base | doc)
