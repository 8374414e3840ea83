"""The linker's decisions, state, snapshots and Redis record, without a broker.

The central property: whatever the arrival order and batching, the online entities equal
offline single-linkage clustering at the same threshold, and a replay changes nothing.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from clippings.evaluation.linking import single_linkage
from clippings.services.linker.decide import DecisionRule, Item, decide_batch
from clippings.services.errors import SnapshotError
from clippings.services.linker.partition import PartitionState
from clippings.services.schemas import EmbeddedClipping, KafkaPosition, LinkEvent
from clippings.services.linker.snapshot import SnapshotStore
from clippings.services.linker.store import RedisState, link_bytes, redis_client

DIM = 16
TOPIC = "clippings.embedded"


def rule(threshold: float = 0.9, search: str = "range", k: int = 32) -> DecisionRule:
    return DecisionRule(threshold=threshold, search=search, knn_k=k, neighbours_in_event=3, model_version="v1")


def clustered(seed: int, clusters: int = 25, most: int = 5, noise: float = 0.12) -> np.ndarray:
    """Unit vectors in tight groups, plus chains whose ends are apart but linked through the middle."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(clusters):
        c = rng.standard_normal(DIM)
        out += [c + noise * rng.standard_normal(DIM) for _ in range(rng.integers(1, most + 1))]
    for _ in range(4):  # chains: a - b - c with cos(a, c) below the threshold
        a, d = rng.standard_normal(DIM), rng.standard_normal(DIM) * 0.35
        out += [a, a + d, a + 2 * d]
    v = np.array(out, np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def items_of(vectors: np.ndarray, order: np.ndarray, block: str = "b", partition: int = 0,
             patterns: np.ndarray | None = None) -> list[Item]:
    """patterns: modality.CODES per vector (default: every clipping complete)."""
    items = []
    for offset, i in enumerate(order):
        code = 0 if patterns is None else int(patterns[i])
        ev = EmbeddedClipping(id=f"c{i}", block=block, model="m", model_version="v1", dim=DIM,
                              vector=EmbeddedClipping.pack(vectors[i]), has_image=code != 1, has_text=code != 2,
                              origin=KafkaPosition(topic="clippings.raw", partition=0, offset=int(i)),
                              raw_ts_ms=1, embedded_ts_ms=2)
        items.append(Item(KafkaPosition(topic=TOPIC, partition=partition, offset=offset), ev, ev.array()))
    return items


def run(state: PartitionState, items: list[Item], batch_sizes, r: DecisionRule, recorded=None):
    outcomes, start, sizes = [], 0, iter(batch_sizes)
    while start < len(items):
        n = next(sizes)
        outcomes += decide_batch(state, items[start : start + n], recorded or {}, r, now_ms=3)
        start += n
    return outcomes


def new_state() -> PartitionState:
    return PartitionState(TOPIC, 0, DIM, "Flat", "v1")


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("threshold", [0.8, 0.9])
def test_online_entities_equal_offline_single_linkage(seed, threshold):
    vectors = clustered(seed)
    rng = np.random.default_rng(seed + 100)
    order = rng.permutation(len(vectors))
    state = new_state()
    outcomes = run(state, items_of(vectors, order), iter(lambda: int(rng.integers(1, 9)), None), rule(threshold))
    online = [state.entity_of(f"c{i}") for i in range(len(vectors))]
    offline = single_linkage(vectors, threshold)
    assert adjusted_rand_score(offline, online) == 1.0
    assert len(set(online)) == len(set(offline))
    # Each decision is consistent: a duplicate has a neighbour at or above the threshold.
    for o in outcomes:
        link = o.fresh
        assert link.is_duplicate == (link.matched_id is not None)
        assert link.similarity is None or link.similarity >= threshold - 1e-6


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clippings_missing_a_modality_are_held_to_their_cuts_online_as_offline(seed, tmp_path):
    """A third of the clippings lack their photo or caption: a caption alone links to a complete
    clipping at 0.7, a photo alone at 0.95, like clippings at 0.9, a caption alone never to a
    photo alone; the online entities are offline single linkage with the same pair cuts."""
    vectors = clustered(seed, noise=0.3)
    rng = np.random.default_rng(seed + 200)
    patterns = rng.choice(3, size=len(vectors), p=[0.6, 0.25, 0.15])
    order = rng.permutation(len(vectors))
    r = DecisionRule(threshold=0.9, search="range", knn_k=32, neighbours_in_event=3, model_version="v1",
                     text_only=0.7, image_only=0.95)
    state = new_state()
    outcomes = run(state, items_of(vectors, order, patterns=patterns), iter(lambda: int(rng.integers(1, 9)), None), r)
    partial_ids = {f"c{i}" for i, p in enumerate(patterns) if p}
    online = [state.entity_of(f"c{i}") for i in range(len(vectors))]
    offline = single_linkage(vectors, 0.9, patterns, text_only=0.7, image_only=0.95)
    assert adjusted_rand_score(offline, online) == 1.0
    assert len(set(offline)) != len(set(single_linkage(vectors, 0.9)))  # the pair cuts changed the entities
    partial = {f"c{i}": ("", "text", "image")[p] for i, p in enumerate(patterns) if p}
    assert state.partial == partial
    # Indexed apart, so a complete clipping searches the complete ones only down to its own cut.
    assert sorted(state.partial_blocks["b"].ids) == sorted(partial)
    assert sorted(state.blocks["b"].ids) == sorted(f"c{i}" for i in range(len(vectors)) if f"c{i}" not in partial)

    store = SnapshotStore(tmp_path)
    state.next_offset = len(vectors)
    store.save(state)
    loaded = store.load(TOPIC, 0, "v1", DIM, "Flat")
    assert loaded.partial == state.partial and loaded.partial_blocks["b"].ids == state.partial_blocks["b"].ids
    assert loaded.blocks["b"].ids == state.blocks["b"].ids
    for o in outcomes:  # each event names the cut of its clipping against a complete one
        assert o.fresh.threshold == {0: 0.9, 1: 0.7, 2: 0.95}[int(patterns[int(o.fresh.id[1:])])]
        if patterns[int(o.fresh.id[1:])] == 0:  # the complete ones were searched only down to 0.9
            assert all(n.similarity >= 0.9 - 1e-6 for n in o.fresh.neighbours if n.id not in partial_ids)


def test_batching_does_not_change_the_outcome():
    vectors = clustered(5)
    order = np.random.default_rng(5).permutation(len(vectors))
    one_by_one, all_at_once = new_state(), new_state()
    a = run(one_by_one, items_of(vectors, order), iter(lambda: 1, None), rule())
    b = run(all_at_once, items_of(vectors, order), iter(lambda: len(vectors), None), rule())
    # Similarities agree to float32 rounding (FAISS and the batch's Gram matrix add in another order).
    decision = lambda o: (o.fresh.entity_id, o.fresh.is_duplicate, o.fresh.matched_id, o.fresh.merged_entities,
                          [n.id for n in o.fresh.neighbours], round(o.fresh.similarity or 0, 4))
    assert [decision(o) for o in a] == [decision(o) for o in b]
    assert one_by_one.clip_entity == all_at_once.clip_entity and one_by_one.parent == all_at_once.parent


@pytest.mark.parametrize("search, k", [("range", 32), ("knn", 2)])
def test_bridge_merges_into_the_older_entity(search, k):
    """knn with k = 2: the bridge's two neighbours are both its candidates, so both entities join."""
    a = np.zeros(DIM, np.float32); a[0] = 1
    c = np.zeros(DIM, np.float32); c[1] = 1
    b = (a + c) / np.linalg.norm(a + c)  # cos(a, b) = cos(b, c) = 0.707, cos(a, c) = 0
    vectors = np.stack([a, c, b])
    state = new_state()
    out = run(state, items_of(vectors, np.array([0, 1, 2])), iter(lambda: 1, None), rule(0.7, search, k))
    assert [o.created for o in out] == ["e-c0", "e-c1", None]
    bridge = out[2].fresh
    assert bridge.is_duplicate and bridge.entity_id == "e-c0" and bridge.merged_entities == ["e-c1"]
    assert {n.entity_id for n in bridge.neighbours} == {"e-c0", "e-c1"}
    assert {state.entity_of(f"c{i}") for i in range(3)} == {"e-c0"}


def test_replay_with_recorded_decisions_rebuilds_the_same_state_without_deciding():
    vectors = clustered(3)
    items = items_of(vectors, np.random.default_rng(3).permutation(len(vectors)))
    first = new_state()
    outcomes = run(first, items, iter(lambda: 7, None), rule())
    recorded = {o.item.event.id: link_bytes(o) for o in outcomes}
    again = new_state()
    replayed = run(again, items, iter(lambda: 5, None), rule(), recorded=recorded)
    assert all(o.fresh is None for o in replayed)
    assert [link_bytes(o) for o in replayed] == [link_bytes(o) for o in outcomes]
    assert again.clip_entity == first.clip_entity and again.parent == first.parent and again.seq == first.seq
    assert len(again.blocks["b"]) == len(vectors)


def test_a_repeated_clipping_is_re_emitted_not_added():
    vectors = clustered(4)[:6]
    state = new_state()
    items = items_of(vectors, np.arange(6))
    first = run(state, items, iter(lambda: 6, None), rule())
    recorded = {o.item.event.id: link_bytes(o) for o in first}
    repeat = run(state, items[2:4] + items[2:3], iter(lambda: 3, None), rule(), recorded=recorded)
    assert [link_bytes(o) for o in repeat] == [link_bytes(first[2]), link_bytes(first[3]), link_bytes(first[2])]
    assert all(o.fresh is None for o in repeat) and len(state.blocks["b"]) == 6
    # Redis lost the record: the state still answers with the same entity, and nothing is added.
    lost = run(state, items[2:3], iter(lambda: 1, None), rule())
    assert LinkEvent.model_validate_json(link_bytes(lost[0])).entity_id == first[2].fresh.entity_id
    assert len(state.blocks["b"]) == 6



def test_a_clipping_twice_in_one_batch_is_decided_once():
    """A producer's retry can put one record twice into one batch, before anything is recorded:
    the second copy is re-emitted with the first's decision, never matched to itself."""
    vectors = clustered(4)[:3]
    items = items_of(vectors, np.arange(3))
    state = new_state()
    out = run(state, [items[0], items[1], items[0]], iter(lambda: 3, None), rule())
    assert out[2].fresh is None and link_bytes(out[2]) == link_bytes(out[0])
    assert out[0].fresh.matched_id != "c0" and len(state.blocks["b"]) == 2


@pytest.mark.parametrize("batch", [1, 2])
def test_a_near_miss_is_named_whether_or_not_it_came_in_the_same_batch(batch):
    a = np.zeros(DIM, np.float32); a[0] = 1
    b = np.zeros(DIM, np.float32); b[0], b[1] = 0.85, np.sqrt(1 - 0.85**2)  # cos(a, b) = 0.85
    wide = DecisionRule(threshold=0.9, search="range", knn_k=32, neighbours_in_event=3, model_version="v1", near=0.1)
    out = run(new_state(), items_of(np.stack([a, b]), np.array([0, 1])), iter(lambda: batch, None), wide)
    assert not out[1].fresh.is_duplicate
    assert [(n.id, round(n.similarity, 4)) for n in out[1].fresh.neighbours] == [("c0", 0.85)]

def test_recorded_decision_of_another_partition_is_only_re_emitted():
    vectors = clustered(6)[:3]
    elsewhere = PartitionState(TOPIC, 1, DIM, "Flat", "v1")
    out = run(elsewhere, items_of(vectors, np.arange(3), partition=1), iter(lambda: 3, None), rule())
    recorded = {o.item.event.id: link_bytes(o) for o in out}
    here = new_state()
    again = run(here, items_of(vectors, np.arange(3)), iter(lambda: 3, None), rule(), recorded=recorded)
    assert [link_bytes(o) for o in again] == [link_bytes(o) for o in out]
    assert "b" not in here.blocks or len(here.blocks["b"]) == 0


def test_blocks_never_link_across():
    v = clustered(7)[:2]
    v[1] = v[0]
    state = new_state()
    items = items_of(v[:1], np.array([0]), block="b1") + items_of(v[1:], np.array([0]), block="b2")
    items[1] = Item(KafkaPosition(topic=TOPIC, partition=0, offset=1),
                    items[1].event.model_copy(update={"id": "twin"}), items[1].vector)
    out = run(state, items, iter(lambda: 2, None), rule())
    assert [o.fresh.is_duplicate for o in out] == [False, False]


def test_knn_with_a_large_k_equals_range_search():
    vectors = clustered(8)
    order = np.random.default_rng(8).permutation(len(vectors))
    by_range, by_knn = new_state(), new_state()
    run(by_range, items_of(vectors, order), iter(lambda: 4, None), rule())
    run(by_knn, items_of(vectors, order), iter(lambda: 4, None), rule(search="knn", k=len(vectors)))
    assert by_range.parent == by_knn.parent and by_range.clip_entity == by_knn.clip_entity


def test_snapshot_round_trip(tmp_path):
    vectors = clustered(9)
    state = new_state()
    run(state, items_of(vectors, np.arange(len(vectors))), iter(lambda: 10, None), rule())
    state.next_offset = len(vectors)
    store = SnapshotStore(tmp_path)
    assert state.changed_since_snapshot == len(vectors)
    store.save(state)
    assert state.changed_since_snapshot == 0
    pdir = store.partition_dir(TOPIC, 0)
    (pdir / ".snap-00000000000000000007-deadbeef.tmp").mkdir()  # left by a save a crash cut short
    store.save(state)  # the second replaces the first
    assert len([p for p in pdir.iterdir() if p.name.startswith("snap-")]) == 1
    assert not [p for p in pdir.iterdir() if p.name.endswith(".tmp")]
    loaded = store.load(TOPIC, 0, "v1", DIM, "Flat")
    assert loaded.next_offset == len(vectors) and loaded.clip_entity == state.clip_entity
    assert loaded.parent == state.parent and loaded.seq == state.seq
    assert {k: sorted(v) for k, v in loaded.absorbed.items()} == {k: sorted(v) for k, v in state.absorbed.items()}
    q = vectors[:5]
    assert loaded.blocks["b"].search(q, "range", 0.9, 8) == state.blocks["b"].search(q, "range", 0.9, 8)
    assert store.load(TOPIC, 0, "v2", DIM, "Flat") is None  # another model: start over
    assert store.load(TOPIC, 0, "v1", DIM, "HNSW32") is None  # another index pinned: the same
    assert store.load(TOPIC, 0, "v1", DIM + 1, "Flat") is None
    assert store.load(TOPIC, 1, "v1", DIM, "Flat") is None  # no snapshot
    current = (pdir / "CURRENT").read_text()
    (pdir / current / "state.json").write_text("{broken")
    with pytest.raises(SnapshotError):
        store.load(TOPIC, 0, "v1", DIM, "Flat")


def test_entities_union_find_merges_into_the_given_root_and_lists_what_moved():
    from clippings.services.linker.partition import Entities

    ents = Entities()
    for seq, e in enumerate("abcd"):
        ents.add(e, seq)
    assert ents.merge("a", "b") == ["b"]
    assert ents.merge("c", "d") == ["d"]
    assert ents.merge("a", "c") == ["c", "d"]  # c and what it had absorbed
    assert {e: ents.root(e) for e in "abcd"} == dict.fromkeys("abcd", "a") and len(ents) == 1
    assert ents.oldest({"a", "c"}) == "a"
    # A reader of link events adds entities as it meets them.
    assert ents.union("x", "y") == "x" and ents.find("y") == "x" and ents.find("z") == "z" and len(ents) == 3



def test_a_cannot_link_moves_with_a_merge_and_holds_in_either_order():
    """A reviewer kept a apart from f; a decision then merged a into the older i: i is apart
    from f now, whichever of the two a later clipping finds more similar."""
    from clippings.services.linker.partition import Entities

    ents = Entities()
    for seq, e in enumerate("iaf"):
        ents.add(e, seq)
    ents.separate("a", "f")
    ents.merge("i", "a")
    assert ents.compatible(["f", "i"]) == ["f"] and ents.compatible(["i", "f"]) == ["i"]


def test_a_root_joins_only_if_apart_from_none_chosen_before_it():
    from clippings.services.linker.partition import Entities

    ents = Entities()
    for seq, e in enumerate("xyz"):
        ents.add(e, seq)
    ents.separate("y", "z")  # z is apart from the second choice, not the first
    assert ents.compatible(["x", "y", "z"]) == ["x", "y"] and ents.compatible(["z", "x", "y"]) == ["z", "x"]

def test_recovery_replays_up_to_the_committed_offset(tmp_path):
    from confluent_kafka import OFFSET_BEGINNING

    from clippings.services.linker.recovery import Recovery

    counted = []
    recovery = Recovery(SnapshotStore(tmp_path), DIM, "Flat", "v1", every_events=4, interval_s=3600,
                        count=counted.append)
    state = recovery.restore(TOPIC, 0, committed=3)  # no snapshot: from the start
    assert Recovery.start_offset(state) == OFFSET_BEGINNING and not recovery.ready
    assert [recovery.emits(0, o) for o in range(5)] == [False, False, False, True, True]
    run(state, items_of(clustered(1), np.arange(3)), iter([3]), rule())
    recovery.advanced(state, 3)
    assert recovery.ready and state.next_offset == 3
    recovery.release(state, 0, snapshot=True)  # revoked: snapshotted
    assert counted == ["ok"]
    again = recovery.restore(TOPIC, 0, committed=3)
    assert again.next_offset == 3 and Recovery.start_offset(again) == 3 and recovery.ready
    assert again.clip_entity == state.clip_entity


def test_redis_records_assignments_membership_and_merges(redis_url, redis_prefix):
    a = np.zeros(DIM, np.float32); a[0] = 1
    c = np.zeros(DIM, np.float32); c[1] = 1
    b = (a + c) / np.linalg.norm(a + c)
    lone = np.zeros(DIM, np.float32); lone[2] = 1
    vectors = np.stack([a, c, lone, b])
    state = new_state()
    outcomes = run(state, items_of(vectors, np.arange(4)), iter(lambda: 2, None), rule(0.7))
    store = RedisState(redis_client(redis_url), redis_prefix)
    store.record(outcomes, {0: 4})
    store.record(outcomes, {0: 4})  # a retried transaction changes nothing
    ids = [f"c{i}" for i in range(4)]
    assert store.current_entities(ids) == {cid: state.entity_of(cid) for cid in ids}
    assert store.members("e-c0") == {"c0", "c1", "c3"} and store.members("e-c1") == set()
    assert store.members("e-c2") == {"c2"}
    assert store.entity_count() == 2 and store.decision_count() == 4
    decided = store.decisions(ids + ["unknown"])
    assert set(decided) == set(ids)
    assert LinkEvent.model_validate_json(decided["c3"]).merged_entities == ["e-c1"]
    merge = json.loads(store.client.hget(f"{redis_prefix}:merges", "e-c1"))
    assert merge["into"] == "e-c0" and merge["by"] == "c3"
    assert store.client.hget(f"{redis_prefix}:watermark", "0") == b"4"


# -- the boundary, the match, repeats --------------------------------------------------------
def at_cosine(cosine: np.float32, axis: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors whose float32 inner product is exactly `cosine` (any summation order:
    every other product is 0); the second leans towards `axis`."""
    a = np.zeros(DIM, np.float32); a[0] = 1
    b = np.zeros(DIM, np.float32); b[0] = cosine; b[axis] = np.sqrt(np.float32(1) - cosine * cosine)
    assert np.float32(a @ b) == cosine and abs(float(b @ b) - 1) < 1e-6
    return a, b


@pytest.mark.parametrize("path", ["batch", "range", "knn"])
def test_a_pair_exactly_at_the_threshold_links_and_one_float_below_does_not(path):
    t = np.float32(0.85)
    below = np.nextafter(t, np.float32(-np.inf))
    a, b = at_cosine(t)
    _, c = at_cosine(below, axis=2)  # cos(b, c) = t * below: far apart
    vectors = np.stack([a, b, c])
    state = new_state()
    sizes = iter(lambda: 3, None) if path == "batch" else iter([1, 2])  # batch: the Gram matrix; else FAISS
    out = run(state, items_of(vectors, np.arange(3)), sizes, rule(float(t), search="knn" if path == "knn" else "range"))
    at, under = out[1].fresh, out[2].fresh
    assert at.is_duplicate and at.matched_id == "c0" and at.entity_id == "e-c0"
    assert at.similarity == round(float(t), 6)
    assert not under.is_duplicate and under.entity_id == "e-c2"
    # The index alone, as the range filter sees it.
    index = state.blocks["b"]
    assert ("c0", float(t)) in index.search(b[None], "range", float(t), 8)[0]
    assert "c0" not in {cid for cid, _ in index.search(c[None], "range", float(t), 8)[0]}


def fan(similarities: list[float]) -> np.ndarray:
    """A query (row 0) and one vector per similarity, each on its own axis (cos to the query as given)."""
    q = np.zeros(DIM, np.float32); q[0] = 1
    rows = [q]
    for i, s in enumerate(similarities):
        v = np.zeros(DIM, np.float32); v[0] = s; v[i + 1] = np.sqrt(1 - s * s)
        rows.append(v)
    return np.stack(rows)


@pytest.mark.parametrize("path", ["batch", "range", "knn", "mixed"])
def test_the_match_is_the_most_similar_neighbour(path):
    sims = [0.93, 0.99, 0.91, 0.96]
    vectors = fan(sims)
    order = np.array([1, 2, 3, 4, 0])  # the neighbours first, the query last
    sizes = {"batch": [5], "range": [4, 1], "knn": [4, 1], "mixed": [2, 3]}[path]
    state = new_state()
    out = run(state, items_of(vectors, order), iter(sizes), rule(0.9, search="knn" if path == "knn" else "range"))
    query = out[-1].fresh
    assert query.matched_id == "c2" and query.similarity == 0.99
    assert [n.id for n in query.neighbours] == ["c2", "c4", "c1"]  # neighbours_in_event=3, most similar first
    assert [n.similarity for n in query.neighbours] == [0.99, 0.96, 0.93]


def test_index_hits_come_most_similar_first():
    vectors = fan([0.93, 0.99, 0.91, 0.96])
    index = new_state().block("b")
    index.add(vectors[1:], ["n1", "n2", "n3", "n4"])
    for mode in ("range", "knn"):
        hits = index.search(vectors[:1], mode, 0.9, 8)[0]
        assert [cid for cid, _ in hits] == ["n2", "n4", "n1", "n3"], mode


def test_a_decision_re_emitted_from_the_state_keeps_its_entity_and_flag(caplog):
    a, b = at_cosine(np.float32(0.95))
    state = new_state()
    items = items_of(np.stack([a, b]), np.arange(2))
    first = run(state, items, iter([2]), rule())
    assert [o.fresh.is_duplicate for o in first] == [False, True]
    # Redis lost both records: the state answers, with the same entity and the same flag.
    again = run(state, items, iter([2]), rule())
    for o, before in zip(again, first):
        link = LinkEvent.model_validate_json(link_bytes(o))
        assert (link.entity_id, link.is_duplicate) == (before.fresh.entity_id, before.fresh.is_duplicate)
    assert "decision_missing_in_redis" in caplog.text
    # A replay of recorded decisions onto an empty state is consistent: nothing to report.
    caplog.clear()
    replayed = run(new_state(), items, iter([1, 1]), rule(), recorded={o.item.event.id: link_bytes(o) for o in first})
    assert [link_bytes(o) for o in replayed] == [link_bytes(o) for o in first]
    assert "state_mismatch" not in caplog.text


def test_one_clipping_in_two_partitions_of_one_batch_is_decided_once():
    from clippings.services.linker.decide import decide_partitions

    a, b = at_cosine(np.float32(0.95))
    # Partition 0: "x" alone in block p (founds e-x). Partition 1: "y", then "x" under block q
    # with y's vector (it would join e-y if decided there).
    p0 = items_of(np.stack([a]), np.array([0]), block="p", partition=0)
    p0[0] = Item(p0[0].position, p0[0].event.model_copy(update={"id": "x"}), p0[0].vector)
    p1 = items_of(np.stack([b, b]), np.array([0, 1]), block="q", partition=1)
    p1 = [Item(it.position, it.event.model_copy(update={"id": cid}), it.vector) for it, cid in zip(p1, ["y", "x"])]
    states = {0: new_state(), 1: PartitionState(TOPIC, 1, DIM, "Flat", "v1")}
    out = decide_partitions(states, {0: p0, 1: p1}, {}, rule(), now_ms=3)
    x0, x1 = out[0][0], out[1][1]
    assert x0.fresh is not None and x0.fresh.entity_id == "e-x"
    assert x1.fresh is None and link_bytes(x1) == link_bytes(x0)  # re-emitted, as a later batch would
    assert not states[1].knows("x") and len(states[1].blocks["q"]) == 1


@pytest.mark.parametrize("search", ["range", "knn"])
def test_near_misses_are_named_but_never_joined(search):
    """With neighbours_below, a link event also names clippings just under the threshold; the
    entities are those of a linker that searches at the threshold alone."""
    vectors = clustered(3)
    order = np.random.default_rng(7).permutation(len(vectors))
    plain, near = new_state(), new_state()
    out_plain = run(plain, items_of(vectors, order), iter(lambda: 5, None), rule(0.9, search))
    wide = DecisionRule(threshold=0.9, search=search, knn_k=32, neighbours_in_event=3, model_version="v1", near=0.1)
    out_near = run(near, items_of(vectors, order), iter(lambda: 5, None), wide)
    assert [plain.entity_of(f"c{i}") for i in order] == [near.entity_of(f"c{i}") for i in order]
    named_below = 0
    for a, b in zip(out_plain, out_near):
        assert (a.fresh.is_duplicate, a.fresh.matched_id, a.fresh.merged_entities) == \
               (b.fresh.is_duplicate, b.fresh.matched_id, b.fresh.merged_entities)
        assert all(n.similarity >= 0.8 - 1e-6 for n in b.fresh.neighbours)
        below = [n for n in b.fresh.neighbours if n.similarity < 0.9]
        named_below += len(below)
        if not b.fresh.is_duplicate and below:  # a new entity, with its nearest miss named
            assert b.fresh.matched_id is None and b.fresh.entity_id == f"e-{b.fresh.id}"
    assert named_below > 0
