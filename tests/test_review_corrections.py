"""Reviewers' actions: stored in PostgreSQL, published to clippings.corrections on the partition
of the clipping's link event (read back from the real broker), refused with a clear message
when they cannot be; rows left unpublished by a crash are published at start."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest
from review_fixtures import (apply, link, raw, review_app, review_database_url, review_engine,  # noqa: F401
                             review_settings, reviewer)
from sqlalchemy import select

from clippings.review.tables import corrections
from clippings.services.schemas import Correction, CorrectionRef

pytestmark = pytest.mark.integration


def rows(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(select(corrections).order_by(corrections.c.at)).all()


def published(topic_reader, topic: str, n: int) -> list:
    return topic_reader(topic, lambda recs: len(recs) >= n, 30)


def _entity_of_two(engine):
    # a (partition 1) founded e-a; b joined it; c is alone; z is in another block.
    apply(engine, raw("a"), raw("b"), raw("c"), raw("z", block="b2"),
          link("a", partition=1), link("b", "e-a", matched="a", sim=0.88, partition=1),
          link("c", partition=1), link("z", block="b2", partition=0))


def test_reject_confirm_merge_are_stored_and_published_to_the_link_partition(review_engine, reviewer, topics,
                                                                            topic_reader):
    client, token = reviewer
    _entity_of_two(review_engine)
    for path, data in (("/reject/b", {"note": "other photo"}), ("/confirm/a", {}), ("/merge/c", {"target_id": "a"})):
        resp = client.post(path, data=data | {"csrf_token": token}, follow_redirects=True)
        assert "stored and published" in resp.get_data(as_text=True), path
    stored = rows(review_engine)
    assert [(r.action, r.clipping_id, r.target_id, r.reviewer, r.block) for r in stored] == [
        ("reject", "b", None, "ada", "b1"), ("confirm", "a", None, "ada", "b1"), ("merge", "c", "a", "ada", "b1")]
    assert stored[0].note == "other photo" and all(r.published_at is not None for r in stored)
    msgs = published(topic_reader, topics.corrections, 3)
    assert {m.partition() for m in msgs} == {1}  # the partition of the clippings' link events
    events = [Correction.model_validate_json(m.value()) for m in sorted(msgs, key=lambda m: m.offset())]
    assert [(e.id, e.action, e.clipping_id, e.target_id) for e in events] == [
        (str(r.id), r.action, r.clipping_id, r.target_id) for r in stored]
    assert all(m.key() == b"b1" for m in msgs)


def test_refusals_store_nothing(review_engine, reviewer):
    client, token = reviewer
    _entity_of_two(review_engine)
    for path, data, says in (
            ("/merge/a", {"target_id": "z"}, "only clippings of one block are ever compared"),
            ("/merge/a", {"target_id": "b"}, "in one entity already"),
            ("/merge/a", {"target_id": ""}, "a merge needs the id"),
            ("/merge/a", {"target_id": "nobody"}, "unknown clipping id"),
            ("/reject/c", {}, "alone in its entity already"),
            ("/reject/b", {"target_id": "z"}, "only clippings of one block"),
            ("/confirm/nobody", {}, "unknown clipping id")):
        page = client.post(path, data=data | {"csrf_token": token}, follow_redirects=True).get_data(as_text=True)
        assert says in page, (path, data)
    assert rows(review_engine) == []


def test_a_rejected_clipping_can_join_another_entity(review_engine, reviewer, topics, topic_reader):
    client, token = reviewer
    _entity_of_two(review_engine)
    client.post("/reject/b", data={"csrf_token": token, "target_id": "c"})
    (event,) = [Correction.model_validate_json(m.value()) for m in published(topic_reader, topics.corrections, 1)]
    assert (event.action, event.clipping_id, event.target_id) == ("reject", "b", "c")


def test_history_shows_the_action_and_the_linker_applying_it(review_engine, reviewer):
    client, token = reviewer
    _entity_of_two(review_engine)
    client.post("/reject/b", data={"csrf_token": token, "note": "not the same flood"})
    (row,) = rows(review_engine)
    # The correction link event the linker emits when it applies the reject.
    ref = CorrectionRef(id=str(row.id), action="reject", reviewer="ada", at_ms=int(row.at.timestamp() * 1000))
    assert apply(review_engine, link("b", "e-b", partition=1, correction=ref, linked_ms=10**13)) == 1
    page = client.get("/entity/e-a").get_data(as_text=True)
    assert "not the same flood" in page and "ada" in page and ">b</a>" in page
    page = client.get("/entity/e-b").get_data(as_text=True)
    assert "applied by the linker" in page and "now in e-b" in page
    assert "(decided: e-a)" in client.get("/decision/b").get_data(as_text=True)


def test_unpublished_rows_are_published_at_start(review_settings, review_engine, topics, topic_reader):
    from clippings.review.server import ReviewServer

    _entity_of_two(review_engine)
    ids = [uuid.uuid4(), uuid.uuid4()]
    with review_engine.begin() as conn:  # as a crash between insert and acknowledgement leaves them
        for cid, (action, clip) in zip(ids, (("confirm", "a"), ("reject", "b"))):
            conn.execute(corrections.insert().values(
                id=cid, action=action, block="b1", clipping_id=clip, reviewer="bob", entity_id="e-a",
                at=datetime.now(timezone.utc), note="", kafka_partition=1))
    server = ReviewServer(review_settings(), read_events=False).start()
    try:
        msgs = published(topic_reader, topics.corrections, 2)
        assert sorted(Correction.model_validate_json(m.value()).id for m in msgs) == sorted(map(str, ids))
        assert {m.partition() for m in msgs} == {1}
        assert all(r.published_at is not None for r in rows(review_engine))
        server.publisher.publish_pending()  # nothing left: nothing sent twice
        assert len(topic_reader(topics.corrections)) == 2
    finally:
        server.stop()


def test_a_broker_that_does_not_acknowledge_leaves_the_row_unpublished(review_settings, review_engine):
    from clippings.review.corrections import record
    from clippings.review.publish import CorrectionPublisher

    _entity_of_two(review_engine)
    settings = review_settings(kafka_bootstrap_servers="127.0.0.1:1", review_publish_timeout_s=1.0)
    publisher = CorrectionPublisher(settings, review_engine)
    with review_engine.begin() as conn:
        event, partition = record(conn, "confirm", "a", "ada")
    assert publisher.publish(event, partition) is False
    assert [r.published_at for r in rows(review_engine)] == [None]


def test_the_background_retry_leaves_a_row_its_action_is_still_publishing(review_settings, review_engine, topics,
                                                                           topic_reader):
    """A row younger than the action's own wait may be in flight: only older ones are sent again."""
    from datetime import timedelta

    from clippings.review.publish import CorrectionPublisher

    _entity_of_two(review_engine)
    now = datetime.now(timezone.utc)
    young, old = uuid.uuid4(), uuid.uuid4()
    with review_engine.begin() as conn:
        for cid, at in ((young, now), (old, now - timedelta(minutes=5))):
            conn.execute(corrections.insert().values(
                id=cid, action="confirm", block="b1", clipping_id="a", reviewer="bob", entity_id="e-a",
                at=at, note="", kafka_partition=0))
    publisher = CorrectionPublisher(review_settings(), review_engine, retry_every_s=0.0)
    try:
        publisher.retry_due()
        [msg] = published(topic_reader, topics.corrections, 1)
        assert Correction.model_validate_json(msg.value()).id == str(old)
        assert {str(r.id): r.published_at is not None for r in rows(review_engine)} == {str(young): False,
                                                                                      str(old): True}
    finally:
        publisher.close()
