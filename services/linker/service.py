"""The linker: clippings.embedded -> clippings.links, one sequential state machine per partition.

Per micro-batch: parse, one Redis read (which clippings are already decided), per partition
one FAISS search per block and the decisions (decide.py), one Redis transaction recording
them, one produce loop, wait for the acks, store the offsets; then snapshot when due.

Recovery: on assignment a partition's state is loaded from its snapshot and the topic is
replayed from the offset the snapshot covers. Replayed records that Redis already decided are
re-applied, not decided again; records below the committed offset (their link events were
acknowledged before) are not emitted again. On revocation the state is snapshotted.

Redis losing what was recorded (a crash without an append-only file) is noticed on assignment
and in every batch's transaction (statecheck.py): logged, counted, and /readyz answers 503.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict

import faiss
import numpy as np
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message
from pydantic import ValidationError

from clippings.runtime.onnx_model import Manifest, resolve_model
from clippings.errors import ConfigError
from clippings.services.config import LinkerSettings, describe
from clippings.services.linker.decide import DecisionRule, Item, decide_partitions
from clippings.services.kafka.dlq import DeadLetters
from clippings.services.errors import SnapshotError
from clippings.services.ops.health import Health, HealthServer
from clippings.services.linker.index import new_faiss_index
from clippings.services.kafka.clients import BrokerWatch, Outbox, make_consumer, make_producer
from clippings.services.ops.logfmt import kv
from clippings.services.ops.metrics import ServiceMetrics
from clippings.services.linker.partition import PartitionState
from clippings.services.kafka.runtime import StopSignal, commit_now, records_only, store_offsets, wait_for_topics
from clippings.services.schemas import EmbeddedClipping, KafkaPosition, validation_summary
from clippings.services.linker.snapshot import SnapshotStore
from clippings.services.linker.store import RedisState
from clippings.services.linker.statecheck import LostStateCheck

log = logging.getLogger(__name__)


def decision_rule(s: LinkerSettings, manifest: Manifest) -> DecisionRule:
    if s.threshold is not None:
        threshold = s.threshold
    elif s.threshold_kind in manifest.thresholds:
        threshold = manifest.thresholds[s.threshold_kind]
    else:
        raise ConfigError(f"model {manifest.name} has no {s.threshold_kind!r} threshold; set CLIPPINGS_THRESHOLD")
    return DecisionRule(threshold, s.search, s.knn_k, s.neighbours_in_event, manifest.version)


class LinkerService:
    def __init__(self, settings: LinkerSettings):
        self.settings = settings
        self.metrics = ServiceMetrics("linker")
        self.health = Health(self.metrics, settings.liveness_timeout_s)
        for condition in ("model", "broker", "redis", "index"):
            self.health.set(condition, False)
        self.health.set("redis_state", True)  # False while Redis misses state it had (statecheck.py)
        self.stop = StopSignal()
        self.http: HealthServer | None = None
        self.states: dict[int, PartitionState] = {}
        self._replay_until: dict[int, int] = {}  # below: emitted and committed before this assignment
        self._restoring: set[int] = set()
        self._last_snapshot: dict[int, float] = {}

    # -- lifecycle ---------------------------------------------------------------------------
    def run(self) -> None:
        s = self.settings
        log.info(kv("starting", service="linker") + " " + describe(s))
        self.http = HealthServer(self.health, self.metrics, s.metrics_host, s.metrics_port).start()
        self.manifest = Manifest.load(resolve_model(s.model))
        self.rule = decision_rule(s, self.manifest)
        new_faiss_index(self.manifest.embedding_dim, s.index_spec)  # a bad index_spec fails here, not mid-stream
        faiss.omp_set_num_threads(s.faiss_threads)
        self.metrics.model_info.labels(self.manifest.name, self.manifest.version, "-").set(1)
        self.health.set("model", True)
        self.redis = RedisState.from_settings(s, on_reachable=lambda ok: self.health.set("redis", ok))
        self.redis.ping()
        self._check_durability()
        self.check = LostStateCheck(self.redis, s.topic_embedded, self.metrics.state_lost.inc,
                                    lambda ok: self.health.set("redis_state", ok), s.kafka_client_id)
        self.snapshots = SnapshotStore(s.snapshot_dir)
        self.watch = BrokerWatch(s.broker_timeout_s)
        consumer = make_consumer(s, self.watch, self.metrics.set_lag)
        self.producer = make_producer(s, self.watch)
        self.dlq = DeadLetters(s.topic_dlq, "linker", s.kafka_client_id, self.metrics)
        log.info(kv("linker_ready_to_join", model=self.manifest.name, version=self.manifest.version,
                    threshold=self.rule.threshold, search=s.search, index=s.index_spec, metrics_port=self.http.port))
        clean = False
        try:
            wait_for_topics(consumer, [s.topic_embedded, s.topic_links, s.topic_dlq], self.watch, s.broker_timeout_s)
            consumer.subscribe([s.topic_embedded], on_assign=self._on_assign,
                               on_revoke=self._on_revoke, on_lost=self._on_lost)
            while not self.stop:
                self.health.tick()
                self.watch.check()
                self.health.set("broker", self.watch.reachable)
                records = records_only(consumer.consume(s.batch_max_events, s.batch_max_wait_ms / 1000))
                if records:
                    self._process(consumer, records)
                self._snapshot_due()
            log.info(kv("draining", service="linker"))
            commit_now(consumer)
            clean = True
        finally:
            if not clean:
                # A batch may have been decided in memory but not recorded: never snapshot that.
                self.states.clear()
            consumer.close()  # revokes: snapshots the partitions (clean stop) and commits
            self.producer.flush(10)
            self.http.stop()
            log.info(kv("stopped", service="linker"))

    # -- Redis -------------------------------------------------------------------------------
    def _check_durability(self) -> None:
        """Without an append-only file a Redis crash silently drops the decisions since its last save."""
        appendonly, detail = self.redis.appendonly()
        if appendonly is None:
            log.warning(kv("redis_durability_unknown", detail=f"could not read Redis' appendonly setting ({detail}); "
                           "make sure it is yes, or a Redis crash loses decisions"))
        elif appendonly != "yes":
            log.warning(kv("redis_not_durable", appendonly=appendonly,
                           detail="a Redis crash loses the decisions since its last save; run Redis with appendonly yes"))

    # -- rebalancing -------------------------------------------------------------------------
    def _restore(self, topic: str, partition: int) -> PartitionState:
        s, dim = self.settings, self.manifest.embedding_dim
        try:
            state = self.snapshots.load(topic, partition, self.manifest.version, dim, s.index_spec)
        except SnapshotError as exc:
            log.error(kv("snapshot_unreadable", topic=topic, partition=partition, detail=str(exc)))
            state = None
        return state or PartitionState(topic, partition, dim, s.index_spec, self.manifest.version)

    def _on_assign(self, consumer: Consumer, partitions) -> None:
        committed = consumer.committed(partitions, timeout=30) if partitions else []
        vouched: dict[int, int] = {}  # what Redis must hold: every record below was recorded there
        for tp, c in zip(partitions, committed):
            state = self._restore(tp.topic, tp.partition)
            self.states[tp.partition] = state
            self._replay_until[tp.partition] = max(c.offset, 0)
            self._last_snapshot[tp.partition] = time.monotonic()
            if self._replay_until[tp.partition] > state.next_offset:
                self._restoring.add(tp.partition)
            tp.offset = state.next_offset if state.next_offset > 0 else OFFSET_BEGINNING
            log.info(kv("assigned", topic=tp.topic, partition=tp.partition, snapshot_offset=state.next_offset,
                        committed=c.offset, vectors=sum(len(b) for b in state.blocks.values()),
                        entities=state.entity_count()))
            self._set_index_gauges(state)
            vouched[tp.partition] = max(c.offset, state.next_offset, 0)
        self.check.assigned(vouched)
        consumer.assign(partitions)
        self.health.set("index", not self._restoring)

    def _release(self, partitions, snapshot: bool) -> None:
        for tp in partitions:
            state = self.states.pop(tp.partition, None)
            self._restoring.discard(tp.partition)
            if state is not None and snapshot and state.changed_since_snapshot:
                self._snapshot(state)
            if state is not None:
                for block in state.blocks:
                    self.metrics.index_vectors.remove(str(tp.partition), block)
        self.check.released([tp.partition for tp in partitions])

    def _on_revoke(self, consumer: Consumer, partitions) -> None:
        self._release(partitions, snapshot=True)
        commit_now(consumer)
        log.info(kv("revoked", partitions=",".join(f"{p.topic}/{p.partition}" for p in partitions) or "-"))

    def _on_lost(self, consumer: Consumer, partitions) -> None:
        # Another member may own them already: drop the state, write nothing.
        self._release(partitions, snapshot=False)
        log.warning(kv("lost", partitions=",".join(f"{p.topic}/{p.partition}" for p in partitions) or "-"))

    # -- snapshots ---------------------------------------------------------------------------
    def _snapshot(self, state: PartitionState) -> None:
        try:
            path = self.snapshots.save(state)
        except SnapshotError as exc:
            self.metrics.snapshots.labels("error").inc()
            log.error(kv("snapshot_failed", partition=state.partition, detail=str(exc)))
            return
        self.metrics.snapshots.labels("ok").inc()
        self._last_snapshot[state.partition] = time.monotonic()
        log.info(kv("snapshot", partition=state.partition, offset=state.next_offset, path=path))

    def _snapshot_due(self) -> None:
        s, now = self.settings, time.monotonic()
        for p, state in self.states.items():
            if state.changed_since_snapshot >= s.snapshot_every_events or (
                state.changed_since_snapshot and now - self._last_snapshot.get(p, now) >= s.snapshot_interval_s
            ):
                self._snapshot(state)

    # -- the batch ---------------------------------------------------------------------------
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
        if event.dim != self.manifest.embedding_dim or not np.all(np.isfinite(vector)) \
                or abs(float(np.dot(vector, vector)) - 1.0) > 1e-3:
            reject("vector_invalid", f"dim {event.dim} (want {self.manifest.embedding_dim}), "
                   "values must be finite with unit norm", event.id)
            return None
        position = KafkaPosition(topic=msg.topic(), partition=msg.partition(), offset=msg.offset())
        return Item(position, event, vector)

    def _observe_search(self, seconds: float) -> None:
        self.metrics.search_seconds.observe(seconds)
        self.metrics.stage_seconds.labels("linker", "search").observe(seconds)

    def _process(self, consumer: Consumer, records: list[Message]) -> None:
        s, m = self.settings, self.metrics
        m.count_in(len(records))
        m.batch_size.labels("linker").observe(len(records))
        outbox = Outbox(self.producer, self.watch)

        accepted: list[Message] = []
        items: dict[int, list[Item]] = defaultdict(list)
        next_offsets: dict[int, int] = {}
        for msg in records:
            p = msg.partition()
            if p not in self.states:  # revoked since it was fetched: its new owner does it
                continue
            accepted.append(msg)
            next_offsets[p] = max(next_offsets.get(p, 0), msg.offset() + 1)
            item = self._valid_item(outbox, msg, emit=msg.offset() >= self._replay_until[p])
            if item is not None:
                items[p].append(item)

        with m.step("redis"):
            recorded = self.redis.decisions(sorted({it.event.id for its in items.values() for it in its}))
        now_ms = int(time.time() * 1000)
        with m.step("decide"):
            # Partitions in the order of their first record in the batch: the first to meet a
            # clipping id decides it, the others re-emit that decision.
            outcomes = decide_partitions(self.states, items, recorded, self.rule, now_ms, self._observe_search)
        with m.step("redis"):
            # Every assigned partition's watermark is checked (0: not raised) in the batch's transaction.
            watermarks = {p: next_offsets.get(p, 0) for p in self.states}
            before = self.redis.record([o for os_ in outcomes.values() for o in os_], watermarks)
        self.check.recorded(before, watermarks)
        for p, offset in next_offsets.items():
            state = self.states[p]
            state.next_offset = max(state.next_offset, offset)
            if p in self._restoring and state.next_offset >= self._replay_until[p]:
                self._restoring.discard(p)
                log.info(kv("restored", partition=p, offset=state.next_offset))
        self.health.set("index", not self._restoring)

        emitted = [o for p, os_ in outcomes.items() for o in os_ if o.item.position.offset >= self._replay_until[p]]
        with m.step("produce"):
            for o in emitted:
                # Keyed by block, not by clipping: a block's decisions stay in decision order
                # for every consumer, so a merge never arrives before the entities it names.
                outbox.send(s.topic_links, o.payload, key=o.item.event.block)
            outbox.wait()
        m.count_out(len(emitted))
        acked_ms = time.time() * 1000
        for o in emitted:
            if o.fresh is not None:
                m.end_to_end_seconds.observe(max(0.0, acked_ms - o.item.event.raw_ts_ms) / 1000)
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
        store_offsets(consumer, accepted)

    def _set_index_gauges(self, state: PartitionState) -> None:
        for block, index in state.blocks.items():
            self.metrics.index_vectors.labels(str(state.partition), block).set(len(index))
