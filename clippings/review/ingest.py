"""Raw clippings and link events into the database, idempotently.

Each event is applied once: a clipping's first raw event and first decision are inserted
(ON CONFLICT DO NOTHING), and membership changes only when an event is new. Reading a topic
again from the beginning, or a link event the linker re-emitted, therefore changes nothing.
Link events of one block arrive in decision order (they are keyed by block), so applying each
new one as the linker did keeps membership equal to the linker's: the clipping goes to
entity_id, and every member of merged_entities follows it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from pydantic import ValidationError
from sqlalchemy import Connection, update
from sqlalchemy.dialects.postgresql import insert

from clippings.review.tables import clippings, correction_events, decisions, membership
from clippings.services.ops.logfmt import kv
from clippings.services.schemas import LinkEvent, RawClipping

log = logging.getLogger(__name__)


def pg_text(value: str) -> str:
    """PostgreSQL text cannot hold NUL; a feed's OCR text sometimes does."""
    return value.replace("\x00", "\ufffd")


def apply_raw(conn: Connection, raw: RawClipping) -> bool:
    """-> True when the clipping was new."""
    stmt = insert(clippings).values(
        id=pg_text(raw.id), block=pg_text(raw.block), source=pg_text(raw.source), text=pg_text(raw.text),
        image=raw.image, image_uri=None if raw.image_uri is None else pg_text(raw.image_uri),
        received_at=datetime.now(timezone.utc),
    ).on_conflict_do_nothing(index_elements=["id"])
    return _inserted(conn, stmt, clippings.c.id)


def _inserted(conn: Connection, stmt, column) -> bool:
    # RETURNING, not rowcount: psycopg's rowcount of an INSERT ... ON CONFLICT is not reliable here.
    return conn.execute(stmt.returning(column)).first() is not None


def apply_link(conn: Connection, link: LinkEvent) -> bool:
    """-> True when the event was new (and membership changed as it says)."""
    fresh = _insert_correction_event(conn, link) if link.correction else _insert_decision(conn, link)
    if fresh:
        _move(conn, link)
    return fresh


def _insert_decision(conn: Connection, link: LinkEvent) -> bool:
    sims = [n.similarity for n in link.neighbours]
    closest = link.similarity if link.similarity is not None else (max(sims) if sims else None)
    stmt = insert(decisions).values(
        id=link.id, block=link.block, entity_id=link.entity_id, is_duplicate=link.is_duplicate,
        matched_id=link.matched_id, similarity=link.similarity, closest=closest, threshold=link.threshold,
        model_version=link.model_version, neighbours=[n.model_dump() for n in link.neighbours],
        merged_entities=list(link.merged_entities), origin_topic=link.origin.topic,
        origin_partition=link.origin.partition, origin_offset=link.origin.offset, linked_ts_ms=link.linked_ts_ms,
    ).on_conflict_do_nothing(index_elements=["id"])
    return _inserted(conn, stmt, decisions.c.id)


def _insert_correction_event(conn: Connection, link: LinkEvent) -> bool:
    ref = link.correction
    stmt = insert(correction_events).values(
        correction_id=ref.id, clipping_id=link.id, block=link.block, action=ref.action, reviewer=ref.reviewer,
        at_ms=ref.at_ms, entity_id=link.entity_id, merged_entities=list(link.merged_entities),
        linked_ts_ms=link.linked_ts_ms,
    ).on_conflict_do_nothing(index_elements=["correction_id", "clipping_id"])
    return _inserted(conn, stmt, correction_events.c.clipping_id)


def _move(conn: Connection, link: LinkEvent) -> None:
    conn.execute(insert(membership).values(clipping_id=link.id, entity_id=link.entity_id, block=link.block)
                 .on_conflict_do_update(index_elements=["clipping_id"],
                                        set_={"entity_id": link.entity_id, "block": link.block}))
    if link.merged_entities:
        conn.execute(update(membership).where(membership.c.entity_id.in_(link.merged_entities))
                     .values(entity_id=link.entity_id))


def apply_records(conn: Connection, records: list[tuple[str, bytes | None]], raw_topic: str) -> int:
    """(topic, value) pairs in the order read -> how many were new. A record that is no valid
    event is logged and skipped: the linker's and embedder's DLQ already hold the bad input,
    and the page must not stop on one."""
    fresh = 0
    for topic, value in records:
        try:
            if topic == raw_topic:
                fresh += apply_raw(conn, RawClipping.model_validate_json(value or b""))
            else:
                fresh += apply_link(conn, LinkEvent.model_validate_json(value or b""))
        except ValidationError as exc:
            log.warning(kv("review_bad_record", topic=topic, detail=str(exc.errors()[:1])))
    return fresh
