"""A reviewer's correction applied to a partition's state: pure, like decide.py.

- confirm: nothing changes (the label lives in the review database);
- reject: the clipping leaves its entity for its own new one (named after the clipping and the
  correction, so the same on every replay) or the entity of target_id; the two entities are
  kept apart from then on, so a later copy of the same clipping is not re-linked across them;
- merge: the two entities become one, the older absorbing the other, as a decision's merge does.

Corrections are recorded in Redis with `applied_at`, the partition's next offset when it was
applied; a replay applies each one again just before the first record at or past it, so the
state after a replay equals the state the corrections were made on (apply_due).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field

from clippings.services.linker.decide import Decision, DecisionRule
from clippings.services.linker.partition import PartitionState, entity_id_for
from clippings.services.ops.logfmt import kv
from clippings.services.schemas import Correction, CorrectionRef, KafkaPosition

log = logging.getLogger(__name__)


class CorrectionRefused(ValueError):
    """A correction that cannot apply to this partition's state (an unknown clipping, ...)."""


@dataclass
class Applied:
    correction: Correction
    decision: Decision | None = None  # the correction link event's content (None: a confirm, or nothing moved)
    created: str | None = None  # reject: the entity minted for the clipping
    left: str | None = None  # reject: the root the clipping left
    merged: list[tuple[str, list[str]]] = field(default_factory=list)  # merge: (absorbed root, entities re-pointed)


def rejected_entity_id(clipping_id: str, correction_id: str) -> str:
    return f"{entity_id_for(clipping_id)}~{hashlib.sha256(correction_id.encode()).hexdigest()[:10]}"


def apply_correction(state: PartitionState, c: Correction, applied_at: int, rule: DecisionRule,
                     origin: KafkaPosition, now_ms: int) -> Applied:
    """Apply `c` to the state -> what changed; raises CorrectionRefused and changes nothing when it cannot apply."""
    for cid in (c.clipping_id, c.target_id):
        if cid is not None and not state.knows(cid):
            raise CorrectionRefused(f"clipping {cid!r} is not in partition {state.partition} of {state.topic}")
    if c.action == "confirm":
        return Applied(c)
    if c.action == "reject":
        return _reject(state, c, applied_at, rule, origin, now_ms)
    return _merge(state, c, rule, origin, now_ms)


def _reject(state: PartitionState, c: Correction, applied_at: int, rule: DecisionRule,
            origin: KafkaPosition, now_ms: int) -> Applied:
    left = state.entity_of(c.clipping_id)
    created = None
    if c.target_id is None:
        entity = created = rejected_entity_id(c.clipping_id, c.id)
        state.new_entity(entity, applied_at)
    else:
        entity = state.entity_of(c.target_id)
        if entity == left:
            raise CorrectionRefused(f"{c.clipping_id!r} and {c.target_id!r} are in one entity already ({left})")
    state.assign(c.clipping_id, entity)
    state.entities.separate(entity, left)
    decision = _decision(c, entity, c.target_id is not None, [], rule, origin, now_ms)
    return Applied(c, decision, created=created, left=left)


def _merge(state: PartitionState, c: Correction, rule: DecisionRule, origin: KafkaPosition, now_ms: int) -> Applied:
    a, b = state.entity_of(c.clipping_id), state.entity_of(c.target_id)
    if a == b:
        return Applied(c)
    into = state.oldest({a, b})
    other = b if into == a else a
    moved = state.merge(into, other)
    return Applied(c, _decision(c, into, True, [other], rule, origin, now_ms), merged=[(other, moved)])


def _decision(c: Correction, entity: str, is_duplicate: bool, merged: list[str], rule: DecisionRule,
              origin: KafkaPosition, now_ms: int) -> Decision:
    return Decision(
        id=c.clipping_id, block=c.block, entity_id=entity, is_duplicate=is_duplicate, model_version=rule.model_version,
        threshold=rule.threshold, origin=origin, raw_ts_ms=c.at_ms, embedded_ts_ms=c.at_ms, linked_ts_ms=now_ms,
        matched_id=c.target_id, merged_entities=merged,
        correction=CorrectionRef(id=c.id, action=c.action, reviewer=c.reviewer, at_ms=c.at_ms),
    )


def apply_due(state: PartitionState, offset: int, rule: DecisionRule) -> None:
    """Replay the recorded corrections applied before the record at `offset` was decided."""
    while state.pending and state.pending[0][0] <= offset:
        applied_at, c, origin = state.pending.pop(0)
        try:
            apply_correction(state, c, applied_at, rule, origin, c.at_ms)
        except CorrectionRefused as exc:  # it applied live, on the state this replay rebuilt
            log.error(kv("state_mismatch", correction=c.id, partition=state.partition, detail=str(exc)))
        state.corrections_applied += 1
