"""A paced publisher's records reach the broker in batches, and the services' batches are not
held back by it.

Tansu's memory store keeps every produced batch as one object and lists all of a partition's
objects on each fetch, so a feed sending one record a request made every later fetch slower
(docs/performance.md, "The local broker's fetch cost").
"""

from __future__ import annotations

import json
import time

import pytest
from confluent_kafka import Producer

from clippings.services.config import ClientSettings
from clippings.services.kafka.clients import Outbox, producer_config

pytestmark = pytest.mark.integration


class ProduceRequests:
    """Counts the Produce requests a producer sent, from librdkafka's statistics."""

    def __init__(self):
        self.sent = 0

    def __call__(self, raw: str) -> None:
        stats = json.loads(raw)
        self.sent = sum(b.get("req", {}).get("Produce", 0) for b in stats["brokers"].values())


def counting_producer(settings: ClientSettings, counter: ProduceRequests) -> Producer:
    return Producer(producer_config(settings) | {"statistics.interval.ms": 50, "stats_cb": counter})


def settle(producer: Producer) -> None:
    """Long enough for a statistics report after the last request."""
    end = time.monotonic() + 0.3
    while time.monotonic() < end:
        producer.poll(0.05)


def test_a_paced_publisher_sends_its_records_in_batches(kafka_bootstrap, topics):
    counter = ProduceRequests()
    producer = counting_producer(ClientSettings(kafka_bootstrap_servers=kafka_bootstrap), counter)
    producer.produce(topics.raw, value=b"{}", key="warm-up")  # connection and producer id first
    assert producer.flush(10) == 0
    settle(producer)
    before = counter.sent
    # As `clippings replay --rate 200` sends: one record every 5 ms, polled, not waited for.
    start = time.monotonic()
    for i in range(200):
        time.sleep(max(0.0, start + i * 0.005 - time.monotonic()))
        producer.produce(topics.raw, value=b"{}", key=f"clip-{i}")
        producer.poll(0)
    assert producer.flush(10) == 0
    settle(producer)
    # At linger.ms 5 that was one request a record (199 of 200); each of the four partitions
    # now gathers 50 ms of records.
    assert counter.sent - before <= 100, counter.sent - before


def test_a_service_batch_is_sent_without_lingering(kafka_bootstrap, topics):
    """Outbox.wait flushes: a batch is acknowledged well inside a long linger."""
    settings = ClientSettings(kafka_bootstrap_servers=kafka_bootstrap, kafka_linger_ms=5_000)
    outbox = Outbox(Producer(producer_config(settings)))
    for i in range(20):
        outbox.send(topics.embedded, b"{}", key=f"clip-{i}")
    start = time.monotonic()
    outbox.wait()
    assert time.monotonic() - start < 2.0
