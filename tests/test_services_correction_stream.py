"""Reviewers' corrections through the real broker, the real Redis and the real linker.

- a reject on clippings.corrections changes the Redis membership, emits a correction link event,
  and a copy of the rejected clipping sent again joins the clipping's new entity, not the old;
- the same correction delivered again is not applied again (counted as repeated);
- a linker SIGKILLed before it committed anything comes back with the correction applied once:
  replayed from Redis' log at its place, the redelivered record only counted.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from confluent_kafka import Producer
from stream_checks import client, ids_on, metric, sample_events, wait_for

from clippings.services.linker.correct import rejected_entity_id
from clippings.services.linker.store import RedisState, redis_client
from clippings.services.local.replay import publish
from clippings.services.schemas import Correction, LinkEvent

pytestmark = pytest.mark.integration


def links(topic_reader, topics, until=None, timeout_s: float = 60.0) -> list[LinkEvent]:
    return [LinkEvent.model_validate_json(m.value()) for m in topic_reader(topics.links, until, timeout_s)]


def first_duplicate(events: list[LinkEvent]) -> LinkEvent:
    return next(e for e in events if e.is_duplicate and e.correction is None and not e.merged_entities)


def send_correction(kafka_bootstrap: str, topic: str, c: Correction, partition: int) -> None:
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "acks": "all"})
    producer.produce(topic, c.to_bytes(), key=c.block.encode(), partition=partition)
    assert producer.flush(30) == 0


def reject(dup: LinkEvent) -> Correction:
    return Correction(id=str(uuid.uuid4()), action="reject", block=dup.block, clipping_id=dup.id,
                      reviewer="ann", at_ms=int(time.time() * 1000))


def corrected(topic_reader, topics, c: Correction, n: int = 1) -> list[LinkEvent]:
    def found(recs) -> bool:
        return sum(1 for m in recs if c.id in m.value().decode()) >= n

    return [e for e in links(topic_reader, topics, found) if e.correction and e.correction.id == c.id]


def resend_copy(kafka_bootstrap, topics, sample_feed, prefix: str, clipping_id: str, copy_id: str) -> None:
    events, _ = sample_events(sample_feed, prefix)
    original = next(e for e in events if e.id == clipping_id)
    publish(client(kafka_bootstrap, topics), [original.model_copy(update={"id": copy_id})], progress=False)


def linked_sample(kafka_bootstrap, topics, topic_reader, sample_feed, prefix: str) -> LinkEvent:
    """Feed the sample feed (ids prefixed), wait for every link event -> a plain duplicate decision."""
    events, labels = sample_events(sample_feed, prefix)
    publish(client(kafka_bootstrap, topics), events, progress=False)
    ids_on(topic_reader, topics.links, set(labels))
    return first_duplicate(links(topic_reader, topics))


def decision_of(topic_reader, topics, cid: str) -> LinkEvent:
    ids_on(topic_reader, topics.links, {cid})
    return next(e for e in links(topic_reader, topics) if e.id == cid)


def test_reject_changes_membership_and_the_next_copy(run_service, kafka_bootstrap, topics, topic_reader,
                                                     sample_feed, redis_url, redis_prefix):
    run_service("embedder")
    linker = run_service("linker")
    dup = linked_sample(kafka_bootstrap, topics, topic_reader, sample_feed, "s-")
    state = RedisState(redis_client(redis_url), redis_prefix)
    old = state.current_entities([dup.id])[dup.id]
    assert dup.id in state.members(old)

    c = reject(dup)
    send_correction(kafka_bootstrap, topics.corrections, c, dup.origin.partition)
    [event] = corrected(topic_reader, topics, c)
    new = rejected_entity_id(dup.id, c.id)
    assert (event.id, event.entity_id, event.is_duplicate, event.correction.reviewer) == (dup.id, new, False, "ann")
    assert state.current_entities([dup.id])[dup.id] == new
    assert dup.id not in state.members(old) and state.members(new) == {dup.id}

    send_correction(kafka_bootstrap, topics.corrections, c, dup.origin.partition)  # delivered twice
    again = corrected(topic_reader, topics, c, n=2)
    assert len(again) == 2 and again[0] == again[1]
    port = linker.service.http.port
    wait_for(lambda: metric(port, 'clippings_corrections_total{outcome="repeated"}') == 1.0, 30, "counted once")
    assert metric(port, 'clippings_corrections_total{outcome="applied"}') == 1.0
    assert len(state.correction_log(dup.origin.partition, 0)) == 1

    resend_copy(kafka_bootstrap, topics, sample_feed, "s-", dup.id, "copy-1")
    copy = decision_of(topic_reader, topics, "copy-1")
    assert copy.entity_id == new and copy.matched_id == dup.id and old not in {copy.entity_id, *copy.merged_entities}


def test_correction_of_an_unknown_clipping_goes_to_the_dlq(run_service, kafka_bootstrap, topics, topic_reader,
                                                           sample_feed):
    from clippings.services.schemas import DlqRecord

    run_service("embedder")
    run_service("linker")
    events, labels = sample_events(sample_feed, "u-")
    publish(client(kafka_bootstrap, topics), events[:3], progress=False)
    ids_on(topic_reader, topics.links, {e.id for e in events[:3]})
    c = Correction(id="k-unknown", action="reject", block="default", clipping_id="nobody", reviewer="ann", at_ms=1)
    send_correction(kafka_bootstrap, topics.corrections, c, 0)
    [dead] = topic_reader(topics.dlq, lambda recs: len(recs) >= 1)
    record = DlqRecord.from_headers(dead.headers())
    assert (record.reason, record.clipping_id, record.origin.topic) == ("correction_refused", "nobody",
                                                                        topics.corrections)


def test_correction_applied_once_across_a_sigkill(run_service, spawn_service, kafka_bootstrap, topics, topic_reader,
                                                  sample_feed, redis_url, redis_prefix):
    """Nothing committed, no snapshot: the restarted linker replays every clipping and the
    correction from Redis' log, and the redelivered correction record is only counted."""
    from clippings.services.local.stack import wait_ready

    run_service("embedder")
    env = {"CLIPPINGS_COMMIT_INTERVAL_MS": "600000", "CLIPPINGS_SNAPSHOT_EVERY_EVENTS": "1000000",
           "CLIPPINGS_SNAPSHOT_INTERVAL_S": "3600"}
    first = spawn_service("linker", "linker-a", env)
    wait_ready([first], 90)
    dup = linked_sample(kafka_bootstrap, topics, topic_reader, sample_feed, "k-")
    c = reject(dup)
    send_correction(kafka_bootstrap, topics.corrections, c, dup.origin.partition)
    corrected(topic_reader, topics, c)
    first.proc.kill()
    first.proc.wait(10)

    second = spawn_service("linker", "linker-b", env)
    wait_ready([second], 90)
    wait_for(lambda: metric(second.metrics_port, 'clippings_corrections_total{outcome="repeated"}') == 1.0, 60,
             "the redelivered correction is counted as repeated")
    assert metric(second.metrics_port, 'clippings_corrections_total{outcome="applied"}') is None
    state = RedisState(redis_client(redis_url), redis_prefix)
    assert len(state.correction_log(dup.origin.partition, 0)) == 1
    new = rejected_entity_id(dup.id, c.id)
    assert state.current_entities([dup.id])[dup.id] == new

    resend_copy(kafka_bootstrap, topics, sample_feed, "k-", dup.id, "copy-k")
    copy = decision_of(topic_reader, topics, "copy-k")
    assert copy.entity_id == new and copy.matched_id == dup.id


def test_a_corrections_topic_with_more_partitions_stops_the_linker(run_service, kafka_bootstrap, topics):
    from clippings.services.config import ClientSettings
    from clippings.services.kafka.clients import ensure_topics

    wider = topics.corrections + "-wide"
    ensure_topics(ClientSettings(kafka_bootstrap_servers=kafka_bootstrap), {wider: 3})  # the input has 2
    linker = run_service("linker", wait=False, topic_corrections=wider)
    error = linker.wait_failed(90)
    assert f"{wider}/2 without the {topics.embedded} partition of the same number" in str(error)


def test_hostile_corrections_are_dead_lettered_and_the_next_one_applies(run_service, kafka_bootstrap, topics,
                                                                        topic_reader, sample_feed, redis_url,
                                                                        redis_prefix):
    from clippings.services.schemas import DlqRecord

    run_service("embedder")
    linker = run_service("linker")
    dup = linked_sample(kafka_bootstrap, topics, topic_reader, sample_feed, "h-")
    good = reject(dup)
    body = good.model_dump(mode="json")
    hostile = [
        b"", b"not json", b"[1, 2]", b"null", b"{" * 100_000,
        json.dumps(body | {"action": "delete"}).encode(),
        json.dumps(body | {"schema_version": 9}).encode(),
        json.dumps({k: v for k, v in body.items() if k != "clipping_id"}).encode(),
        json.dumps(body | {"action": "merge", "target_id": None}).encode(),
        json.dumps(body | {"note": "x" * 5000}).encode(),
        json.dumps(body | {"id": "k-" + "i" * 600}).encode(),
        json.dumps(body | {"id": "k-elsewhere", "clipping_id": "nobody", "target_id": None}).encode(),
    ]
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "acks": "all"})
    for value in hostile + [good.to_bytes()]:
        producer.produce(topics.corrections, value, partition=dup.origin.partition)
    assert producer.flush(30) == 0

    corrected(topic_reader, topics, good)  # the good one, after all of them, is applied
    dead = topic_reader(topics.dlq, lambda recs: len(recs) >= len(hostile), 60)
    reasons = [DlqRecord.from_headers(m.headers()).reason for m in dead]
    assert reasons.count("schema") == len(hostile) - 1 and reasons.count("correction_refused") == 1
    assert linker.service.health.ready()[0]  # alive and ready after all of them
    state = RedisState(redis_client(redis_url), redis_prefix)
    assert state.current_entities([dup.id])[dup.id] == rejected_entity_id(dup.id, good.id)
