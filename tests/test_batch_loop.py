"""The batch loop's bookkeeping of offsets (services/kafka/loop.py), on a real broker: a step
sees only the records of partitions held now, a record it hands back for later is neither
marked done nor skipped, and fetching again starts at the first one handed back.

The step here is a test harness of the loop's contract (the linker hands corrections back while
a partition is still restoring, services/linker/corrections.py); consumer, producer and broker
are the real ones."""

from __future__ import annotations

import time
import uuid
from contextlib import closing

import pytest
from confluent_kafka import Producer, TopicPartition

from clippings.services.config import ClientSettings, EmbedderSettings
from clippings.services.kafka.clients import BrokerWatch, Outbox, ensure_topics, make_consumer, make_producer
from clippings.services.kafka.loop import BatchService, Sent, Step, records_only

pytestmark = pytest.mark.integration


class Harness(BatchService):
    stage = "embedder"

    def open(self, stack, watch):  # the loop's run() is not what is tested here
        raise NotImplementedError


class HandsBack(Step):
    """Processes every record it is given but those at the offsets in `later`."""

    topics_out = ()

    def __init__(self, topic: str, later: set[tuple[int, int]]):
        self.topic_in, self.later, self.seen = topic, later, []

    def process(self, records, outbox):
        self.seen += [(r.partition(), r.offset()) for r in records]
        retry = tuple(r for r in records if (r.partition(), r.offset()) in self.later)
        return Sent(len(records) - len(retry), None, retry)


@pytest.fixture
def six_records(kafka_bootstrap):
    """A topic of two partitions, records 0-5 on each."""
    topic = f"loop-{uuid.uuid4().hex[:10]}"
    ensure_topics(ClientSettings(kafka_bootstrap_servers=kafka_bootstrap), {topic: 2})
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for p in (0, 1):
        for i in range(6):
            producer.produce(topic, f"{p}-{i}".encode(), partition=p)
    assert producer.flush(30) == 0
    return topic


def consumed(consumer, n: int, timeout_s: float = 30.0) -> list:
    out, deadline = [], time.monotonic() + timeout_s
    while len(out) < n and time.monotonic() < deadline:
        out += records_only(consumer.consume(n - len(out), 0.5))
    assert len(out) == n, f"{len(out)} of {n} records"
    return out


def test_records_handed_back_are_not_done_and_come_again_from_the_first(kafka_bootstrap, six_records):
    settings = EmbedderSettings(kafka_bootstrap_servers=kafka_bootstrap, group_id=f"g-{uuid.uuid4().hex[:8]}")
    watch = BrokerWatch(30)
    service = Harness(settings)
    with closing(make_consumer(settings, watch, lambda lag: None)) as consumer:
        consumer.assign([TopicPartition(six_records, p, 0) for p in (0, 1)])
        records = sorted(consumed(consumer, 12), key=lambda m: (m.partition(), m.offset()))
        service.assigned = {(six_records, 0)}  # partition 1 was revoked while the batch was fetched
        step = HandsBack(six_records, later={(0, 4), (0, 2)})
        service._batch(consumer, Outbox(make_producer(settings, watch), watch), step, records)
        assert step.seen == [(0, i) for i in range(6)]  # nothing of the revoked partition
        consumer.commit(asynchronous=False)
        committed = {tp.partition: tp.offset for tp in consumer.committed([TopicPartition(six_records, p) for p in (0, 1)],
                                                                          timeout=10)}
        # Done up to the first record handed back: 3 and 5 were processed, but storing their
        # offsets would mark 2 and 4 done too, and a crash now would skip them.
        assert committed[0] == 2 and committed[1] < 0  # partition 1: nothing stored (no offset: negative)
        again = consumed(consumer, 4)
        assert [(m.partition(), m.offset()) for m in again if m.partition() == 0][0] == (0, 2)
