"""The replay range of a restored partition (services/linker/recovery.py), without a broker:
which records are emitted again, when the linker is ready, what a revocation clears, when a
snapshot is due. tests/test_services_recovery.py has the same through the real services."""

from __future__ import annotations

import numpy as np

from clippings.services.linker.partition import PartitionState
from clippings.services.linker.recovery import Recovery
from clippings.services.linker.snapshot import SnapshotStore

TOPIC, DIM = "clippings.embedded", 4


def recovery(tmp_path, every_events: int = 10) -> Recovery:
    return Recovery(SnapshotStore(tmp_path), DIM, "Flat", "v1", every_events=every_events, interval_s=3600)


def snapshot_at(tmp_path, offset: int) -> None:
    state = PartitionState(TOPIC, 0, DIM, "Flat", "v1", next_offset=offset)
    state.add_vectors("b", np.eye(DIM, dtype=np.float32)[:1], ["c0"])
    SnapshotStore(tmp_path).save(state)


def test_records_from_the_committed_offset_on_are_emitted_those_before_only_rebuild(tmp_path):
    r = recovery(tmp_path)
    state = r.restore(TOPIC, 0, committed=5)
    assert state.next_offset == 0 and not r.ready
    assert [r.emits(0, offset) for offset in (0, 4, 5, 6)] == [False, False, True, True]
    r.advanced(state, 4)
    assert not r.ready
    r.advanced(state, 5)  # every record below the committed offset is reflected: caught up
    assert r.ready and state.next_offset == 5
    r.advanced(state, 3)  # a late, lower report never moves the state back
    assert state.next_offset == 5


def test_a_snapshot_at_the_committed_offset_is_ready_at_once(tmp_path):
    snapshot_at(tmp_path, 7)
    r = recovery(tmp_path)
    state = r.restore(TOPIC, 0, committed=7)
    assert state.next_offset == 7 and r.ready and r.emits(0, 7)


def test_a_partition_revoked_while_restoring_no_longer_holds_readiness(tmp_path):
    r = recovery(tmp_path)
    state = r.restore(TOPIC, 0, committed=100)
    assert not r.ready
    r.release(state, 0, snapshot=False)
    assert r.ready


def test_a_snapshot_is_due_after_every_events_changes(tmp_path):
    r = recovery(tmp_path, every_events=3)
    state = r.restore(TOPIC, 0, committed=0)
    state.add_vectors("b", np.eye(DIM, dtype=np.float32)[:1], ["c0"])
    state.next_offset, state.changed_since_snapshot = 2, 2
    r.snapshot_due({0: state})
    assert SnapshotStore(tmp_path).load(TOPIC, 0, "v1", DIM, "Flat") is None
    state.next_offset, state.changed_since_snapshot = 3, 3
    r.snapshot_due({0: state})
    assert SnapshotStore(tmp_path).load(TOPIC, 0, "v1", DIM, "Flat").next_offset == 3
    assert state.changed_since_snapshot == 0
