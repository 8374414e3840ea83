"""A reviewer's action -> a checked row in the corrections table and its Correction event.

Checks before anything is stored: the clipping has a decision; a target is a decided clipping
of the same block (clippings of two blocks are never compared, so they cannot be one entity);
the action changes something (a reject leaves an entity with other members; a merge joins two
entities). A refusal is a CorrectionRefused with a sentence for the reviewer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from pydantic import ValidationError
from sqlalchemy import Connection, func, select

from clippings.errors import ClippingsError
from clippings.review.tables import corrections, decisions, membership
from clippings.services.schemas import Correction


class CorrectionRefused(ClippingsError):
    """The action cannot be taken as asked; the message says why, for the reviewer."""


@dataclass(frozen=True)
class Placed:
    block: str
    partition: int  # the link event's origin.partition: where the linker holding the block listens
    entity: str  # its entity now


def _placed(conn: Connection, clipping_id: str, what: str) -> Placed:
    row = conn.execute(
        select(decisions.c.block, decisions.c.origin_partition, func.coalesce(membership.c.entity_id,
                                                                              decisions.c.entity_id))
        .select_from(decisions.outerjoin(membership, membership.c.clipping_id == decisions.c.id))
        .where(decisions.c.id == clipping_id)).first()
    if row is None:
        raise CorrectionRefused(f"{what} {clipping_id!r} has no decision here (unknown clipping id)")
    return Placed(*row)


def _entity_size(conn: Connection, entity: str) -> int:
    return conn.execute(select(func.count()).select_from(membership).where(membership.c.entity_id == entity)).scalar()


def _check(conn: Connection, action: str, clipping_id: str, target_id: str | None) -> Placed:
    me = _placed(conn, clipping_id, "clipping")
    if action == "confirm" or (action == "reject" and target_id is None):
        if action == "reject" and _entity_size(conn, me.entity) < 2:
            raise CorrectionRefused(f"{clipping_id!r} is alone in its entity already: nothing to reject")
        return me
    if target_id is None:
        raise CorrectionRefused("a merge needs the id of a clipping of the other entity")
    if target_id == clipping_id:
        raise CorrectionRefused("the other clipping must be another clipping than this one")
    other = _placed(conn, target_id, "other clipping")
    if other.block != me.block:
        raise CorrectionRefused(
            f"{target_id!r} is in block {other.block!r}, {clipping_id!r} in block {me.block!r}: only clippings of "
            "one block are ever compared, so they cannot be one entity")
    if other.entity == me.entity:
        raise CorrectionRefused(f"{clipping_id!r} and {target_id!r} are in one entity already ({me.entity})")
    return me


def record(conn: Connection, action: str, clipping_id: str, reviewer: str, target_id: str | None = None,
           note: str = "") -> tuple[Correction, int]:
    """Check, then insert the row (unpublished) -> (the event to publish, its partition)."""
    target_id = (target_id or "").strip() or None
    if action == "confirm" and target_id is not None:
        raise CorrectionRefused("a confirm takes no other clipping")
    placed = _check(conn, action, clipping_id, target_id)
    at = datetime.now(timezone.utc)
    cid = uuid.uuid4()
    try:
        event = Correction(id=str(cid), action=action, block=placed.block, clipping_id=clipping_id,
                           target_id=target_id, reviewer=reviewer, at_ms=int(at.timestamp() * 1000), note=note)
    except ValidationError as exc:
        raise CorrectionRefused("; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())) from None
    conn.execute(corrections.insert().values(
        id=cid, action=action, block=placed.block, clipping_id=clipping_id, target_id=target_id, reviewer=reviewer,
        at=at, note=note, entity_id=placed.entity, kafka_partition=placed.partition))
    return event, placed.partition


def event_of(row) -> Correction:
    """The Correction of a stored row (the republisher's)."""
    return Correction(id=str(row.id), action=row.action, block=row.block, clipping_id=row.clipping_id,
                      target_id=row.target_id, reviewer=row.reviewer, at_ms=int(row.at.timestamp() * 1000),
                      note=row.note)
