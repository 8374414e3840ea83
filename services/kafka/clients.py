"""Kafka clients for the services: configuration, statistics, topic admin, acknowledged produce.

librdkafka does the distributed work (groups, retries, idempotent produce); this module only
sets it up the same way everywhere and turns its statistics into the lag metric and the
broker-reachability signal.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Callable

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from clippings.services.config import KafkaSettings, ServiceSettings
from clippings.services.errors import BrokerUnavailable, DeliveryFailed
from clippings.services.ops.deadline import wait_until
from clippings.services.ops.logfmt import kv

log = logging.getLogger(__name__)

# A broker whose socket has been silent this long is not counted as reachable: a paused broker
# keeps its TCP connections open, so the connection state alone says "UP".
_RX_STALE_US = 15_000_000


def client_config(s: KafkaSettings) -> dict:
    """librdkafka properties shared by every client. Holds secrets: never log it."""
    conf: dict = {
        "bootstrap.servers": s.kafka_bootstrap_servers,
        "client.id": s.kafka_client_id,
        "security.protocol": s.kafka_security_protocol.lower(),
        "socket.timeout.ms": s.kafka_socket_timeout_ms,
    }
    if s.kafka_sasl_mechanism:
        conf["sasl.mechanism"] = s.kafka_sasl_mechanism
    if s.kafka_sasl_username:
        conf["sasl.username"] = s.kafka_sasl_username
    if s.kafka_sasl_password:
        conf["sasl.password"] = s.kafka_sasl_password.get_secret_value()
    for key, value in (
        ("ssl.ca.location", s.kafka_ssl_ca_location),
        ("ssl.certificate.location", s.kafka_ssl_certificate_location),
        ("ssl.key.location", s.kafka_ssl_key_location),
    ):
        if value:
            conf[key] = value
    if s.kafka_ssl_key_password:
        conf["ssl.key.password"] = s.kafka_ssl_key_password.get_secret_value()
    if "SSL" in s.kafka_security_protocol:
        conf["ssl.endpoint.identification.algorithm"] = "https" if s.kafka_ssl_verify_hostname else "none"
    conf.update({k: v.get_secret_value() for k, v in s.kafka_extra.items()})
    return conf


class BrokerWatch:
    """Is a broker reachable? Fed by the statistics and error callbacks of every client."""

    def __init__(self, timeout_s: float):
        self.timeout_s = timeout_s
        self.reachable = False
        self._down_since: float | None = time.monotonic()
        self.fatal: KafkaError | None = None

    def mark(self, reachable: bool) -> None:
        if reachable:
            if not self.reachable and self._down_since is not None:
                log.info(kv("broker_reachable", after_s=round(time.monotonic() - self._down_since, 1)))
            self._down_since = None
        elif self._down_since is None:
            self._down_since = time.monotonic()
            log.warning(kv("broker_unreachable"))
        self.reachable = reachable

    def on_stats(self, stats: dict) -> None:
        up = any(
            b.get("state") == "UP" and 0 <= b.get("rxidle", -1) < _RX_STALE_US
            for b in stats.get("brokers", {}).values()
        )
        self.mark(up)

    def on_error(self, err: KafkaError) -> None:
        if err.fatal():
            self.fatal = err
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            self.mark(False)
        log.warning(kv("kafka_error", code=err.name(), detail=err.str()))

    def check(self) -> None:
        """Raise when the client hit a fatal error or the broker has been away past the timeout."""
        if self.fatal is not None:
            raise BrokerUnavailable(f"fatal Kafka client error: {self.fatal.str()}")
        if self._down_since is not None and time.monotonic() - self._down_since > self.timeout_s:
            raise BrokerUnavailable(f"no broker reachable for {self.timeout_s:.0f}s")


def partition_lag(stats: dict) -> dict[tuple[str, int], int]:
    """Consumer lag per assigned partition from a librdkafka statistics document."""
    lag: dict[tuple[str, int], int] = {}
    for topic, t in stats.get("topics", {}).items():
        for pid, p in t.get("partitions", {}).items():
            partition = int(pid)
            if partition < 0 or p.get("fetch_state") in (None, "none", "stopped"):
                continue
            value = p.get("consumer_lag", -1)
            if value < 0 and p.get("hi_offset", -1) >= 0 and p.get("app_offset", -1) >= 0:
                value = p["hi_offset"] - p["app_offset"]
            if value >= 0:
                lag[(topic, partition)] = value
    return lag


def make_consumer(
    s: ServiceSettings, watch: BrokerWatch, on_lag: Callable[[dict[tuple[str, int], int]], None]
) -> Consumer:
    def stats_cb(raw: str) -> None:
        stats = json.loads(raw)
        watch.on_stats(stats)
        on_lag(partition_lag(stats))

    conf = client_config(s) | {
        "group.id": s.group_id,
        # At-least-once: the loop stores an offset only after every output of the record is
        # acknowledged; librdkafka commits what was stored every commit_interval_ms.
        "enable.auto.offset.store": False,
        "enable.auto.commit": True,
        "auto.commit.interval.ms": s.commit_interval_ms,
        "auto.offset.reset": "earliest",
        # Range gives every member the same partition numbers of co-partitioned topics (the
        # linker's clippings.embedded and clippings.corrections), as Kafka Streams relies on.
        "partition.assignment.strategy": "range",
        "session.timeout.ms": s.kafka_session_timeout_ms,
        "heartbeat.interval.ms": s.kafka_heartbeat_interval_ms,
        "max.poll.interval.ms": s.kafka_max_poll_interval_ms,
        "fetch.wait.max.ms": s.kafka_fetch_wait_max_ms,
        "statistics.interval.ms": s.stats_interval_ms,
        "stats_cb": stats_cb,
        "error_cb": watch.on_error,
    }
    return Consumer(conf)


def producer_config(s: KafkaSettings) -> dict:
    return client_config(s) | {
        # Idempotent: librdkafka's retries during a broker outage never write a record twice.
        "enable.idempotence": True,
        "acks": "all",
        # Outbox.wait flushes, which sends at once; only a producer that does not wait (a paced
        # publisher) lingers, and sends its records in fewer, larger batches.
        "linger.ms": s.kafka_linger_ms,
        "delivery.timeout.ms": s.kafka_delivery_timeout_ms,
    }


def make_producer(s: KafkaSettings, watch: BrokerWatch | None = None) -> Producer:
    conf = producer_config(s)
    if watch is not None:
        # Errors only: an idle producer's sockets are quiet, so its statistics would read as
        # "unreachable"; the consumer's fetch loop is the reachability signal.
        conf["error_cb"] = watch.on_error
    return Producer(conf)


# Refusals of one message for what it is (its size), not of the broker: retrying the same
# bytes cannot help, a smaller record can.
_MESSAGE_ERRORS = frozenset({KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE, KafkaError.INVALID_RECORD})

Record = tuple[bytes, bytes | str | None, list | None]  # value, key, headers


def _short(key: bytes | str | None) -> str:
    text = repr(key)
    return text if len(text) <= 80 else text[:77] + "..."


class Outbox:
    """Produce a batch and wait until the broker acknowledged all of it.

    Offsets of a batch are stored only after `wait()` returns: a crash before that replays
    the batch (at-least-once), never skips it. A record sent with a fallback (a dead letter)
    that the client or the broker refuses for its size is replaced by the fallback, instead of
    failing the batch on every restart.
    """

    def __init__(self, producer: Producer, watch: BrokerWatch | None = None):
        self._producer = producer
        self._watch = watch
        self._pending = 0
        self._errors: list[str] = []
        self._refused: list[tuple[str, Record]] = []  # fallbacks to send in place of refused records

    def _on_delivery(self, err, msg) -> None:
        self._pending -= 1
        if err is not None:
            self._errors.append(f"{msg.topic()} key={_short(msg.key())}: {err.str()}")

    def _delivery_with_fallback(self, topic: str, fallback: Record) -> Callable:
        def on_delivery(err, msg) -> None:
            if err is not None and err.code() in _MESSAGE_ERRORS:
                self._pending -= 1
                self._refuse(topic, err, fallback)
            else:
                self._on_delivery(err, msg)
        return on_delivery

    def _refuse(self, topic: str, err: KafkaError, fallback: Record) -> None:
        log.warning(kv("record_refused", topic=topic, code=err.name(), detail="sending the fallback record instead"))
        self._refused.append((topic, fallback))

    def send(self, topic: str, value: bytes, key: bytes | str | None = None, headers=None,
             fallback: Record | None = None) -> None:
        on_delivery = self._on_delivery if fallback is None else self._delivery_with_fallback(topic, fallback)
        while True:
            try:
                self._producer.produce(topic, value=value, key=key, headers=headers, on_delivery=on_delivery)
                self._pending += 1
                return
            except BufferError:  # local queue full: let librdkafka send some, then retry
                self._producer.poll(0.1)
            except KafkaException as exc:  # refused before queueing (larger than message.max.bytes)
                err = exc.args[0]
                if fallback is None or err.code() not in _MESSAGE_ERRORS:
                    raise DeliveryFailed(f"{topic} key={_short(key)}: {err.str()}") from exc
                self._refuse(topic, err, fallback)
                return

    def wait(self) -> None:
        while True:
            while self._refused:
                topic, (value, key, headers) = self._refused.pop()
                self.send(topic, value, key, headers)  # no second fallback: a refusal now fails the batch
            if self._pending <= 0:
                break
            self._producer.flush(1.0)
            if self._watch is not None and self._pending > 0:
                self._watch.check()
        if self._errors:
            errors, self._errors = self._errors, []
            raise DeliveryFailed(f"{len(errors)} record(s) not delivered; first: {errors[0]}")


def topic_partitions(s: KafkaSettings) -> dict[str, int]:
    """The topics and their default partition counts (corrections: as many as embedded)."""
    return {s.topic_raw: 4, s.topic_embedded: 4, s.topic_links: 4, s.topic_dlq: 1, s.topic_corrections: 4}


def ensure_topics(
    s: KafkaSettings, partitions: dict[str, int], replication_factor: int = 1, timeout_s: float = 30.0
) -> list[str]:
    """Create the topics that do not exist yet; -> the names created."""
    admin = AdminClient(client_config(s))
    try:
        existing = set(admin.list_topics(timeout=timeout_s).topics)
    except KafkaException as exc:
        raise BrokerUnavailable(f"cannot list topics on {s.kafka_bootstrap_servers}: {exc}") from exc
    wanted = [NewTopic(name, n, replication_factor) for name, n in partitions.items() if name not in existing]
    if not wanted:
        return []
    created = []
    for name, future in admin.create_topics(wanted, request_timeout=timeout_s).items():
        try:
            future.result(timeout_s)
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise BrokerUnavailable(f"cannot create topic {name}: {exc}") from exc
    # Creation is asynchronous on some brokers: wait (a bounded while) until all are listed.
    wait_until(lambda: set(partitions) <= set(admin.list_topics(timeout=timeout_s).topics), timeout_s, 0.2)
    return created


def partition_counts(s: KafkaSettings, topics: list[str], timeout_s: float = 30.0) -> dict[str, int]:
    """The partition count of each of `topics` that exists."""
    try:
        meta = AdminClient(client_config(s)).list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise BrokerUnavailable(f"cannot list topics on {s.kafka_bootstrap_servers}: {exc}") from exc
    return {t: len(meta.topics[t].partitions) for t in topics if t in meta.topics}


def grow_partitions(s: KafkaSettings, counts: dict[str, int], timeout_s: float = 30.0) -> None:
    """Raise topics to these partition counts (Kafka can add partitions, never remove them)."""
    admin = AdminClient(client_config(s))
    futures = admin.create_partitions([NewPartitions(t, n) for t, n in counts.items()], request_timeout=timeout_s)
    for name, future in futures.items():
        try:
            future.result(timeout_s)
        except KafkaException as exc:
            raise BrokerUnavailable(f"cannot add partitions to {name} on {s.kafka_bootstrap_servers}: "
                                    f"{exc.args[0].str()}") from exc
