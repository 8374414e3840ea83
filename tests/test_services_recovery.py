"""Restarts and failed deliveries against the real broker and Redis: at-least-once without
more repeats than it allows.

- After a clean stop (SIGTERM: finish, commit), services restarted in the same groups embed and
  link nothing a second time.
- After a SIGKILL, only records past the last commit may come out again.
- When the broker refuses a service's output (a real INVALID_RECORD from Tansu), the service
  dies with DeliveryFailed without having committed that input, and its restart emits every
  record: an offset is stored only once the output is acknowledged.
"""

from __future__ import annotations

import signal
import uuid
from collections import Counter

import pytest
from stream_checks import (assert_linked_exactly_once, client, committed_offsets, end_offsets, ids_on,
                           manifest_cuts, sample_events, wait_for)

from clippings.services.errors import DeliveryFailed
from clippings.services.local.replay import publish
from clippings.services.linker.store import RedisState, redis_client

pytestmark = pytest.mark.integration


def repeated(ids: list[str]) -> dict[str, int]:
    return {cid: n for cid, n in Counter(ids).items() if n > 1}


def test_clean_restart_re_emits_nothing(run_service, kafka_bootstrap, topics, topic_reader, sample_feed,
                                        news_model, redis_url, redis_prefix):
    # No commits on a timer: what the restart skips was committed by the drain.
    slow = dict(commit_interval_ms=600_000)
    first = [run_service("embedder", **slow), run_service("linker", **slow)]
    before, labels_a = sample_events(sample_feed, "a-")
    publish(client(kafka_bootstrap, topics), before, progress=False)
    assert set(labels_a) <= set(ids_on(topic_reader, topics.links, set(labels_a)))
    for st in first:
        st.stop()  # what SIGTERM does: finish the batch, commit, snapshot, exit

    run_service("embedder", **slow)
    run_service("linker", **slow)
    after, labels_b = sample_events(sample_feed, "b-")
    publish(client(kafka_bootstrap, topics), after, progress=False)
    everything = set(labels_a) | set(labels_b)
    state = RedisState(redis_client(redis_url), redis_prefix)
    assert_linked_exactly_once(topic_reader, topics, everything, state, manifest_cuts(news_model))
    # Each clipping was embedded once and its decision emitted once, across the restart.
    assert repeated(ids_on(topic_reader, topics.embedded, everything)) == {}
    assert repeated(ids_on(topic_reader, topics.links, everything)) == {}


def test_linker_killed_after_its_commit_re_emits_nothing(run_service, spawn_service, kafka_bootstrap, topics,
                                                         topic_reader, sample_feed, news_model, redis_url,
                                                         redis_prefix):
    """SIGKILL once every decision is committed, with no snapshot taken: the next linker rebuilds
    its index from the whole topic, and emits only what comes after."""
    from clippings.services.local.stack import wait_ready

    run_service("embedder")
    group = f"linker-{uuid.uuid4().hex[:8]}"
    env = {"CLIPPINGS_GROUP_ID": group, "CLIPPINGS_COMMIT_INTERVAL_MS": "100",
           "CLIPPINGS_SNAPSHOT_EVERY_EVENTS": "1000000", "CLIPPINGS_SNAPSHOT_INTERVAL_S": "3600"}
    first = spawn_service("linker", "linker-a", env)
    wait_ready([first], 90)
    before, labels_a = sample_events(sample_feed, "a-")
    publish(client(kafka_bootstrap, topics), before, progress=False)
    assert set(labels_a) <= set(ids_on(topic_reader, topics.links, set(labels_a)))
    ends = end_offsets(topic_reader(topics.embedded))

    def all_committed() -> bool:
        committed = committed_offsets(kafka_bootstrap, group, topics.embedded)
        return all(committed[p] >= end for p, end in ends.items())

    wait_for(all_committed, 60, "the linker commits every decision")
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(10)

    second = spawn_service("linker", "linker-b", env)
    wait_ready([second], 90)
    after, labels_b = sample_events(sample_feed, "b-")
    publish(client(kafka_bootstrap, topics), after, progress=False)
    everything = set(labels_a) | set(labels_b)
    state = RedisState(redis_client(redis_url), redis_prefix)
    assert_linked_exactly_once(topic_reader, topics, everything, state, manifest_cuts(news_model))
    assert repeated(ids_on(topic_reader, topics.links, everything)) == {}
    assigned = [line for line in second.log_path.read_text().splitlines() if "event=assigned" in line]
    assert assigned and all("snapshot_offset=0" in line for line in assigned), assigned  # it did replay


def test_embedder_output_refused_then_restarted_skips_nothing(run_service, refuse_produce, kafka_bootstrap,
                                                              topics, topic_reader, sample_feed):
    refuse_produce(topics.embedded)
    first = run_service("embedder")
    events, labels = sample_events(sample_feed)
    publish(client(kafka_bootstrap, topics), events, progress=False)
    assert isinstance(first.wait_failed(60), DeliveryFailed)

    refuse_produce(topics.embedded, False)
    run_service("embedder")
    embedded = ids_on(topic_reader, topics.embedded, set(labels))
    assert set(labels) - set(embedded) == set()  # nothing skipped
    assert repeated(embedded) == {}  # and nothing refused came out after all


def test_linker_output_refused_then_restarted_skips_nothing(run_service, refuse_produce, kafka_bootstrap,
                                                            topics, topic_reader, sample_feed, news_model,
                                                            redis_url, redis_prefix):
    run_service("embedder")
    refuse_produce(topics.links)
    first = run_service("linker")
    events, labels = sample_events(sample_feed)
    publish(client(kafka_bootstrap, topics), events, progress=False)
    assert isinstance(first.wait_failed(60), DeliveryFailed)

    refuse_produce(topics.links, False)
    run_service("linker")
    assert set(labels) - set(ids_on(topic_reader, topics.links, set(labels))) == set()  # nothing skipped
    state = RedisState(redis_client(redis_url), redis_prefix)
    assert_linked_exactly_once(topic_reader, topics, set(labels), state, manifest_cuts(news_model))
