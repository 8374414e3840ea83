"""The review database follows the topics: raw clippings and link events read by the reader
thread from the real broker; membership as the link events say (merges, corrections); reading
everything again from the beginning changes nothing."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Producer
from review_fixtures import (apply, link, png, raw, review_database_url, review_engine,  # noqa: F401
                             review_settings)
from sqlalchemy import text
from stream_checks import wait_for

from clippings.review.consumer import EventReader
from clippings.services.schemas import CorrectionRef

pytestmark = pytest.mark.integration


def membership(engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT clipping_id, entity_id FROM membership")).all())


def dump(engine) -> list:
    with engine.connect() as conn:
        return [conn.execute(text(f"SELECT * FROM {t} ORDER BY 1, 2")).all()
                for t in ("clippings", "decisions", "correction_events", "membership")]


def feed():
    ref = CorrectionRef(id="corr-1", action="reject", reviewer="ada", at_ms=5)
    merge = CorrectionRef(id="corr-2", action="merge", reviewer="bob", at_ms=6)
    raws = [raw("a", image=png()), raw("b", "FLOOD"), raw("c"), raw("d"), raw("x", "<b>bold</b>")]
    links = [link("a", offset=0), link("b", "e-a", matched="a", sim=0.9, offset=1), link("c", offset=2),
             # d bridges e-a and e-c: e-c's members follow into e-a
             link("d", "e-a", matched="a", sim=0.88, merged=("e-c",), offset=3),
             link("b", "e-b", correction=ref),  # the linker applied a reject: b alone now
             link("x", offset=4), link("x", "e-b", merged=("e-x",), correction=merge)]  # then a merge
    return raws, links


def test_membership_follows_decisions_merges_and_corrections(review_engine):
    raws, links = feed()
    assert apply(review_engine, *raws, *links) == len(raws) + len(links)
    assert membership(review_engine) == {"a": "e-a", "c": "e-a", "d": "e-a", "b": "e-b", "x": "e-b"}
    before = dump(review_engine)
    assert apply(review_engine, *raws, *links) == 0  # a re-read or a re-emitted event changes nothing
    assert apply(review_engine, link("b", "e-a", matched="a", sim=0.9, offset=1)) == 0
    assert dump(review_engine) == before


def test_the_reader_ingests_both_topics_and_a_reread_changes_nothing(review_settings, review_engine, topics,
                                                                     kafka_bootstrap):
    raws, links = feed()
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for r in raws:
        producer.produce(topics.raw, r.to_bytes(), key=r.id)
    for ln in links:  # keyed by block, as the linker does: one partition, decision order
        producer.produce(topics.links, ln.to_bytes(), key=ln.block)
    producer.produce(topics.links, b"not json", key="b1")  # skipped, logged
    assert producer.flush(10) == 0
    settings = review_settings()
    reader = EventReader(settings, review_engine).start()
    try:
        wait_for(lambda: reader.applied >= len(raws) + len(links), 60, "the reader applied every event")
    finally:
        reader.stop()
    assert reader.error is None
    assert membership(review_engine)["x"] == "e-b"
    with review_engine.connect() as conn:
        image = conn.execute(text("SELECT image FROM clippings WHERE id = 'a'")).scalar()
    assert bytes(image) == png()
    before = dump(review_engine)
    again = EventReader(review_settings(review_group_id="rev-again"), review_engine).start()  # from the beginning
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not _caught_up(kafka_bootstrap, "rev-again", topics):
            time.sleep(0.3)
        assert _caught_up(kafka_bootstrap, "rev-again", topics), "the second reader did not read the topics"
    finally:
        again.stop()
    assert again.applied == 0 and dump(review_engine) == before


def _caught_up(bootstrap: str, group: str, topics) -> bool:
    from conftest import read_topic
    from stream_checks import committed_offsets

    for topic in (topics.raw, topics.links):
        ends: dict[int, int] = {}
        for m in read_topic(bootstrap, topic, idle_s=0.3):
            ends[m.partition()] = max(ends.get(m.partition(), 0), m.offset() + 1)
        done = committed_offsets(bootstrap, group, topic)
        if any(done.get(p, 0) < end for p, end in ends.items()):
            return False
    return True
