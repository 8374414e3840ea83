"""Dead letters for records an attacker or a broken feed would send, against the real broker:
each one ends in clippings.dlq with a reason, the dead letter always fits in one message, and
the services keep going (before, each of these crash-looped the embedder or the linker).
"""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pytest
from confluent_kafka import KafkaError, Producer
from PIL import Image

from clippings.runtime.manifest import Manifest
from clippings.services.config import ClientSettings
from clippings.services.kafka.dlq import VALUE_MAX_BYTES, DeadLetters
from clippings.services.kafka.clients import Outbox, make_producer
from clippings.services.ops.metrics import ServiceMetrics
from clippings.services.schemas import DlqRecord, EmbeddedClipping, LinkEvent, RawClipping, peek_id

pytestmark = pytest.mark.integration

MB = 1_000_000
DEEP = b'{"id": "bad-deep", "metadata": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001  # 35 KB, 5,000 levels


def big_producer(bootstrap: str) -> Producer:
    """A feed's producer allowed 20 MB records: the broker takes them, the services must cope."""
    return Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 20 * MB})


def publish(bootstrap: str, topic: str, records: dict[str, tuple[bytes, bytes | None, list]]) -> None:
    p = big_producer(bootstrap)
    for value, key, headers in records.values():
        p.produce(topic, value=value, key=key, headers=headers)
    assert p.flush(60) == 0


def dead_letters(topic_reader, topic: str, n: int) -> list[tuple[DlqRecord, object]]:
    return [(DlqRecord.from_headers(m.headers()), m) for m in topic_reader(topic, lambda recs: len(recs) >= n, 120)]


def assert_cut_right(rec: DlqRecord, m, original: bytes) -> None:
    """The dead letter holds the original value, or its first bytes with the original's size and hash."""
    if "value" in rec.truncated:
        assert rec.value_bytes == len(original) and rec.value_sha256 == hashlib.sha256(original).hexdigest()
        assert original.startswith(m.value() or b"")
    else:
        assert m.value() == original and rec.value_bytes is None


HOSTILE_ORIGINALS = {  # name -> value, key, headers, and the parts its dead letter must cut
    "near-limit": (b"\xff" * 999_700, b"near-limit", [("trace", b"1")], {"value"}),
    "huge-id": (json.dumps({"id": "x" * 900_000}).encode(), b"huge-id", [], {"clipping_id"}),
    "id-one-over": (json.dumps({"id": "y" * 513}).encode(), b"id-one-over", [], {"clipping_id"}),
    "huge-key": (b"not json", b"k" * 900_000, [], {"key"}),
    "huge-headers": (b"not json", b"huge-headers", [("h", b"y" * 500_000)], {"headers"}),
    "ten-mb": (json.dumps({"schema_version": 2, "id": "v2", "text": "t" * 10 * MB}).encode(), b"ten-mb", [], {"value"}),
}


def test_a_dead_letter_always_fits_in_one_message(kafka_bootstrap, topics, topic_reader):
    publish(kafka_bootstrap, topics.raw, {k: v[:3] for k, v in HOSTILE_ORIGINALS.items()})
    originals = topic_reader(topics.raw, lambda recs: len(recs) >= len(HOSTILE_ORIGINALS), 60)
    dlq = DeadLetters(topics.dlq, "embedder", "test", ServiceMetrics("embedder"))
    outbox = Outbox(make_producer(ClientSettings(kafka_bootstrap_servers=kafka_bootstrap)))  # default limits
    detail = "a reason longer than the DLQ header keeps; " * 100  # 4,300 characters: cut, not refused
    for msg in originals:
        dlq.send(outbox, msg, "schema", detail, peek_id(msg.value()))
    outbox.wait()

    by_offset = {(m.partition(), m.offset()): m for m in originals}
    dead = dead_letters(topic_reader, topics.dlq, len(originals))
    assert len(dead) == len(originals)
    for rec, m in dead:
        original = by_offset[(rec.origin.partition, rec.origin.offset)]
        name = original.key().decode() if len(original.key()) < 100 else "huge-key"
        assert set(rec.truncated) == HOSTILE_ORIGINALS[name][3], name
        assert_cut_right(rec, m, original.value())
        assert len(m.value() or b"") <= VALUE_MAX_BYTES
        assert m.key() == (None if "key" in rec.truncated else original.key())
        kept = [h for h in m.headers() if h[0] != "clippings.dlq"]
        assert kept == ([] if "headers" in rec.truncated else list(original.headers() or []))
        assert rec.detail == detail[:2000]
        if name == "huge-id":
            assert rec.clipping_id == "x" * 512
        if name == "id-one-over":
            assert rec.clipping_id == "y" * 512


class BrokerRefusesOver:
    """The real producer behind a broker whose max.message.bytes is `limit` (Tansu enforces none):
    larger records are answered in their delivery report with MSG_SIZE_TOO_LARGE, as a Kafka
    broker answers; the others are produced as they are."""

    def __init__(self, producer: Producer, limit: int):
        self._producer = producer
        self._limit = limit
        self._refused: list = []

    def produce(self, topic, value=None, key=None, headers=None, on_delivery=None):
        size = len(value or b"") + len(key or b"") + sum(len(n) + len(v or b"") for n, v in headers or [])
        if size > self._limit:
            self._refused.append(on_delivery)
        else:
            self._producer.produce(topic, value=value, key=key, headers=headers, on_delivery=on_delivery)

    def _answer(self) -> None:
        refused, self._refused = self._refused, []
        for on_delivery in refused:
            on_delivery(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE), None)

    def poll(self, timeout: float) -> int:
        self._answer()
        return self._producer.poll(timeout)

    def flush(self, timeout: float) -> int:
        self._answer()
        return self._producer.flush(timeout)


@pytest.mark.parametrize("where", ["producer", "broker"])
def test_a_refused_dead_letter_falls_back_to_a_minimal_one(where, kafka_bootstrap, topics, topic_reader):
    """Refused by the producer (raised by produce()) or by the broker (in the delivery report):
    the minimal dead letter goes instead, and the batch is acknowledged."""
    value = b"\x00" * 300_000
    publish(kafka_bootstrap, topics.raw, {"big": (value, b"big", [("trace", b"1")]),
                                          "small": (b"\x00 small", b"small", [])})
    originals = sorted(topic_reader(topics.raw, lambda recs: len(recs) >= 2, 60), key=lambda m: -len(m.value()))
    if where == "producer":
        producer = make_producer(ClientSettings(kafka_bootstrap_servers=kafka_bootstrap,
                                                kafka_extra={"message.max.bytes": "100000"}))
    else:
        producer = BrokerRefusesOver(make_producer(ClientSettings(kafka_bootstrap_servers=kafka_bootstrap)), 100_000)
    dlq = DeadLetters(topics.dlq, "embedder", "test", ServiceMetrics("embedder"))
    outbox = Outbox(producer)
    for msg in originals:
        dlq.send(outbox, msg, "schema", "not JSON", None)
    outbox.wait()

    dead = {m.key(): (rec, m) for rec, m in dead_letters(topic_reader, topics.dlq, 2)}
    assert set(dead) == {None, b"small"}
    rec, m = dead[None]
    assert set(rec.truncated) == {"value", "key", "headers"} and not m.value()
    assert [h[0] for h in m.headers()] == ["clippings.dlq"]
    assert rec.value_bytes == len(value) and rec.value_sha256 == hashlib.sha256(value).hexdigest()
    assert rec.reason == "schema" and rec.origin.offset == originals[0].offset()
    rec, m = dead[b"small"]
    assert rec.truncated == [] and m.value() == b"\x00 small"


def png(size=(48, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (120, 80, 40)).save(buf, format="PNG")
    return buf.getvalue()


def raw_records() -> tuple[dict[str, tuple[bytes, bytes, list]], dict[str, str]]:
    """Hostile records with good ones between them; -> records by name, the reason for each bad one."""
    def raw(**fields) -> bytes:
        return RawClipping(**fields).to_bytes()

    expected = {
        "deep": "schema", "near-limit": "schema", "huge-id": "schema", "ten-mb": "schema",
        "invisible": "empty", "corrupt-image-with-text": "image_undecodable",
    }
    values = {
        "deep": DEEP,
        "good-1": raw(id="good-1", text="FLOOD WATERS RISE -- Residents leave their homes."),
        "near-limit": HOSTILE_ORIGINALS["near-limit"][0],
        "huge-id": HOSTILE_ORIGINALS["huge-id"][0],
        "good-2": raw(id="good-2", text="MAYOR OPENS NEW BRIDGE over the river on Sunday."),
        "ten-mb": HOSTILE_ORIGINALS["ten-mb"][0],
        "invisible": raw(id="invisible", text="\u200b\ufeff\x00\u200e\u202e\u2066 \u00ad\u2028"),
        "corrupt-image-with-text": raw(id="corrupt-image-with-text", text="FIRE AT THE MILL",
                                       image=b"\x89PNG\r\n\x1a\n but no image follows"),
        "good-image-invisible-text": raw(id="good-image-invisible-text", image=png(), text="\u200b\u200b"),
        "good-3": raw(id="good-3", text="Harvest festival draws crowds to the square."),
    }
    return {name: (v, name.encode(), [("trace", name.encode())]) for name, v in values.items()}, expected


def embedded_records(model) -> dict[str, tuple[bytes, bytes, list]]:
    manifest = json.loads((model / "manifest.json").read_text())
    vector = np.zeros(Manifest.load(model).served_dim, np.float32)
    vector[0] = 1
    doc = json.loads(EmbeddedClipping(
        id="emb-v2", block="default", model=manifest["name"], model_version=manifest["version"],
        dim=len(vector), vector=EmbeddedClipping.pack(vector), has_image=False, has_text=True,
        origin={"topic": "clippings.raw", "partition": 0, "offset": 0}, raw_ts_ms=1, embedded_ts_ms=1).to_bytes())
    v2 = json.dumps(doc | {"schema_version": 2}).encode()
    return {"emb-v2": (v2, b"default", []), "emb-deep": (DEEP, b"default", [])}


def test_hostile_records_end_in_the_dlq_and_the_services_go_on(run_service, kafka_bootstrap, topics, topic_reader,
                                                              news_model):
    embedder = run_service("embedder")
    linker = run_service("linker")
    records, expected = raw_records()
    publish(kafka_bootstrap, topics.raw, records)
    publish(kafka_bootstrap, topics.embedded, embedded_records(news_model))
    expected |= {"emb-v2": "schema", "emb-deep": "schema"}

    dead = dead_letters(topic_reader, topics.dlq, len(expected))
    got = {}
    for rec, m in dead:
        name = (m.key() or b"").decode() if rec.stage == "embedder" else ("emb-v2" if b'"emb-v2"' in m.value()
                                                                           else "emb-deep")
        got[name] = rec.reason
        original = (records if rec.stage == "embedder" else embedded_records(news_model))[name][0]
        assert_cut_right(rec, m, original)
    assert got == expected

    good = {n for n in records if n.startswith("good")}
    links = topic_reader(topics.links, lambda recs: len(recs) >= len(good), 120)
    assert {LinkEvent.model_validate_json(m.value()).id for m in links} == good
    embedded = {e.id: e for e in (EmbeddedClipping.model_validate_json(m.value()) for m in topic_reader(topics.embedded)
                                  if m.key() == b"default" and m.value().startswith(b'{"schema_version":1'))}
    assert set(embedded) == good  # nothing for the corrupt image: not embedded as text alone
    assert embedded["good-image-invisible-text"].has_image and not embedded["good-image-invisible-text"].has_text
    for st in (embedder, linker):  # no crash, no restart
        assert st.error is None and st._thread.is_alive()
