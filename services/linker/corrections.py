"""The linker's side of clippings.corrections: apply each reviewer's correction once.

The topic is co-partitioned with clippings.embedded (the review page produces a correction to
its clipping's partition; the range assignor gives a linker the same partition numbers of
both), so the linker holding a block's state gets its corrections, in one batch loop with its
clippings. Per correction record:
- already in Redis (a redelivery after a crash): its correction link event is sent again, the
  state is not touched (`repeated`);
- refused (names a clipping this partition does not hold, ...): recorded, and the record goes
  to the DLQ (`refused`);
- else applied to the state (correct.py), recorded in one Redis transaction with the offset it
  was applied at, and its correction link event sent (`applied`).
A partition still being restored from its snapshot takes no correction: its records are
fetched again once the replay is done, so a correction always applies to the live state.
"""

from __future__ import annotations

import logging
from typing import Callable

from confluent_kafka import Message
from pydantic import ValidationError

from clippings.services.kafka.clients import Outbox
from clippings.services.kafka.dlq import DeadLetters
from clippings.services.linker.correct import CorrectionRefused, apply_correction, apply_due
from clippings.services.linker.decide import DecisionRule
from clippings.services.linker.partition import PartitionState
from clippings.services.linker.store import RedisState, link_event
from clippings.services.ops.logfmt import kv
from clippings.services.schemas import Correction, KafkaPosition, validation_summary

log = logging.getLogger(__name__)


class Corrections:
    def __init__(self, topic: str, topic_links: str, redis: RedisState, rule: DecisionRule, dlq: DeadLetters,
                 count: Callable[[str], None] = lambda outcome: None):
        self.topic, self.topic_links = topic, topic_links
        self.redis, self.rule, self.dlq, self._count = redis, rule, dlq, count

    def restore(self, state: PartitionState) -> None:
        """After a snapshot load: the recorded corrections it lacks become pending; those applied
        before its next record are applied now."""
        state.pending = [(e["applied_at"], Correction.model_validate(e["correction"]), KafkaPosition(**e["origin"]))
                         for e in self.redis.correction_log(state.partition, state.corrections_applied)]
        apply_due(state, state.next_offset, self.rule)
        if state.pending:
            log.info(kv("corrections_pending", partition=state.partition, count=len(state.pending),
                        first_at=state.pending[0][0]))

    def due(self, state: PartitionState, offset: int) -> None:
        apply_due(state, offset, self.rule)

    def process(self, records: list[Message], states: dict[int, PartitionState], restoring: set[int],
                outbox: Outbox, now_ms: int) -> tuple[int, list[Message]]:
        """-> (correction link events sent, records to fetch again)."""
        sent, later = 0, []
        waiting: set[int] = set()
        for msg in records:
            p = msg.partition()
            state = states.get(p)
            if state is None or p in restoring or p in waiting:
                if state is None:
                    log.error(kv("correction_without_state", partition=p, offset=msg.offset(),
                                 detail=f"{self.topic} must have as many partitions as the linker's input"))
                waiting.add(p)
                later.append(msg)
                continue
            sent += self._one(msg, state, outbox, now_ms)
        return sent, later

    def _one(self, msg: Message, state: PartitionState, outbox: Outbox, now_ms: int) -> int:
        try:
            c = Correction.model_validate_json(msg.value() or b"")
        except ValidationError as exc:
            self.dlq.send(outbox, msg, "schema", validation_summary(exc), None)
            return 0
        done = self.redis.correction(c.id)
        if done is not None:
            self._count("repeated")
            if done.get("event"):
                outbox.send(self.topic_links, done["event"].encode(), key=c.block)
                return 1
            return 0
        origin = KafkaPosition(topic=msg.topic(), partition=msg.partition(), offset=msg.offset())
        applied_at = state.next_offset
        try:
            a = apply_correction(state, c, applied_at, self.rule, origin, now_ms)
        except CorrectionRefused as exc:
            self.redis.record_refused(c, state.partition, str(exc))
            self.dlq.send(outbox, msg, "correction_refused", f"correction {c.id}: {exc}", c.clipping_id)
            self._count("refused")
            return 0
        event = link_event(a.decision).to_bytes() if a.decision is not None else None
        self.redis.record_correction(a, state.partition, applied_at, origin, event)
        state.corrections_applied += 1
        state.changed_since_snapshot += 1
        self._count("applied")
        log.info(kv("correction_applied", id=c.id, action=c.action, clipping=c.clipping_id, target=c.target_id,
                    reviewer=c.reviewer, partition=state.partition, entity=a.decision.entity_id if a.decision else None))
        if event is None:
            return 0
        outbox.send(self.topic_links, event, key=c.block)
        return 1
