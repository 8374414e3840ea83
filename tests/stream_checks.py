"""What the streaming tests share: feeds built from the sample feed, reading what the services
wrote, and the checks that every clipping was linked exactly once and re-emitted only where the
delivery guarantee allows it."""

from __future__ import annotations

import json
import random
import time
import urllib.request
from pathlib import Path
from typing import NamedTuple

import numpy as np
from confluent_kafka import Consumer, TopicPartition
from sklearn.metrics import adjusted_rand_score

from clippings.data.dataset import load_dataset
from clippings.evaluation.linking import single_linkage
from clippings.runtime.modality import pattern_codes
from clippings.services.config import ClientSettings
from clippings.services.local.replay import raw_event
from clippings.services.schemas import EmbeddedClipping, LinkEvent, RawClipping
from clippings.services.linker.store import RedisState


def client(kafka_bootstrap, topics) -> ClientSettings:
    return ClientSettings(kafka_bootstrap_servers=kafka_bootstrap, **topics.settings())


def sample_events(sample_feed: Path, prefix: str = "") -> tuple[list[RawClipping], dict[str, str]]:
    records = load_dataset(sample_feed).records
    events = [raw_event(r, "sample", "default", prefix, "inline", 700_000) for r in records]
    return events, {f"{prefix}{r.id}": r.entity for r in records}


def noisy(text: str, rng: random.Random, edits: int) -> str:
    chars = list(text)
    for _ in range(edits if chars else 0):
        i = rng.randrange(len(chars))
        chars[i] = rng.choice("aeilnorst1. ")
    return "".join(chars)


def mixed_feed(sample_feed: Path, n: int, seed: int) -> list[RawClipping]:
    """About n clippings: the sample feed's records and OCR-noisy copies, some without their image."""
    rng = random.Random(seed)
    base, _ = sample_events(sample_feed)
    out = []
    while len(out) < n:
        for ev in base:
            k = len(out)
            variant = ev.model_copy(update={"id": f"m{seed}-{k}", "text": noisy(ev.text, rng, rng.randint(0, 6))})
            if rng.random() < 0.3 and variant.has_text:
                variant = variant.model_copy(update={"image": None})
            out.append(variant)
    rng.shuffle(out)
    return out[:n]


def links_by_id(records) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    for m in records:
        out.setdefault(LinkEvent.model_validate_json(m.value()).id, []).append(m.value())
    return out


def first_events(records) -> dict[str, EmbeddedClipping]:
    """clipping id -> its first embedded record (the one the linker decided on)."""
    out: dict[str, EmbeddedClipping] = {}
    for m in sorted(records, key=lambda m: (m.partition(), m.offset())):
        ev = EmbeddedClipping.model_validate_json(m.value())
        out.setdefault(ev.id, ev)
    return out


def first_vectors(records) -> dict[str, np.ndarray]:
    """clipping id -> the vector of its first embedded record."""
    return {cid: ev.array() for cid, ev in first_events(records).items()}


def assert_linked_exactly_once(topic_reader, topics, ids: set[str], state: RedisState, cuts: "Cuts",
                               timeout_s: float = 120.0) -> dict[str, list[bytes]]:
    links = links_by_id(topic_reader(topics.links, lambda recs: len(links_by_id(recs)) >= len(ids), timeout_s))
    assert set(links) == ids
    for cid, payloads in links.items():  # a re-emitted decision is the same decision, byte for byte
        assert len(set(payloads)) == 1, (cid, payloads)
    assert state.decision_count() == len(ids)
    entities = state.current_entities(sorted(ids))
    assert set(entities) == ids
    events = first_events(topic_reader(topics.embedded, lambda recs: ids <= {
        EmbeddedClipping.model_validate_json(m.value()).id for m in recs}, 30))
    order = sorted(ids)
    patterns = pattern_codes(np.array([events[c].has_image for c in order], np.float32),
                             np.array([events[c].has_text for c in order], np.float32))
    offline = single_linkage(np.stack([events[c].array() for c in order]), cuts.dedup, patterns,
                             cuts.text_only, cuts.image_only)
    assert adjusted_rand_score(offline, [entities[c] for c in order]) == 1.0
    return links


def metric(port: int, line_start: str) -> float | None:
    """The value of the first sample line starting with line_start; None when there is none."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(line_start):
                return float(line.rsplit(" ", 1)[1])
    return None


def wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.1)


class Cuts(NamedTuple):
    dedup: float
    text_only: float | None
    image_only: float | None


def manifest_cuts(model: Path) -> Cuts:
    """The model's cuts: like clippings, and a caption or a photo alone against a complete one."""
    th = json.loads((model / "manifest.json").read_text())["thresholds"]
    return Cuts(th["dedup"], th.get("text_only"), th.get("image_only"))


def ids_on(topic_reader, topic: str, wanted: set[str], timeout_s: float = 60.0) -> list[str]:
    """The clipping id of every record on `topic` (embedded or links), read until all of `wanted`
    are there, or after timeout_s what is there then: the caller asserts on what is missing."""
    def ids(records) -> list[str]:
        return [json.loads(m.value())["id"] for m in records]

    try:
        return ids(topic_reader(topic, lambda recs: wanted <= set(ids(recs)), timeout_s))
    except TimeoutError:
        return ids(topic_reader(topic))


def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """partition -> the offset `group` committed on `topic` (0 where it committed none)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        tps = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
        return {tp.partition: max(tp.offset, 0) for tp in tps}
    finally:
        consumer.close()


def end_offsets(records) -> dict[int, int]:
    """partition -> the offset after its last record among `records` (a topic read whole: Tansu's
    high watermark can lag behind a batch)."""
    ends: dict[int, int] = {}
    for m in records:
        ends[m.partition()] = max(ends.get(m.partition(), 0), m.offset() + 1)
    return ends
