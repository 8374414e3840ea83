"""The linker on its own, fed clippings.embedded directly, against the real broker and Redis.

A clipping id that comes under two blocks (so in two partitions) or twice in one block is
decided once, in one batch or in later ones, and every repeat re-emits that decision byte for
byte, also from a fresh linker that has only Redis; vectors of the wrong size or norm go to
the DLQ.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest
from confluent_kafka import Producer

from clippings.runtime.manifest import Manifest
from clippings.services.schemas import DlqRecord, EmbeddedClipping, KafkaPosition, LinkEvent
from clippings.services.linker.store import RedisState, redis_client

pytestmark = pytest.mark.integration


def model_of(news_model: Path) -> tuple[int, str]:
    manifest = Manifest.load(news_model)
    return manifest.served_dim, manifest.version


def embedded(cid: str, block: str, vector: np.ndarray, version: str, dim: int | None = None) -> bytes:
    return EmbeddedClipping(
        id=cid, block=block, model="news", model_version=version, dim=dim or len(vector),
        vector=EmbeddedClipping.pack(vector), has_image=False, has_text=True,
        origin=KafkaPosition(topic="raw", partition=0, offset=0), raw_ts_ms=1, embedded_ts_ms=2,
    ).to_bytes()


def produce(bootstrap: str, topic: str, records: list[tuple[int, str, bytes]]) -> None:
    """(partition, key, value) in this order; the partition is chosen here, as keying by block would."""
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for partition, key, value in records:
        p.produce(topic, value=value, key=key.encode(), partition=partition)
    assert p.flush(30) == 0


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)  # random directions: cosine about 0 +- 0.1
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def links_by_id(records) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    for m in records:
        out.setdefault(LinkEvent.model_validate_json(m.value()).id, []).append(m.value())
    return out


def test_one_clipping_under_two_blocks_is_decided_once(run_service, kafka_bootstrap, topics, topic_reader,
                                                       news_model, redis_url, redis_prefix, tmp_path):
    dim, version = model_of(news_model)
    rng = np.random.default_rng(10)
    n = 50
    xs, ys = unit_rows(rng, n, dim), unit_rows(rng, n, dim)
    # Partition 0, block "left": each x alone (it would found e-x there), ten of them twice.
    # Partition 1, block "right": y, then x with y's vector (it would join e-y there).
    first = [(0, "left", embedded(f"x{i}", "left", xs[i], version)) for i in range(n)]
    first += [(0, "left", embedded(f"x{i}", "left", xs[i], version)) for i in range(0, n, 5)]
    for i in range(n):
        first += [(1, "right", embedded(f"y{i}", "right", ys[i], version)),
                  (1, "right", embedded(f"x{i}", "right", ys[i], version))]
    produce(kafka_bootstrap, topics.embedded, first)
    # Everything above in one batch: a batch larger than the records, waiting long enough for both partitions.
    linker = run_service("linker", batch_max_events=1000, batch_max_wait_ms=3000)

    links = links_by_id(topic_reader(topics.links, lambda recs: len(recs) >= len(first), 90))
    x_ids = [f"x{i}" for i in range(n)]
    for cid in x_ids:
        assert len(set(links[cid])) == 1, (cid, links[cid])  # one decision, re-emitted byte for byte
    state = RedisState(redis_client(redis_url), redis_prefix)
    assert state.decision_count() == 2 * n
    for i, cid in enumerate(x_ids):
        entity = LinkEvent.model_validate_json(links[cid][0]).entity_id
        holding = [e for e in (f"e-x{i}", f"e-y{i}") if cid in state.members(e)]
        assert holding == [entity], (cid, holding)
    assert state.current_entities(x_ids) == {cid: LinkEvent.model_validate_json(links[cid][0]).entity_id
                                             for cid in x_ids}

    # Later batches, under a third block: the recorded decision again, from Redis.
    later = [(i % 2, "third", embedded(f"x{i}", "third", xs[i], version)) for i in range(n)]
    produce(kafka_bootstrap, topics.embedded, later)
    links = links_by_id(topic_reader(topics.links, lambda recs: len(recs) >= len(first) + n, 90))
    for cid in x_ids:
        assert len(links[cid]) == len([r for r in first + later if f'"id":"{cid}"' in r[2].decode()])
        assert len(set(links[cid])) == 1, (cid, links[cid])
    assert state.decision_count() == 2 * n
    linker.stop()

    # A fresh linker (no snapshot, its own group) over the same Redis: every record of the topic
    # is re-emitted from Redis, byte for byte, flags and all; nothing is decided again.
    run_service("linker", group_id=f"fresh-{uuid.uuid4().hex[:6]}", snapshot_dir=tmp_path / "fresh")
    total = 2 * (len(first) + n)
    again = links_by_id(topic_reader(topics.links, lambda recs: len(recs) >= total, 90))
    for cid, payloads in again.items():
        assert len(set(payloads)) == 1, (cid, payloads)
    flags = {cid: LinkEvent.model_validate_json(p[0]).is_duplicate for cid, p in again.items()}
    assert not any(flags[f"y{i}"] for i in range(n))
    assert state.decision_count() == 2 * n


def test_vectors_of_the_wrong_size_or_norm_go_to_the_dlq(run_service, kafka_bootstrap, topics, topic_reader,
                                                         news_model):
    dim, version = model_of(news_model)
    unit = unit_rows(np.random.default_rng(11), 1, dim)[0]
    bad = {
        "short": embedded("short", "default", unit[: dim // 2] / np.linalg.norm(unit[: dim // 2]), version),
        "long": embedded("long", "default", np.concatenate([unit, unit]) / np.sqrt(2), version),
        "twice": embedded("twice", "default", 2 * unit, version),
        "slightly": embedded("slightly", "default", 1.01 * unit, version),
        "half": embedded("half", "default", 0.5 * unit, version),
        "zero": embedded("zero", "default", np.zeros(dim, np.float32), version),
        "inf": embedded("inf", "default", np.where(np.arange(dim) == 0, np.inf, 0).astype(np.float32), version),
        "nan": embedded("nan", "default", unit * np.float32("nan"), version),
    }
    run_service("linker")
    records = [(0, "default", v) for v in bad.values()] + [(0, "default", embedded("good", "default", unit, version))]
    produce(kafka_bootstrap, topics.embedded, records)
    dead = topic_reader(topics.dlq, lambda recs: len(recs) >= len(bad), 60)
    by_id = {DlqRecord.from_headers(m.headers()).clipping_id: DlqRecord.from_headers(m.headers()) for m in dead}
    assert set(by_id) == set(bad)
    assert {rec.reason for rec in by_id.values()} == {"vector_invalid"}
    links = links_by_id(topic_reader(topics.links, lambda recs: len(recs) >= 1, 60))
    assert set(links) == {"good"}
