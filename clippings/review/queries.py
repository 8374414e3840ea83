"""What the pages read: decision lists, one decision with its entity, an entity's history."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, exists, func, literal, or_, select, union_all

from clippings.review.tables import clippings, correction_events, corrections, decisions, membership

PAGE_SIZE = 50


@dataclass(frozen=True)
class Filters:
    block: str = ""
    decision: str = ""  # "", "new", "duplicate"
    min_sim: float | None = None  # on the closest similarity (the match's, else the best neighbour's)
    max_sim: float | None = None
    queue: bool = False  # needs review: unreviewed, closest to the threshold first
    page: int = 0


def _reviewed():
    return exists().where(corrections.c.clipping_id == decisions.c.id)


def _listing():
    current = func.coalesce(membership.c.entity_id, decisions.c.entity_id)
    return (select(decisions.c.id, decisions.c.block, decisions.c.is_duplicate, decisions.c.matched_id,
                   decisions.c.similarity, decisions.c.closest, decisions.c.threshold, decisions.c.linked_ts_ms,
                   current.label("entity"), func.left(clippings.c.text, 120).label("text"),
                   _reviewed().label("reviewed"))
            .select_from(decisions.outerjoin(membership, membership.c.clipping_id == decisions.c.id)
                         .outerjoin(clippings, clippings.c.id == decisions.c.id)))


def list_decisions(conn: Connection, f: Filters) -> list:
    q = _listing()
    if f.block:
        q = q.where(decisions.c.block == f.block)
    if f.decision in ("new", "duplicate"):
        q = q.where(decisions.c.is_duplicate == (f.decision == "duplicate"))
    if f.min_sim is not None:
        q = q.where(decisions.c.closest >= f.min_sim)
    if f.max_sim is not None:
        q = q.where(decisions.c.closest <= f.max_sim)
    if f.queue:
        q = q.where(decisions.c.closest.is_not(None), ~_reviewed()).order_by(
            func.abs(decisions.c.closest - decisions.c.threshold), decisions.c.id)
    else:
        q = q.order_by(decisions.c.linked_ts_ms.desc(), decisions.c.id)
    return conn.execute(q.limit(PAGE_SIZE).offset(max(f.page, 0) * PAGE_SIZE)).all()


def blocks(conn: Connection) -> list[str]:
    return list(conn.execute(select(decisions.c.block).distinct().order_by(decisions.c.block).limit(500)).scalars())


def decision(conn: Connection, clipping_id: str):
    return conn.execute(_listing().add_columns(decisions.c.model_version, decisions.c.neighbours,
                                               decisions.c.merged_entities, decisions.c.origin_partition,
                                               decisions.c.origin_offset, decisions.c.entity_id.label("decided"))
                        .where(decisions.c.id == clipping_id)).first()


def clipping(conn: Connection, clipping_id: str):
    """The raw clipping (text, image or its reference), None when not received (yet)."""
    return conn.execute(select(clippings.c.id, clippings.c.block, clippings.c.text, clippings.c.source,
                               (clippings.c.image.is_not(None)).label("has_inline"), clippings.c.image_uri)
                        .where(clippings.c.id == clipping_id)).first()


def image(conn: Connection, clipping_id: str):
    return conn.execute(select(clippings.c.image, clippings.c.image_uri).where(clippings.c.id == clipping_id)).first()


def members(conn: Connection, entity: str, limit: int = 200) -> list:
    return conn.execute(
        select(membership.c.clipping_id, clippings.c.text, decisions.c.similarity, decisions.c.is_duplicate)
        .select_from(membership.outerjoin(clippings, clippings.c.id == membership.c.clipping_id)
                     .outerjoin(decisions, decisions.c.id == membership.c.clipping_id))
        .where(membership.c.entity_id == entity).order_by(decisions.c.linked_ts_ms, membership.c.clipping_id)
        .limit(limit)).all()


def history(conn: Connection, entity: str, limit: int = 200) -> list:
    """Who did what, when, to this entity: reviewers' corrections of its members (stored here),
    and the correction link events the linker emitted for it, newest first."""
    member_ids = select(membership.c.clipping_id).where(membership.c.entity_id == entity)
    stored = select(
        literal("review").label("kind"), corrections.c.at.label("at"), corrections.c.action, corrections.c.reviewer,
        corrections.c.clipping_id, corrections.c.target_id, corrections.c.note,
        corrections.c.published_at.is_not(None).label("published"), literal(None).label("entity_id"),
    ).where(or_(corrections.c.entity_id == entity, corrections.c.clipping_id.in_(member_ids),
                corrections.c.target_id.in_(member_ids)))
    applied = select(
        literal("linker").label("kind"), func.to_timestamp(correction_events.c.linked_ts_ms / 1000.0).label("at"),
        correction_events.c.action, correction_events.c.reviewer, correction_events.c.clipping_id,
        literal(None).label("target_id"), literal("").label("note"), literal(True).label("published"),
        correction_events.c.entity_id,
    ).where(or_(correction_events.c.entity_id == entity,
                correction_events.c.merged_entities.contains([entity]),
                correction_events.c.clipping_id.in_(member_ids)))
    rows = union_all(stored, applied).subquery()
    return conn.execute(select(rows).order_by(rows.c.at.desc()).limit(limit)).all()
