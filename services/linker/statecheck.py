"""Noticing that Redis lost what the linker recorded there.

Redis holds the only record of the decisions (the idempotency record, the entities, their
members). Run without an append-only file, a crash of Redis brings it back from its last save,
or empty, and nothing fails: reads find less, writes succeed. The watermark makes the loss
visible. With every batch the linker raises, per partition, the next offset it has recorded
(PREFIX:watermark, never lowered), so Redis must hold at least:

- on assignment: the committed offset (a record's offset is stored only after its decision
  was recorded) and the offset the partition's snapshot covers (written after recording);
- at every batch, for every assigned partition (not only those in the batch): what this
  process found or wrote before, read inside the batch's own transaction. A loss at any
  moment, a Redis restart included, shows at the next batch (a linker with nothing to do
  sends Redis nothing, so it notices with its next batch).

Less than that: Redis lost state. The linker logs `redis_state_lost`, counts
clippings_linker_state_lost_total, answers 503 on /readyz (`redis_state`) and records the
finding in PREFIX:state_lost, where a restarted linker finds it again (and stays unready)
until an operator resolves it (docs/operations.md#clippingslinkerstatelost). It goes on
linking: its partitions' in-memory state still holds every clipping it decided, so new
decisions stay right; what Redis lost stays lost until restored.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from clippings.services.ops.logfmt import kv
from clippings.services.linker.store import RedisState

log = logging.getLogger(__name__)
RUNBOOK = "docs/operations.md#clippingslinkerstatelost"


class LostStateCheck:
    def __init__(self, redis: RedisState, topic: str, count: Callable[[], None],
                 report: Callable[[bool], None], client_id: str):
        self.redis = redis
        self.topic = topic
        self._count = count  # one more finding
        self._report = report  # True: no assigned partition has lost state
        self.client_id = client_id
        self.floor: dict[int, int] = {}  # partition -> the watermark Redis must hold at least
        self.lost: set[int] = set()

    def assigned(self, expected: dict[int, int]) -> None:
        """Partitions taken over, with what their committed offset and snapshot vouch for."""
        parts = sorted(expected)
        found = self.redis.watermarks(parts)
        marks = self.redis.lost_marks(parts)
        for p in parts:
            if p in marks:
                self._unresolved(p, marks[p])
            elif found[p] < expected[p]:
                self._found(p, expected[p], found[p], "assignment")
            self.floor[p] = max(found[p], expected[p])
        self._report(not self.lost)

    def recorded(self, before: dict[int, int], written: dict[int, int]) -> None:
        """After a batch's transaction: `before` as Redis held the watermarks inside it."""
        for p, held in before.items():
            if p in self.floor and held < self.floor[p]:
                self._found(p, self.floor[p], held, "batch")
            self.floor[p] = max(self.floor.get(p, 0), written.get(p, 0))
        self._report(not self.lost)

    def released(self, partitions: list[int]) -> None:
        for p in partitions:
            self.floor.pop(p, None)
            self.lost.discard(p)
        self._report(not self.lost)

    def _found(self, partition: int, expected: int, found: int, check: str) -> None:
        self._count()
        self.lost.add(partition)
        log.error(kv("redis_state_lost", topic=self.topic, partition=partition, expected_offset=expected,
                     found_offset=found, check=check, runbook=RUNBOOK,
                     detail="Redis no longer holds decisions this linker recorded"))
        finding = {"topic": self.topic, "expected_offset": expected, "found_offset": found, "check": check,
                   "by": self.client_id, "at_ms": int(time.time() * 1000)}
        self.redis.mark_lost(partition, finding, expected)

    def _unresolved(self, partition: int, finding: dict) -> None:
        self._count()
        self.lost.add(partition)
        log.error(kv("redis_state_lost_unresolved", topic=self.topic, partition=partition,
                     expected_offset=finding.get("expected_offset"), found_offset=finding.get("found_offset"),
                     since_ms=finding.get("at_ms"), runbook=RUNBOOK,
                     detail=f"an earlier finding is still in {self.redis.key('state_lost')}"))
