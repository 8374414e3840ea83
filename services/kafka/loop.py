"""The one batch loop of both consumer services.

Per micro-batch (up to batch_max_events records or batch_max_wait_ms): consume, drop the
records of partitions revoked meanwhile, hand the rest to the service's step (which sends its
outputs through an Outbox), wait until the broker acknowledged every output, then store the
offsets. On SIGTERM the loop finishes its batch, commits and returns; closing the consumer
revokes its partitions (the step snapshots what it holds) and commits again.

What a service adds is a `Step`: `open()` enters its resources (model, pools, Redis) into the
service's one ExitStack and returns the step; the step decides what a batch produces.
"""

from __future__ import annotations

import logging
import signal
import threading
from abc import ABC, abstractmethod
from contextlib import ExitStack
from typing import Callable, NamedTuple

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from clippings.services.config import describe
from clippings.services.errors import BrokerUnavailable
from clippings.services.kafka.clients import BrokerWatch, Outbox, make_consumer, make_producer
from clippings.services.kafka.runtime import wait_for_topics
from clippings.services.ops.health import Health, HealthServer
from clippings.services.ops.logfmt import kv
from clippings.services.ops.metrics import ServiceMetrics

log = logging.getLogger(__name__)


class Sent(NamedTuple):
    count: int  # outputs sent for the batch (dead letters not counted)
    after_ack: Callable[[], None] | None = None  # run once the broker acknowledged them
    # Records the step could not take yet (the linker's corrections of a partition still being
    # restored): their offsets are not stored and the consumer goes back to them.
    retry: tuple[Message, ...] = ()


class Step(ABC):
    """The service-specific part of the loop; the hooks a service does not need do nothing."""

    topic_in: str
    topics_out: tuple[str, ...]
    topics_also_in: tuple[str, ...] = ()  # co-partitioned with topic_in: partition p of each goes with p of it

    @abstractmethod
    def process(self, records: list[Message], outbox: Outbox) -> Sent:
        """Send the outputs of a batch (records of partitions held now) through `outbox`."""

    def assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Before the partitions are assigned; may set each one's start offset. Logs them."""
        log.info(kv("assigned", partitions=_names(partitions)))

    def revoked(self, partitions: list[TopicPartition]) -> None:
        """Before the offsets are committed and the partitions handed over."""

    def lost(self, partitions: list[TopicPartition]) -> None:
        """Another member may own them already: nothing of theirs may be written."""

    def after_poll(self) -> None:
        """After every poll, with or without records (periodic work)."""

    def abandon(self) -> None:
        """The loop failed mid-batch: forget what closing the consumer would otherwise persist."""


class BatchService(ABC):
    """Settings, metrics, health and stop signal of a service, and the loop that runs its Step."""

    stage = ""  # "embedder" | "linker": the metrics' stage label
    conditions: tuple[str, ...] = ("model", "broker")  # readiness, all False until met

    def __init__(self, settings):
        self.settings = settings
        self.metrics = ServiceMetrics(self.stage)
        self.health = Health(self.metrics, settings.liveness_timeout_s)
        for condition in self.conditions:
            self.health.set(condition, False)
        self.stop = StopSignal()
        self.http: HealthServer | None = None
        self.assigned: set[tuple[str, int]] = set()  # partitions of the input topic held now

    @abstractmethod
    def open(self, stack: ExitStack, watch: BrokerWatch) -> Step:
        """Load the model and open the service's resources, each closed by `stack`."""

    def run(self) -> None:
        s = self.settings
        log.info(kv("starting", service=self.stage) + " " + describe(s))
        with ExitStack() as stack:
            stack.callback(lambda: log.info(kv("stopped", service=self.stage)))
            self.http = HealthServer(self.health, self.metrics, s.metrics_host, s.metrics_port).start()
            stack.callback(self.http.stop)
            watch = BrokerWatch(s.broker_timeout_s)
            step = self.open(stack, watch)
            producer = make_producer(s, watch)
            stack.callback(producer.flush, 10)
            consumer = make_consumer(s, watch, self.metrics.set_lag)
            stack.callback(consumer.close)  # revokes what is held (the step's revoked()), commits
            stack.push(_abandon_on_error(step))  # runs before close: a failed batch is never persisted
            self._consume(consumer, producer, watch, step)

    def _consume(self, consumer: Consumer, producer, watch: BrokerWatch, step: Step) -> None:
        s = self.settings
        wait_for_topics(consumer, [step.topic_in, *step.topics_also_in, *step.topics_out], watch, s.broker_timeout_s)
        consumer.subscribe([step.topic_in, *step.topics_also_in], on_assign=self._rebalance(step, "assign"),
                           on_revoke=self._rebalance(step, "revoke"), on_lost=self._rebalance(step, "lost"))
        while not self.stop:
            self.health.tick()
            watch.check()
            self.health.set("broker", watch.reachable)
            records = records_only(consumer.consume(s.batch_max_events, s.batch_max_wait_ms / 1000))
            if records:
                self._batch(consumer, Outbox(producer, watch), step, records)
            step.after_poll()
        log.info(kv("draining", service=self.stage))
        commit_now(consumer)

    def _batch(self, consumer: Consumer, outbox: Outbox, step: Step, records: list[Message]) -> None:
        m = self.metrics
        m.count_in(len(records))
        m.batch_size.labels(self.stage).observe(len(records))
        # Revoked since they were fetched: the partitions' new owner does them.
        held = [r for r in records if (r.topic(), r.partition()) in self.assigned]
        sent = step.process(held, outbox)
        with m.step("produce"):
            outbox.wait()
        m.count_out(sent.count)
        if sent.after_ack is not None:
            sent.after_ack()
        # At-least-once: offsets are stored only now, after every output of the batch was
        # acknowledged; a crash before this point replays the batch.
        done = _before_retried(held, sent.retry)
        if done:
            store_offsets(consumer, done)
        if sent.retry:
            seek_back(consumer, sent.retry)

    def _rebalance(self, step: Step, event: str) -> Callable:
        def on_assign(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            step.assigned(consumer, partitions)
            consumer.assign(partitions)  # what confluent-kafka does when the callback does not
            self.assigned |= {(p.topic, p.partition) for p in partitions}

        def on_revoke(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            step.revoked(partitions)
            commit_now(consumer)  # the batch in hand is done: hand over its offsets
            self.assigned -= {(p.topic, p.partition) for p in partitions}
            log.info(kv("revoked", partitions=_names(partitions)))

        def on_lost(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            step.lost(partitions)
            self.assigned -= {(p.topic, p.partition) for p in partitions}
            log.warning(kv("lost", partitions=_names(partitions)))

        return {"assign": on_assign, "revoke": on_revoke, "lost": on_lost}[event]


def _abandon_on_error(step: Step) -> Callable:
    def exit_(exc_type, exc, tb) -> bool:
        if exc_type is not None:
            step.abandon()
        return False  # the error goes on up

    return exit_


def _names(partitions) -> str:
    return ",".join(f"{p.topic}/{p.partition}" for p in partitions) or "-"


def records_only(msgs: list[Message]) -> list[Message]:
    """Drop the error pseudo-records consume() returns (logged); a fatal one raises."""
    records = []
    for m in msgs:
        err = m.error()
        if err is None:
            records.append(m)
        elif err.fatal():
            raise BrokerUnavailable(f"fatal consumer error: {err.str()}")
        elif err.code() != KafkaError._PARTITION_EOF:
            log.warning(kv("consumer_error", topic=m.topic(), partition=m.partition(), code=err.name(), detail=err.str()))
    return records


def _before_retried(records: list[Message], retry: tuple[Message, ...]) -> list[Message]:
    """The records done: in each partition, those before the first one handed back. A stored
    offset marks every record below it done, so one after a handed-back record would let a
    crash skip that record; those after it are processed again when it is fetched again."""
    first = _first_offsets(retry)
    return [m for m in records if m.offset() < first.get((m.topic(), m.partition()), m.offset() + 1)]


def _first_offsets(records: tuple[Message, ...]) -> dict[tuple[str, int], int]:
    """(topic, partition) -> the lowest offset among records."""
    first: dict[tuple[str, int], int] = {}
    for m in records:
        key = (m.topic(), m.partition())
        first[key] = min(first.get(key, m.offset()), m.offset())
    return first


def store_offsets(consumer: Consumer, records: list[Message]) -> None:
    """Mark records done (their outputs are acked); committed on the next commit interval."""
    next_offsets: dict[tuple[str, int], int] = {}
    for m in records:
        key = (m.topic(), m.partition())
        next_offsets[key] = max(next_offsets.get(key, 0), m.offset() + 1)
    tps = [TopicPartition(t, p, o) for (t, p), o in next_offsets.items()]
    try:
        consumer.store_offsets(offsets=tps)
    except KafkaException as exc:
        # The partition moved to another member meanwhile; it will redo these records
        # (at-least-once), and their effects are idempotent.
        log.warning(kv("offsets_not_stored", detail=str(exc), partitions=",".join(f"{t}/{p}" for t, p in next_offsets)))


def seek_back(consumer: Consumer, records: tuple[Message, ...]) -> None:
    """Fetch these records again: each partition from the first of them."""
    for (t, p), offset in _first_offsets(records).items():
        try:
            consumer.seek(TopicPartition(t, p, offset))
        except KafkaException as exc:  # revoked meanwhile: its next owner starts from the committed offset
            log.warning(kv("seek_failed", topic=t, partition=p, detail=str(exc)))


def commit_now(consumer: Consumer) -> None:
    try:
        consumer.commit(asynchronous=False)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError._NO_OFFSET:
            log.warning(kv("commit_failed", detail=str(exc)))


class StopSignal:
    """Set by SIGTERM/SIGINT (or by stop()); the loop finishes its batch and returns."""

    def __init__(self):
        self._event = threading.Event()

    def __bool__(self) -> bool:
        return self._event.is_set()

    def set(self) -> None:
        self._event.set()

    def install(self) -> None:
        """Only from the main thread (signal handlers); in-process users call set() instead."""

        def handler(signum, _frame):
            log.info(kv("stopping", signal=signal.Signals(signum).name))
            self._event.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)
