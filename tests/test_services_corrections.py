"""Reviewers' corrections in the linker's state, without a broker (test_services_correction_stream.py
has them through the real broker and Redis).

- a reject moves the clipping out of its entity and keeps the two entities apart: a later copy
  near both joins the more similar one, never both;
- a merge joins two entities and lifts a cannot-link between them;
- a replay that applies the recorded corrections at their offsets rebuilds the live state;
- a snapshot keeps the cannot-links and how many corrections it holds.
"""

from __future__ import annotations

import numpy as np
import pytest

from clippings.services.linker.correct import (CorrectionRefused, apply_correction, apply_due,
                                               rejected_entity_id)
from clippings.services.linker.decide import DecisionRule, Item, decide_batch
from clippings.services.linker.partition import PartitionState
from clippings.services.linker.snapshot import SnapshotStore
from clippings.services.schemas import Correction, EmbeddedClipping, KafkaPosition

DIM = 8
TOPIC = "clippings.embedded"
RULE = DecisionRule(threshold=0.9, search="range", knn_k=32, neighbours_in_event=3, model_version="v1")
HERE = KafkaPosition(topic="clippings.corrections", partition=0, offset=0)


def unit(v) -> np.ndarray:
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


def item(cid: str, vector: np.ndarray, offset: int) -> Item:
    ev = EmbeddedClipping(id=cid, block="b", model="m", model_version="v1", dim=DIM,
                          vector=EmbeddedClipping.pack(vector), has_image=True, has_text=True,
                          origin=KafkaPosition(topic="clippings.raw", partition=0, offset=offset),
                          raw_ts_ms=1, embedded_ts_ms=2)
    return Item(KafkaPosition(topic=TOPIC, partition=0, offset=offset), ev, ev.array())


def correction(action: str, clipping: str, target: str | None = None, cid: str = "k1") -> Correction:
    return Correction(id=cid, action=action, block="b", clipping_id=clipping, target_id=target,
                      reviewer="ann", at_ms=5)


# Two photos of one event: "a" and its near copy "a2"; "x" is unrelated.
A = unit([1, 0, 0, 0, 0, 0, 0, 0])
A2 = unit([1, 0.3, 0, 0, 0, 0, 0, 0])  # cos(A, A2) ~ 0.958
X = unit([0, 0, 1, 0, 0, 0, 0, 0])


def decided(*vectors: tuple[str, np.ndarray]) -> PartitionState:
    state = PartitionState(TOPIC, 0, DIM, "Flat", "v1")
    decide_batch(state, [item(cid, v, i) for i, (cid, v) in enumerate(vectors)], {}, RULE, now_ms=3)
    state.next_offset = len(vectors)
    return state


def test_reject_gives_the_clipping_its_own_entity_and_a_later_copy_stays_with_it():
    state = decided(("a", A), ("a2", A2), ("x", X))
    assert state.entity_of("a2") == state.entity_of("a") == "e-a"
    applied = apply_correction(state, correction("reject", "a2"), 3, RULE, HERE, now_ms=9)
    moved = rejected_entity_id("a2", "k1")
    assert state.entity_of("a2") == moved and state.entity_of("a") == "e-a"
    assert (applied.left, applied.created, applied.decision.entity_id) == ("e-a", moved, moved)
    assert applied.decision.correction.action == "reject" and not applied.decision.is_duplicate
    # A copy of a2 is within the threshold of both a2 (1.0) and a (0.958): without the
    # cannot-link it would join and merge both entities; it joins a2's alone.
    [outcome] = decide_batch(state, [item("a2-copy", A2, 3)], {}, RULE, now_ms=4)
    assert outcome.fresh.entity_id == moved and outcome.fresh.matched_id == "a2"
    assert outcome.fresh.merged_entities == [] and state.entity_of("a") == "e-a"
    assert {n.id for n in outcome.fresh.neighbours} == {"a", "a2"}  # both are still shown


def test_reject_into_a_chosen_entity():
    state = decided(("a", A), ("a2", A2), ("x", X))
    applied = apply_correction(state, correction("reject", "a2", target="x"), 3, RULE, HERE, now_ms=9)
    assert state.entity_of("a2") == state.entity_of("x") == "e-x"
    assert applied.decision.is_duplicate and applied.decision.matched_id == "x" and applied.created is None
    with pytest.raises(CorrectionRefused, match="one entity already"):
        apply_correction(state, correction("reject", "a2", target="x", cid="k2"), 3, RULE, HERE, now_ms=9)


def test_merge_joins_into_the_older_entity_and_lifts_the_cannot_link():
    state = decided(("a", A), ("a2", A2), ("x", X))
    apply_correction(state, correction("reject", "a2"), 3, RULE, HERE, now_ms=9)
    moved = state.entity_of("a2")
    applied = apply_correction(state, correction("merge", "a2", target="a", cid="k2"), 3, RULE, HERE, now_ms=9)
    assert state.entity_of("a2") == state.entity_of("a") == "e-a"  # e-a was founded first
    assert applied.decision.merged_entities == [moved] and applied.merged[0][0] == moved
    assert state.entities.apart == {}
    [outcome] = decide_batch(state, [item("a2-copy", A2, 3)], {}, RULE, now_ms=4)
    assert outcome.fresh.entity_id == "e-a"


def test_cannot_links_follow_merges():
    """a2 was rejected from a; x then merged with a2's entity: a copy near a and a2 still joins only one."""
    state = decided(("a", A), ("a2", A2), ("x", X))
    apply_correction(state, correction("reject", "a2"), 3, RULE, HERE, now_ms=9)
    apply_correction(state, correction("merge", "x", target="a2", cid="k2"), 3, RULE, HERE, now_ms=9)
    # The entity a reject mints is as old as the correction (offset 3): x's (2) is the older root.
    assert state.entity_of("x") == state.entity_of("a2") == "e-x"
    [outcome] = decide_batch(state, [item("copy", A2, 3)], {}, RULE, now_ms=4)
    assert outcome.fresh.merged_entities == [] and outcome.fresh.entity_id == state.entity_of("a2")
    assert state.entity_of("a") == "e-a" != state.entity_of("x")



def test_a_merge_of_one_entity_with_itself_changes_nothing():
    """A reviewer's second click on merge: the two clippings are in one entity already."""
    state = decided(("a", A), ("a2", A2), ("x", X))
    before = (dict(state.clip_entity), dict(state.parent), {k: list(v) for k, v in state.absorbed.items()})
    applied = apply_correction(state, correction("merge", "a2", target="a"), 3, RULE, HERE, now_ms=9)
    assert applied.decision is None and applied.merged == []
    assert (state.clip_entity, state.parent, state.absorbed) == before

def test_unknown_clipping_is_refused_and_changes_nothing():
    state = decided(("a", A), ("a2", A2))
    before = (dict(state.clip_entity), dict(state.parent))
    with pytest.raises(CorrectionRefused, match="not in partition"):
        apply_correction(state, correction("reject", "nobody"), 2, RULE, HERE, now_ms=9)
    with pytest.raises(CorrectionRefused):
        apply_correction(state, correction("merge", "a", target="nobody"), 2, RULE, HERE, now_ms=9)
    assert (state.clip_entity, state.parent) == before and state.entities.apart == {}


def test_correction_needs_a_fitting_target():
    with pytest.raises(ValueError, match="merge needs target_id"):
        correction("merge", "a")
    with pytest.raises(ValueError, match="another clipping"):
        correction("reject", "a", target="a")


def test_replay_applies_recorded_corrections_where_they_were_applied():
    rng = np.random.default_rng(0)
    stream = [("a", A), ("a2", A2), ("x", X)] + [(f"n{i}", unit(A2 + 0.05 * rng.standard_normal(DIM)))
                                                 for i in range(6)]
    live = decided(*stream[:3])
    c = correction("reject", "a2")
    apply_correction(live, c, 3, RULE, HERE, now_ms=9)
    decide_batch(live, [item(cid, v, 3 + i) for i, (cid, v) in enumerate(stream[3:])], {}, RULE, now_ms=4)

    # A replay from an empty state, in other batch sizes, with the correction pending at offset 3.
    replayed = PartitionState(TOPIC, 0, DIM, "Flat", "v1")
    replayed.pending = [(3, c, HERE)]
    items = [item(cid, v, i) for i, (cid, v) in enumerate(stream)]
    for start in range(0, len(items), 2):
        decide_batch(replayed, items[start:start + 2], {}, RULE, now_ms=4,
                     due=lambda state, offset: apply_due(state, offset, RULE))
    assert {cid: replayed.entity_of(cid) for cid, _ in stream} == {cid: live.entity_of(cid) for cid, _ in stream}
    assert replayed.corrections_applied == 1 and replayed.pending == []
    assert live.entity_of("n0") == rejected_entity_id("a2", "k1")  # the copies went with the rejected clipping


def test_snapshot_keeps_cannot_links_and_the_corrections_count(tmp_path):
    state = decided(("a", A), ("a2", A2), ("x", X))
    apply_correction(state, correction("reject", "a2"), 3, RULE, HERE, now_ms=9)
    state.corrections_applied = 1
    store = SnapshotStore(tmp_path)
    store.save(state)
    loaded = store.load(TOPIC, 0, "v1", DIM, "Flat")
    assert loaded.entities.apart == state.entities.apart != {}
    assert loaded.corrections_applied == 1
    [outcome] = decide_batch(loaded, [item("a2-copy", A2, 3)], {}, RULE, now_ms=4)
    assert outcome.fresh.merged_entities == []
