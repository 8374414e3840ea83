"""The linker: clippings.embedded -> clippings.links, one sequential state machine per partition.

The link step of the batch loop (kafka/loop.py): parse, one Redis read (which clippings are
already decided), per partition one FAISS search per block and the decisions (decide.py), one
Redis transaction recording them (store.py), one produce loop of their link events; the loop
waits for the acks and stores the offsets; then a snapshot when due.

Recovery (recovery.py): on assignment a partition's state is loaded from its snapshot and the
topic replayed from there; replayed records are re-applied, and those below the committed offset
are not emitted again. On revocation the state is snapshotted.

Redis losing what was recorded (a crash without an append-only file) is noticed on assignment
and in every batch's transaction (statecheck.py): logged, counted, and /readyz answers 503.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from contextlib import ExitStack

import numpy as np
from confluent_kafka import Consumer, Message, TopicPartition
from pydantic import ValidationError

from clippings.errors import ConfigError
from clippings.runtime.manifest import Manifest
from clippings.runtime.onnx_model import resolve_model
from clippings.runtime.probability import reference_cuts
from clippings.services.config import LinkerSettings
from clippings.services.kafka.clients import BrokerWatch, Outbox
from clippings.services.kafka.dlq import DeadLetters
from clippings.services.kafka.loop import BatchService, Sent, Step
from clippings.services.linker.corrections import Corrections
from clippings.services.linker.decide import DecisionRule, Item, Outcome, decide_partitions
from clippings.services.linker.growth import GrowthPolicy
from clippings.services.linker.index import configure_faiss, new_faiss_index
from clippings.services.linker.partition import PartitionState
from clippings.services.linker.recovery import Recovery
from clippings.services.linker.snapshot import SnapshotStore
from clippings.services.linker.statecheck import LostStateCheck
from clippings.services.linker.store import RedisState, link_bytes
from clippings.services.ops.health import Health
from clippings.services.ops.logfmt import kv
from clippings.services.ops.metrics import ServiceMetrics
from clippings.services.schemas import EmbeddedClipping, KafkaPosition, validation_summary

log = logging.getLogger(__name__)


def decision_rule(s: LinkerSettings, manifest: Manifest) -> DecisionRule:
    if s.threshold is not None:
        threshold = s.threshold
    elif s.threshold_kind in manifest.thresholds:
        threshold = manifest.thresholds[s.threshold_kind]
    else:
        raise ConfigError(f"model {manifest.name} has no {s.threshold_kind!r} threshold; set CLIPPINGS_THRESHOLD")
    # The cuts of clippings missing a modality come from the manifest even when the threshold is set.
    return DecisionRule(threshold, s.search, s.knn_k, s.neighbours_in_event, manifest.version, s.neighbours_below,
                        manifest.thresholds.get("text_only"), manifest.thresholds.get("image_only"),
                        manifest.match_probability, reference_cuts(manifest))


class LinkerService(BatchService):
    stage = "linker"
    conditions = ("model", "broker", "redis", "index")

    def __init__(self, settings: LinkerSettings):
        super().__init__(settings)
        self.health.set("redis_state", True)  # False while Redis misses state it had (statecheck.py)

    def open(self, stack: ExitStack, watch: BrokerWatch) -> "LinkStep":
        s, m = self.settings, self.metrics
        manifest = Manifest.load(resolve_model(s.model))
        rule = decision_rule(s, manifest)
        new_faiss_index(manifest.served_dim, s.index_spec)  # a bad index_spec fails here, not mid-stream
        configure_faiss(s.faiss_threads, s.faiss_blas_min_queries, manifest.served_dim)
        m.model_info.labels(manifest.name, manifest.version, "-").set(1)
        self.health.set("model", True)
        redis = RedisState.from_settings(s, on_reachable=lambda ok: self.health.set("redis", ok))
        redis.ping()
        _check_durability(redis)
        check = LostStateCheck(redis, s.topic_embedded, m.state_lost.inc,
                               lambda ok: self.health.set("redis_state", ok), s.kafka_client_id)
        recovery = Recovery(SnapshotStore(s.snapshot_dir), manifest.served_dim, s.index_spec, manifest.version,
                            s.snapshot_every_events, s.snapshot_interval_s, lambda r: m.snapshots.labels(r).inc(),
                            gpu_min_vectors=s.faiss_gpu_min_vectors if s.search == "knn" else 0,  # no GPU range search
                            growth=GrowthPolicy(s.index_grow_at, rule.lowest, s.index_recall_target, s.index_nprobe)
                            if s.index_grow_at > 0 else None)
        dlq = DeadLetters(s.topic_dlq, "linker", s.kafka_client_id, m)
        corrections = Corrections(s.topic_corrections, s.topic_links, redis, rule, dlq,
                                  lambda outcome: m.corrections.labels(outcome).inc())
        log.info(kv("linker_ready_to_join", model=manifest.name, version=manifest.version, threshold=rule.threshold,
                    search=s.search, index=s.index_spec, metrics_port=self.http.port))
        return LinkStep(s, m, self.health, manifest, rule, redis, check, recovery, dlq, corrections)


def _check_durability(redis: RedisState) -> None:
    """Without an append-only file a Redis crash silently drops the decisions since its last save."""
    appendonly, detail = redis.appendonly()
    if appendonly is None:
        log.warning(kv("redis_durability_unknown", detail=f"could not read Redis' appendonly setting ({detail}); "
                       "make sure it is yes, or a Redis crash loses decisions"))
    elif appendonly != "yes":
        log.warning(kv("redis_not_durable", appendonly=appendonly,
                       detail="a Redis crash loses the decisions since its last save; run Redis with appendonly yes"))


def _check_copartitioned(partitions: list[TopicPartition], topic_in: str) -> None:
    """Each corrections partition comes with the input partition of its number, or its
    corrections could never apply: the topics must have as many partitions (docs/events.md)."""
    inputs = {tp.partition for tp in partitions if tp.topic == topic_in}
    stray = sorted(f"{tp.topic}/{tp.partition}" for tp in partitions if tp.topic != topic_in and tp.partition not in inputs)
    if stray:
        raise ConfigError(f"assigned {', '.join(stray)} without the {topic_in} partition of the same number: "
                          f"give the corrections topic as many partitions as {topic_in}")


class LinkStep(Step):
    def __init__(self, s: LinkerSettings, metrics: ServiceMetrics, health: Health, manifest: Manifest,
                 rule: DecisionRule, redis: RedisState, check: LostStateCheck, recovery: Recovery, dlq: DeadLetters,
                 corrections: Corrections):
        self.topic_in, self.topics_out = s.topic_embedded, (s.topic_links, s.topic_dlq)
        self.topics_also_in = (s.topic_corrections,)
        self.metrics, self.health, self.manifest, self.rule = metrics, health, manifest, rule
        self.redis, self.check, self.recovery, self.dlq = redis, check, recovery, dlq
        self.corrections = corrections
        self.states: dict[int, PartitionState] = {}

    # -- rebalancing -------------------------------------------------------------------------
    def assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        _check_copartitioned(partitions, self.topic_in)
        partitions = [tp for tp in partitions if tp.topic == self.topic_in]  # corrections: the committed offset
        committed = consumer.committed(partitions, timeout=30) if partitions else []
        vouched: dict[int, int] = {}  # what Redis must hold: every record below was recorded there
        for tp, c in zip(partitions, committed):
            state = self.states[tp.partition] = self.recovery.restore(tp.topic, tp.partition, c.offset)
            self.corrections.restore(state)
            tp.offset = self.recovery.start_offset(state)
            log.info(kv("assigned", topic=tp.topic, partition=tp.partition, snapshot_offset=state.next_offset,
                        committed=c.offset, vectors=sum(len(b) for _, b in state.indexes()),
                        entities=state.entity_count()))
            self._set_index_gauges(state)
            vouched[tp.partition] = max(c.offset, state.next_offset, 0)
        self.check.assigned(vouched)
        self.health.set("index", self.recovery.ready)

    def revoked(self, partitions: list[TopicPartition]) -> None:
        self._release(partitions, snapshot=True)

    def lost(self, partitions: list[TopicPartition]) -> None:
        self._release(partitions, snapshot=False)

    def _release(self, partitions: list[TopicPartition], snapshot: bool) -> None:
        partitions = [tp for tp in partitions if tp.topic == self.topic_in]
        for tp in partitions:
            state = self.states.pop(tp.partition, None)
            self.recovery.release(state, tp.partition, snapshot)
            if state is not None:
                for block, index in state.indexes():
                    self.metrics.index_vectors.remove(str(tp.partition), block)
                    self.metrics.index_approximate.remove(str(tp.partition), block)
                    if index.link_recall is not None:
                        self.metrics.index_link_recall.remove(str(tp.partition), block)
        self.check.released([tp.partition for tp in partitions])

    def after_poll(self) -> None:
        self.recovery.snapshot_due(self.states)

    def abandon(self) -> None:
        # A batch may have been decided in memory but not recorded: never snapshot that.
        self.states.clear()

    # -- the batch ---------------------------------------------------------------------------
    def process(self, records: list[Message], outbox: Outbox) -> Sent:
        m = self.metrics
        # A batch's corrections apply before its clippings: at the partition's next offset.
        corrected, retry = self.corrections.process([r for r in records if r.topic() != self.topic_in], self.states,
                                                    self.recovery.restoring, outbox, int(time.time() * 1000))
        records = [r for r in records if r.topic() == self.topic_in]
        items, next_offsets = self._items(records, outbox)
        with m.step("redis"):
            recorded = self.redis.decisions(sorted({it.event.id for its in items.values() for it in its}))
        now_ms = int(time.time() * 1000)
        with m.step("decide"):
            # Partitions in the order of their first record in the batch: the first to meet a
            # clipping id decides it, the others re-emit that decision.
            outcomes = decide_partitions(self.states, items, recorded, self.rule, now_ms, self._observe_search,
                                         self.corrections.due)
        with m.step("redis"):
            # Every assigned partition's watermark is checked (0: not raised) in the batch's transaction.
            watermarks = {p: next_offsets.get(p, 0) for p in self.states}
            before = self.redis.record([o for os_ in outcomes.values() for o in os_], watermarks)
        self.check.recorded(before, watermarks)
        for p, offset in next_offsets.items():
            self.recovery.advanced(self.states[p], offset)
        self.health.set("index", self.recovery.ready)
        emitted = [o for p, os_ in outcomes.items() for o in os_ if self.recovery.emits(p, o.item.position.offset)]
        for o in emitted:  # the loop times the produce (the wait for the acks)
            # Keyed by block, not by clipping: a block's decisions stay in decision order
            # for every consumer, so a merge never arrives before the entities it names.
            outbox.send(self.topics_out[0], link_bytes(o), key=o.item.event.block)
        self._count_decisions(outcomes)
        return Sent(len(emitted) + corrected, lambda: self._observe_latency(emitted), tuple(retry))

    def _items(self, records: list[Message], outbox: Outbox) -> tuple[dict[int, list[Item]], dict[int, int]]:
        """The batch's valid items by partition, and each partition's next offset."""
        items: dict[int, list[Item]] = defaultdict(list)
        next_offsets: dict[int, int] = {}
        for msg in records:
            p = msg.partition()
            next_offsets[p] = max(next_offsets.get(p, 0), msg.offset() + 1)
            item = self._valid_item(outbox, msg, emit=self.recovery.emits(p, msg.offset()))
            if item is not None:
                items[p].append(item)
        return items, next_offsets

    def _valid_item(self, outbox: Outbox, msg: Message, emit: bool) -> Item | None:
        def reject(reason: str, detail: str, cid: str | None) -> None:
            if emit:  # a replayed record went to the DLQ the first time
                self.dlq.send(outbox, msg, reason, detail, cid)

        try:
            event = EmbeddedClipping.model_validate_json(msg.value() or b"")
        except ValidationError as exc:
            reject("schema", validation_summary(exc), None)
            return None
        if event.model_version != self.rule.model_version:
            reject("model_mismatch", f"embedded by {event.model}@{event.model_version}, "
                   f"the index holds {self.manifest.name}@{self.rule.model_version}", event.id)
            return None
        vector = event.array()
        if event.dim != self.manifest.served_dim or not np.all(np.isfinite(vector)) \
                or abs(float(np.dot(vector, vector)) - 1.0) > 1e-3:
            reject("vector_invalid", f"dim {event.dim} (want {self.manifest.served_dim}), "
                   "values must be finite with unit norm", event.id)
            return None
        position = KafkaPosition(topic=msg.topic(), partition=msg.partition(), offset=msg.offset())
        return Item(position, event, vector)

    # -- metrics -----------------------------------------------------------------------------
    def _observe_search(self, seconds: float) -> None:
        self.metrics.search_seconds.observe(seconds)
        self.metrics.stage_seconds.labels("linker", "search").observe(seconds)

    def _observe_latency(self, emitted: list[Outcome]) -> None:
        acked_ms = time.time() * 1000
        for o in emitted:
            if o.fresh is not None:
                self.metrics.end_to_end_seconds.observe(max(0.0, acked_ms - o.item.event.raw_ts_ms) / 1000)

    def _count_decisions(self, outcomes: dict[int, list[Outcome]]) -> None:
        m = self.metrics
        for os_ in outcomes.values():
            for o in os_:
                if o.fresh is None:
                    continue
                if o.created:
                    m.entities_created.inc()
                if o.fresh.is_duplicate:
                    m.duplicates_flagged.inc()
                if o.merged:
                    m.entities_merged.inc(len(o.merged))
        for p in outcomes:
            self._set_index_gauges(self.states[p])

    def _set_index_gauges(self, state: PartitionState) -> None:
        p, m = str(state.partition), self.metrics
        for block, index in state.indexes():
            m.index_vectors.labels(p, block).set(len(index))
            m.index_approximate.labels(p, block).set(int(index.approximate))
            if index.link_recall is not None:
                m.index_link_recall.labels(p, block).set(index.link_recall)
