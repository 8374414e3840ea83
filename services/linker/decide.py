"""The linking decision for a batch of one partition: online single-linkage clustering.

A clipping joins every entity that has a member at cosine >= threshold (its neighbours in the
block's index and the earlier clippings of the same batch); several such entities merge into
the oldest. None: it founds a new entity. Entities are the connected components of the
"cosine >= threshold" graph, which is what offline single_linkage computes, in any order.

Three kinds of record, told apart before anything is searched:
- new: unknown to Redis and to this partition's state: decided here;
- recorded: Redis holds its decision (a replay after a restart): the recorded decision is
  re-applied to the state and re-emitted verbatim, never decided again;
- known: already in this partition's state (a repeated record): re-emitted, nothing added.

A batch spanning partitions goes through decide_partitions: a clipping id met in two of them
(two blocks) is decided by the first and counts as recorded for the others.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from clippings.services.linker.index import Hits
from clippings.services.ops.logfmt import kv
from clippings.services.linker.partition import PartitionState, entity_id_for
from clippings.services.schemas import EmbeddedClipping, KafkaPosition, LinkEvent, Neighbour

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DecisionRule:
    threshold: float  # cosine
    search: str  # "range" | "knn"
    knn_k: int
    neighbours_in_event: int
    model_version: str


@dataclass(frozen=True)
class Item:
    position: KafkaPosition  # of the clippings.embedded record
    event: EmbeddedClipping
    vector: np.ndarray  # (D,) float32


@dataclass
class Outcome:
    item: Item
    payload: bytes  # the link event to emit
    fresh: LinkEvent | None = None  # decided in this batch (None: a replayed decision)
    created: str | None = None  # entity founded by this decision
    merged: list[tuple[str, list[str]]] = field(default_factory=list)  # (absorbed root, entities re-pointed)


def _classify(state: PartitionState, items: list[Item], recorded: dict[str, bytes]) -> list[str]:
    kinds, seen = [], set()
    for it in items:
        cid = it.event.id
        if state.knows(cid) or cid in seen:
            kinds.append("known")
        elif cid in recorded:
            kinds.append("recorded")
        else:
            kinds.append("new")
        seen.add(cid)
    return kinds


def _apply_recorded(state: PartitionState, link: LinkEvent) -> None:
    """Replay a decision Redis holds onto the state: the same transitions as when it was made."""
    if link.entity_id not in state.parent:
        if link.is_duplicate:  # its entity should be here already: the state and Redis disagree
            log.error(kv("state_mismatch", id=link.id, entity=link.entity_id, partition=state.partition))
        state.new_entity(link.entity_id, link.origin.offset)
    into = state.root(link.entity_id)
    for other in link.merged_entities:
        if other in state.parent and state.root(other) != into:
            state.merge(into, state.root(other))
    state.assign(link.id, link.entity_id)


def _from_state(state: PartitionState, item: Item, rule: DecisionRule, now_ms: int) -> bytes:
    """Known here but missing in Redis (Redis lost data): the decision as the state has it."""
    cid = item.event.id
    log.error(kv("decision_missing_in_redis", id=cid, partition=state.partition, offset=item.position.offset))
    return LinkEvent(
        id=cid, block=item.event.block, entity_id=state.entity_of(cid),
        is_duplicate=state.clip_entity[cid] != entity_id_for(cid),
        model_version=rule.model_version, threshold=rule.threshold, origin=item.position,
        raw_ts_ms=item.event.raw_ts_ms, embedded_ts_ms=item.event.embedded_ts_ms, linked_ts_ms=now_ms,
    ).to_bytes()


def decide_batch(
    state: PartitionState,
    items: list[Item],
    recorded: dict[str, bytes],
    rule: DecisionRule,
    now_ms: int,
    observe_search: Callable[[float], None] = lambda seconds: None,
) -> list[Outcome]:
    """Decide (or replay) every item in order; updates `state`, index included. No I/O."""
    kinds = _classify(state, items, recorded)
    replayed = {
        it.event.id: LinkEvent.model_validate_json(recorded[it.event.id])
        for it, kind in zip(items, kinds) if kind == "recorded"
    }
    # A recorded decision made on this partition puts its vector back in this index; one made
    # elsewhere (the clipping came again under another block) is only re-emitted.
    adds = [
        kind == "new"
        or (kind == "recorded" and (replayed[it.event.id].origin.topic, replayed[it.event.id].origin.partition)
            == (state.topic, state.partition))
        for it, kind in zip(items, kinds)
    ]

    # One index search per block for the new items, against the index as it was before the batch.
    hits: dict[int, Hits] = {}
    new_by_block: dict[str, list[int]] = defaultdict(list)
    for i, kind in enumerate(kinds):
        if kind == "new":
            new_by_block[items[i].event.block].append(i)
    start = time.perf_counter()
    for block, rows in new_by_block.items():
        found = state.block(block).search(
            np.stack([items[i].vector for i in rows]), rule.search, rule.threshold, rule.knn_k
        )
        hits.update(zip(rows, found))
    observe_search(time.perf_counter() - start)

    # Earlier items of the batch are not in the index yet: their similarities come from one
    # Gram matrix per block.
    adders: dict[str, list[int]] = defaultdict(list)
    for i, add in enumerate(adds):
        if add:
            adders[items[i].event.block].append(i)
    gram: dict[str, np.ndarray] = {}
    for block, rows in adders.items():
        vectors = np.stack([items[i].vector for i in rows])  # (n, D)
        gram[block] = vectors @ vectors.T  # (n, n)
    slot = {i: p for rows in adders.values() for p, i in enumerate(rows)}

    outcomes: list[Outcome] = []
    decided_now: dict[str, bytes] = {}
    pending: dict[str, tuple[list[np.ndarray], list[str]]] = defaultdict(lambda: ([], []))
    for i, (it, kind) in enumerate(zip(items, kinds)):
        cid, block = it.event.id, it.event.block
        if kind == "known":
            payload = decided_now.get(cid) or recorded.get(cid) or _from_state(state, it, rule, now_ms)
            outcomes.append(Outcome(it, payload))
            continue
        if kind == "recorded":
            payload = recorded[cid]
            if adds[i]:
                _apply_recorded(state, replayed[cid])
                pending[block][0].append(it.vector)
                pending[block][1].append(cid)
            outcomes.append(Outcome(it, payload))
            continue

        candidates = list(hits[i])
        rows, p = adders[block], slot[i]
        for q in range(p):
            sim = gram[block][p, q]  # float32
            if sim >= np.float32(rule.threshold):
                candidates.append((items[rows[q]].event.id, float(sim)))
        candidates.sort(key=lambda c: -c[1])
        if rule.search == "knn":
            candidates = candidates[: rule.knn_k]
        before = {c: state.entity_of(c) for c, _ in candidates}  # roots before this decision
        roots = set(before.values())

        created, merged = None, []
        if roots:
            entity = state.oldest(roots)
            for other in sorted(roots - {entity}, key=lambda e: (state.seq[e], e)):
                merged.append((other, state.merge(entity, other)))
        else:
            entity = created = entity_id_for(cid)
            state.new_entity(entity, it.position.offset)
        state.assign(cid, entity)
        link = LinkEvent(
            id=cid, block=block, entity_id=entity, is_duplicate=bool(roots),
            matched_id=candidates[0][0] if candidates else None,
            similarity=round(candidates[0][1], 6) if candidates else None,
            neighbours=[
                Neighbour(id=c, similarity=round(s, 6), entity_id=before[c])
                for c, s in candidates[: rule.neighbours_in_event]
            ],
            merged_entities=[other for other, _ in merged],
            model_version=rule.model_version, threshold=rule.threshold, origin=it.position,
            raw_ts_ms=it.event.raw_ts_ms, embedded_ts_ms=it.event.embedded_ts_ms, linked_ts_ms=now_ms,
        )
        payload = decided_now[cid] = link.to_bytes()
        pending[block][0].append(it.vector)
        pending[block][1].append(cid)
        outcomes.append(Outcome(it, payload, fresh=link, created=created, merged=merged))

    for block, (vectors, ids) in pending.items():
        state.add_vectors(block, np.stack(vectors), ids)
    state.changed_since_snapshot += len(items)
    return outcomes


def decide_partitions(
    states: dict[int, PartitionState],
    items: dict[int, list[Item]],
    recorded: dict[str, bytes],
    rule: DecisionRule,
    now_ms: int,
    observe_search: Callable[[float], None] = lambda seconds: None,
) -> dict[int, list[Outcome]]:
    """decide_batch for each partition of a batch, in the order `items` lists them.

    The same clipping id can come under two blocks, so in two partitions of one batch. The
    first partition decides it; for the later ones its decision counts as recorded, so they
    re-emit it as a later batch or a replay would, and never mint a second entity.
    """
    seen = dict(recorded)
    outcomes: dict[int, list[Outcome]] = {}
    for p, its in items.items():
        outcomes[p] = decide_batch(states[p], its, seen, rule, now_ms, observe_search)
        seen.update((o.fresh.id, o.payload) for o in outcomes[p] if o.fresh is not None)
    return outcomes
