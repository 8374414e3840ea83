"""Recovery of the linker's partition states: snapshot restore, the replay range, snapshots.

On assignment a partition's state is loaded from its snapshot (snapshot.py) and the topic is
replayed from the offset the snapshot covers. Two offsets bound the replay:

    snapshot offset <= record offset < committed offset   replayed, not emitted again
                       record offset >= committed offset  live: decided (or re-applied) and emitted

Records below the committed offset had their link events acknowledged before (an offset is
stored only after that), so they only rebuild the state; Redis' recorded decisions are re-applied,
never decided again (decide.py). While any partition is below its committed offset the linker is
restoring (/readyz answers 503 on `index`). On revocation the state is snapshotted; a lost
partition may have a new owner already, so nothing of it is written.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from confluent_kafka import OFFSET_BEGINNING

from clippings.services.errors import SnapshotError
from clippings.services.linker.growth import GrowthPolicy
from clippings.services.linker.partition import PartitionState
from clippings.services.linker.snapshot import SnapshotStore
from clippings.services.ops.logfmt import kv

log = logging.getLogger(__name__)


class Recovery:
    def __init__(self, snapshots: SnapshotStore, dim: int, index_spec: str, model_version: str,
                 every_events: int, interval_s: float, count: Callable[[str], None] = lambda outcome: None,
                 gpu_min_vectors: int = 0, growth: GrowthPolicy | None = None):
        self.snapshots = snapshots
        self.growth = growth  # when restored and new blocks move to approximate search
        self.gpu_min_vectors = gpu_min_vectors  # restored and new blocks move to the GPU at this size
        self.dim, self.index_spec, self.model_version = dim, index_spec, model_version
        self.every_events, self.interval_s = every_events, interval_s
        self._count = count  # one snapshot written ("ok") or failed ("error")
        self.replay_until: dict[int, int] = {}  # below: emitted and committed before this assignment
        self.restoring: set[int] = set()
        self._last_snapshot: dict[int, float] = {}

    def restore(self, topic: str, partition: int, committed: int) -> PartitionState:
        """The partition's state from its snapshot (empty without one), its replay range set."""
        state = self._load(topic, partition)
        self.replay_until[partition] = max(committed, 0)
        self._last_snapshot[partition] = time.monotonic()
        if self.replay_until[partition] > state.next_offset:
            self.restoring.add(partition)
        return state

    @staticmethod
    def start_offset(state: PartitionState) -> int:
        """Where consumption resumes: right after what the state reflects."""
        return state.next_offset if state.next_offset > 0 else OFFSET_BEGINNING

    def _load(self, topic: str, partition: int) -> PartitionState:
        try:
            state = self.snapshots.load(topic, partition, self.model_version, self.dim, self.index_spec)
        except SnapshotError as exc:
            log.error(kv("snapshot_unreadable", topic=topic, partition=partition, detail=str(exc)))
            state = None
        state = state or PartitionState(topic, partition, self.dim, self.index_spec, self.model_version)
        state.gpu_min_vectors, state.growth = self.gpu_min_vectors, self.growth
        for _, block in state.indexes():
            block.use_gpu_from(self.gpu_min_vectors)
            block.grow_with(self.growth)
        return state

    def emits(self, partition: int, offset: int) -> bool:
        """False for a replayed record: its outputs (link event, dead letter) went out before."""
        return offset >= self.replay_until[partition]

    @property
    def ready(self) -> bool:
        return not self.restoring

    def advanced(self, state: PartitionState, next_offset: int) -> None:
        """A batch up to next_offset is recorded: the state reflects it; restored once caught up."""
        p = state.partition
        state.next_offset = max(state.next_offset, next_offset)
        if p in self.restoring and state.next_offset >= self.replay_until[p]:
            self.restoring.discard(p)
            log.info(kv("restored", partition=p, offset=state.next_offset))

    def release(self, state: PartitionState | None, partition: int, snapshot: bool) -> None:
        """Revoked (snapshot=True) or lost (False: another member may own it already)."""
        self.restoring.discard(partition)
        self.replay_until.pop(partition, None)
        if state is not None and snapshot and state.changed_since_snapshot:
            self.snapshot(state)
        self._last_snapshot.pop(partition, None)

    def snapshot(self, state: PartitionState) -> None:
        try:
            path = self.snapshots.save(state)
        except SnapshotError as exc:
            self._count("error")
            log.error(kv("snapshot_failed", partition=state.partition, detail=str(exc)))
            return
        self._count("ok")
        self._last_snapshot[state.partition] = time.monotonic()
        log.info(kv("snapshot", partition=state.partition, offset=state.next_offset, path=path))

    def snapshot_due(self, states: dict[int, PartitionState]) -> None:
        """Snapshot the partitions changed by every_events records, or changed and interval_s old."""
        now = time.monotonic()
        for p, state in states.items():
            if state.changed_since_snapshot >= self.every_events or (
                state.changed_since_snapshot and now - self._last_snapshot.get(p, now) >= self.interval_s
            ):
                self.snapshot(state)
