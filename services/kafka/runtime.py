"""What both consumer services do the same way: wait for the broker, store offsets, stop on SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Iterable

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from clippings.services.errors import BrokerUnavailable
from clippings.services.kafka.clients import BrokerWatch
from clippings.services.ops.logfmt import kv

log = logging.getLogger(__name__)


def wait_for_topics(consumer: Consumer, topics: Iterable[str], watch: BrokerWatch, timeout_s: float) -> None:
    """Block until the broker answers and lists every topic; BrokerUnavailable past the timeout."""
    wanted = set(topics)
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            existing = set(consumer.list_topics(timeout=min(5.0, timeout_s)).topics)
        except KafkaException as exc:
            last = str(exc)
        else:
            watch.mark(True)
            missing = wanted - existing
            if not missing:
                return
            last = f"missing topic(s) {', '.join(sorted(missing))} (create them: clippings topics)"
        time.sleep(0.5)
    raise BrokerUnavailable(f"broker not ready after {timeout_s:.0f}s: {last}")


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
