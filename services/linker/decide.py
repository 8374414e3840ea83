"""The linking decision for a batch of one partition: online single-linkage clustering.

A clipping joins every entity that has a member at cosine >= the pair's cut (its neighbours
in the block's index and the earlier clippings of the same batch); several such entities merge
into the oldest. None: it founds a new entity. The cut is the threshold, or the manifest's cut
for a clipping missing its photo or caption against a complete one (runtime/modality.py).
Entities are the connected components of the "cosine >= cut" graph, which is what offline
single_linkage computes, in any order.

Three kinds of record, told apart before anything is searched:
- new: unknown to Redis and to this partition's state: decided here;
- recorded: Redis holds its decision (a replay after a restart): the recorded decision is
  re-applied to the state and re-emitted verbatim, never decided again;
- known: already in this partition's state (a repeated record): re-emitted, nothing added.

A batch spanning partitions goes through decide_partitions: a clipping id met in two of them
(two blocks) is decided by the first and counts as recorded for the others.

Pure: items and state in, plain decisions out. No I/O and no wire format: the linker
serialises decisions (store.link_bytes), and a recorded decision stays the bytes Redis holds.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from clippings.runtime.manifest import MatchCurve
from clippings.runtime.modality import COMPLETE, IMAGE_ONLY, NEVER, TEXT_ONLY, lowest_cut, pair_cut, pattern
from clippings.runtime.probability import pair_probability
from clippings.services.linker.index import Hits
from clippings.services.linker.partition import PartitionState, entity_id_for
from clippings.services.ops.logfmt import kv
from clippings.services.schemas import CorrectionRef, EmbeddedClipping, KafkaPosition, LinkEvent

log = logging.getLogger(__name__)
NEW, RECORDED, KNOWN = "new", "recorded", "known"


@dataclass(frozen=True)
class DecisionRule:
    threshold: float  # cosine, for pairs of like clippings (runtime/modality.py)
    search: str  # "range" | "knn"
    knn_k: int
    neighbours_in_event: int
    model_version: str
    # Neighbours this far below the threshold are searched too and named in the link event
    # (near misses: the review page's queue), never joined.
    near: float = 0.0
    # The manifest's cuts for a clipping missing its photo / its caption against a complete one.
    text_only: float | None = None
    image_only: float | None = None
    # The manifest's match probability and the cuts its margins are measured from
    # (runtime/probability.py): the same whatever threshold this linker runs with.
    curve: MatchCurve | None = None
    curve_cuts: tuple[float, float | None, float | None] | None = None

    @property
    def lowest(self) -> float:
        """The lowest cut of any pair."""
        return lowest_cut(self.threshold, self.text_only, self.image_only)

    @property
    def floor(self) -> float:
        """The lowest cosine a search keeps."""
        return self.lowest - self.near

    @property
    def splits_partial(self) -> bool:
        """Clippings missing a modality are indexed apart (PartitionState.partial_blocks)."""
        return self.text_only is not None or self.image_only is not None

    def partial_floor(self, a: str) -> float:
        """The lowest cut at which a clipping of pattern a links to one missing a modality."""
        return min(self.cut(a, b) for b in (TEXT_ONLY, IMAGE_ONLY))

    def cut(self, a: str = COMPLETE, b: str = COMPLETE) -> float:
        """The cut of a pair of clippings of patterns a and b."""
        return pair_cut(self.threshold, self.text_only, self.image_only, a, b)

    def probability(self, similarity: float, a: str, b: str) -> float | None:
        """P(same entity) of a pair of patterns a and b at this cosine; None without a curve."""
        if self.curve is None or self.curve_cuts is None:
            return None
        return round(pair_probability(similarity, a, b, self.curve, self.curve_cuts), 6)


@dataclass(frozen=True)
class Item:
    position: KafkaPosition  # of the clippings.embedded record
    event: EmbeddedClipping
    vector: np.ndarray  # (D,) float32


@dataclass(frozen=True)
class Neighbour:
    id: str
    similarity: float  # cosine, rounded to 6 places
    entity_id: str  # its entity before this decision
    probability: float | None = None  # that it is the same entity (DecisionRule.probability)


@dataclass(frozen=True)
class Decision:
    """Which entity a clipping joined, and why: the content of its link event."""

    id: str
    block: str
    entity_id: str
    is_duplicate: bool  # joined an existing entity
    model_version: str
    threshold: float
    origin: KafkaPosition  # the clippings.embedded record decided
    raw_ts_ms: int
    embedded_ts_ms: int
    linked_ts_ms: int
    matched_id: str | None = None  # the most similar earlier clipping at or above threshold
    similarity: float | None = None
    # That it is the same entity as matched_id, or, for a new entity, as its most similar neighbour.
    probability: float | None = None
    neighbours: list[Neighbour] = field(default_factory=list)  # the top ones, most similar first
    merged_entities: list[str] = field(default_factory=list)  # absorbed into entity_id by this decision
    correction: CorrectionRef | None = None  # made by a reviewer's correction (correct.py), not by the index


@dataclass
class Outcome:
    item: Item
    decision: Decision | None = None  # what to emit, unless `recorded` is set
    recorded: bytes | None = None  # the link event Redis holds: re-emitted verbatim
    fresh: Decision | None = None  # decided in this batch (None: a replayed or repeated decision)
    created: str | None = None  # entity founded by this decision
    merged: list[tuple[str, list[str]]] = field(default_factory=list)  # (absorbed root, entities re-pointed)


class _Prior(Protocol):
    """A decision made before this batch's: a parsed LinkEvent, or a Decision of another partition."""

    id: str
    entity_id: str
    is_duplicate: bool
    merged_entities: list[str]
    origin: KafkaPosition


def _classify(state: PartitionState, items: list[Item], prior: dict[str, object]) -> list[str]:
    kinds, seen = [], set()
    for it in items:
        cid = it.event.id
        kinds.append(KNOWN if state.knows(cid) or cid in seen else RECORDED if cid in prior else NEW)
        seen.add(cid)
    return kinds


def _priors(items: list[Item], kinds: list[str], recorded: dict[str, bytes],
            decided: dict[str, Decision]) -> dict[str, _Prior]:
    """The earlier decisions of the recorded items, as something _apply_prior can read."""
    return {
        it.event.id: decided.get(it.event.id) or LinkEvent.model_validate_json(recorded[it.event.id])
        for it, kind in zip(items, kinds) if kind == RECORDED
    }


def _adds(state: PartitionState, items: list[Item], kinds: list[str], priors: dict[str, _Prior]) -> list[bool]:
    # A recorded decision made on this partition puts its vector back in this index; one made
    # elsewhere (the clipping came again under another block) is only re-emitted.
    here = (state.topic, state.partition)
    return [kind == NEW or (kind == RECORDED and (priors[it.event.id].origin.topic,
                                                  priors[it.event.id].origin.partition) == here)
            for it, kind in zip(items, kinds)]


def _apply_prior(state: PartitionState, link: _Prior) -> None:
    """Replay an earlier decision onto the state: the same transitions as when it was made."""
    if link.entity_id not in state.parent:
        if link.is_duplicate:  # its entity should be here already: the state and Redis disagree
            log.error(kv("state_mismatch", id=link.id, entity=link.entity_id, partition=state.partition))
        state.new_entity(link.entity_id, link.origin.offset)
    into = state.root(link.entity_id)
    for other in link.merged_entities:
        if other in state.parent and state.root(other) != into:
            state.merge(into, state.root(other))
    state.assign(link.id, link.entity_id)


def _search_index(state: PartitionState, items: list[Item], kinds: list[str], rule: DecisionRule,
                  observe_search: Callable[[float], None]) -> dict[int, Hits]:
    """The new items' neighbours in the index as it was before the batch: one search per block
    (and, with cuts for clippings missing a modality, per pattern and index, each down to the
    lowest cut a pair of that pattern and that index can link at)."""
    new_by_block: dict[tuple[str, str], list[int]] = defaultdict(list)
    split = rule.splits_partial
    for i, kind in enumerate(kinds):
        if kind == NEW:
            new_by_block[items[i].event.block, _pattern(items[i].event) if split else COMPLETE].append(i)
    hits: dict[int, Hits] = defaultdict(list)
    start = time.perf_counter()
    for (block, mine), rows in new_by_block.items():
        vectors = np.stack([items[i].vector for i in rows])
        for partial, floor in ((False, rule.cut(mine, COMPLETE)), (True, rule.partial_floor(mine))):
            if floor == NEVER or (partial and block not in state.partial_blocks):
                continue
            found = state.block(block, partial).search(vectors, rule.search, floor - rule.near, rule.knn_k)
            for i, h in zip(rows, found):
                hits[i] = hits[i] + h
    observe_search(time.perf_counter() - start)
    return hits


class _BatchSims:
    """Similarities to the earlier items of the batch (not in the index yet): one Gram matrix per block."""

    def __init__(self, items: list[Item], adds: list[bool]):
        self.items = items
        self.rows: dict[str, list[int]] = defaultdict(list)  # block -> items added to its index
        for i, add in enumerate(adds):
            if add:
                self.rows[items[i].event.block].append(i)
        self.gram: dict[str, np.ndarray] = {}
        for block, rows in self.rows.items():
            vectors = np.stack([items[i].vector for i in rows])  # (n, D)
            self.gram[block] = vectors @ vectors.T  # (n, n)
        self.slot = {i: p for rows in self.rows.values() for p, i in enumerate(rows)}

    def earlier(self, i: int, threshold: float) -> Hits:
        block, p = self.items[i].event.block, self.slot[i]
        rows, row = self.rows[block], self.gram[block][p, :p]
        near = np.flatnonzero(row >= np.float32(threshold))  # compared in float32, as the index does
        return [(self.items[rows[q]].event.id, s) for q, s in zip(near.tolist(), row[near].tolist())]


def _candidates(index_hits: Hits, batch_hits: Hits, rule: DecisionRule) -> Hits:
    found = sorted(list(index_hits) + batch_hits, key=lambda c: -c[1])
    return found[: rule.knn_k] if rule.search == "knn" else found


def _pattern(event: EmbeddedClipping) -> str:
    return pattern(event.has_image, event.has_text)


def _decide_new(state: PartitionState, it: Item, found: Hits, rule: DecisionRule, now_ms: int,
                pattern_of: Callable[[str], str]) -> Outcome:
    """Join the entities of the candidates at or above their pair's cut (merged into the
    oldest), or found one; the near misses below it are only named among the neighbours."""
    cid = it.event.id
    # Patterns matter only where they have cuts of their own; the probabilities read the same ones.
    mine = _pattern(it.event) if rule.splits_partial else COMPLETE
    theirs = {c: pattern_of(c) if rule.splits_partial else COMPLETE for c, _ in found}
    # Each pattern's cut once, in float32 as the index compares: a wire story's reprints are
    # tens of candidates a decision.
    cut = {p: rule.cut(mine, p) for p in set(theirs.values())}
    if rule.splits_partial:
        # Each neighbour down to its own pair's floor, whichever search found it (the batch's
        # own earlier clippings are compared down to the lowest floor of any pair).
        floor = {p: np.float32(c - rule.near) for p, c in cut.items()}
        found = [(c, sim) for c, sim in found if sim >= floor[theirs[c]]]
    joins_at = {p: np.float32(c) for p, c in cut.items()}
    candidates = [(c, sim) for c, sim in found if sim >= joins_at[theirs[c]]]
    # Roots before this decision, of what is joined or named in the event.
    before = {c: state.entity_of(c) for c, _ in candidates + found[: rule.neighbours_in_event]}
    # A reviewer's cannot-links: of two entities kept apart, the more similar one is joined.
    joinable = state.entities.compatible(list(dict.fromkeys(before[c] for c, _ in candidates)))
    roots = set(joinable)
    created, merged = None, []
    top = next((c for c in candidates if before[c[0]] in roots), None)
    if roots:
        entity = state.oldest(roots)
        for other in sorted(roots - {entity}, key=lambda e: (state.seq[e], e)):
            merged.append((other, state.merge(entity, other)))
    else:
        entity = created = entity_id_for(cid)
        state.new_entity(entity, it.position.offset)
    state.assign(cid, entity)
    best = top or (found[0] if found else None)
    decision = Decision(
        id=cid, block=it.event.block, entity_id=entity, is_duplicate=bool(roots),
        matched_id=top[0] if top else None, similarity=round(top[1], 6) if top else None,
        probability=rule.probability(best[1], mine, theirs[best[0]]) if best else None,
        neighbours=[Neighbour(c, round(s, 6), before[c], rule.probability(s, mine, theirs[c]))
                    for c, s in found[: rule.neighbours_in_event]],
        merged_entities=[other for other, _ in merged], **_stamps(it, rule, now_ms),
    )
    return Outcome(it, decision, fresh=decision, created=created, merged=merged)


def _stamps(it: Item, rule: DecisionRule, now_ms: int) -> dict:
    # The threshold named is this clipping's cut against a complete one.
    return dict(model_version=rule.model_version, threshold=rule.cut(_pattern(it.event)), origin=it.position,
                raw_ts_ms=it.event.raw_ts_ms, embedded_ts_ms=it.event.embedded_ts_ms, linked_ts_ms=now_ms)


def _from_state(state: PartitionState, it: Item, rule: DecisionRule, now_ms: int) -> Decision:
    """Known here but missing in Redis (Redis lost data): the decision as the state has it."""
    cid = it.event.id
    log.error(kv("decision_missing_in_redis", id=cid, partition=state.partition, offset=it.position.offset))
    return Decision(id=cid, block=it.event.block, entity_id=state.entity_of(cid),
                    is_duplicate=state.clip_entity[cid] != entity_id_for(cid), **_stamps(it, rule, now_ms))


def decide_batch(
    state: PartitionState,
    items: list[Item],
    recorded: dict[str, bytes],
    rule: DecisionRule,
    now_ms: int,
    observe_search: Callable[[float], None] = lambda seconds: None,
    decided: dict[str, Decision] | None = None,  # by earlier partitions of the same batch
    due: Callable[[PartitionState, int], None] = lambda state, offset: None,
) -> list[Outcome]:
    """Decide (or replay) every item in order; updates `state`, index included. No I/O.

    `due(state, offset)` runs before each item: it replays the reviewers' corrections that were
    applied before that record (correct.apply_due)."""
    decided = decided or {}
    kinds = _classify(state, items, {**recorded, **decided})
    priors = _priors(items, kinds, recorded, decided)
    adds = _adds(state, items, kinds, priors)
    hits = _search_index(state, items, kinds, rule, observe_search)
    sims = _BatchSims(items, adds)
    # What each candidate has: the batch's own earlier items are not in the state yet.
    in_batch = {it.event.id: _pattern(it.event) for it, add in zip(items, adds) if add}

    def pattern_of(candidate: str) -> str:
        return in_batch[candidate] if candidate in in_batch else state.partial.get(candidate, COMPLETE)

    outcomes: list[Outcome] = []
    now: dict[str, Decision] = {}  # decided in this batch
    for i, (it, kind) in enumerate(zip(items, kinds)):
        cid = it.event.id
        due(state, it.position.offset)
        if kind == NEW:
            outcomes.append(_decide_new(state, it, _candidates(hits[i], sims.earlier(i, rule.floor), rule),
                                        rule, now_ms, pattern_of))
            now[cid] = outcomes[-1].fresh
            continue
        if kind == RECORDED and adds[i]:
            _apply_prior(state, priors[cid])
        earlier = now.get(cid) or decided.get(cid)
        if earlier is not None or cid in recorded:
            outcomes.append(Outcome(it, earlier, recorded=None if earlier is not None else recorded[cid]))
        else:
            outcomes.append(Outcome(it, _from_state(state, it, rule, now_ms)))
    _add_vectors(state, items, adds, rule.splits_partial)
    state.changed_since_snapshot += len(items)
    return outcomes


def _add_vectors(state: PartitionState, items: list[Item], adds: list[bool], split: bool) -> None:
    by_block: dict[tuple[str, bool], list[Item]] = defaultdict(list)
    for it, add in zip(items, adds):
        if add:
            by_block[it.event.block, split and _pattern(it.event) != COMPLETE].append(it)
    for (block, partial), its in by_block.items():
        state.add_vectors(block, np.stack([it.vector for it in its]), [it.event.id for it in its], partial)
        if partial:  # what each lacks: its pair cuts (only a split state needs them)
            state.partial.update((it.event.id, _pattern(it.event)) for it in its)


def decide_partitions(
    states: dict[int, PartitionState],
    items: dict[int, list[Item]],
    recorded: dict[str, bytes],
    rule: DecisionRule,
    now_ms: int,
    observe_search: Callable[[float], None] = lambda seconds: None,
    due: Callable[[PartitionState, int], None] = lambda state, offset: None,
) -> dict[int, list[Outcome]]:
    """decide_batch for each partition of a batch, in the order `items` lists them.

    The same clipping id can come under two blocks, so in two partitions of one batch. The
    first partition decides it; for the later ones its decision counts as recorded, so they
    re-emit it as a later batch or a replay would, and never mint a second entity.
    """
    decided: dict[str, Decision] = {}
    outcomes: dict[int, list[Outcome]] = {}
    for p, its in items.items():
        outcomes[p] = decide_batch(states[p], its, recorded, rule, now_ms, observe_search, decided, due)
        decided.update((o.fresh.id, o.fresh) for o in outcomes[p] if o.fresh is not None)
    return outcomes
