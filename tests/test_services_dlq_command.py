"""`clippings dlq` against the real broker: dead letters with the reasons of their header."""

from __future__ import annotations

import json
import threading
import time

import pytest

from clippings.services.schemas import DlqRecord, KafkaPosition

pytestmark = pytest.mark.integration

LETTERS = [  # (clipping id, original value, reason, detail)
    ("c-1", b"not json", "schema", "not JSON"),
    ("c-2", b'{"id": "c-2"}', "empty", "neither an image nor text"),
    ("c-3", b'{"id": "c-3", "image_uri": "https://x/a.jpg"}', "image_fetch_failed", "refused\x1b[31m red"),
]


def dead_letter(producer, topic: str, cid: str, value: bytes, reason: str, detail: str, offset: int) -> None:
    """What the services' DeadLetters writes: the original bytes, the reason in the clippings.dlq header."""
    record = DlqRecord(stage="embedder", reason=reason, detail=detail, clipping_id=cid,
                       origin=KafkaPosition(topic="clippings.raw", partition=2, offset=offset),
                       failed_ts_ms=int(time.time() * 1000), service="embedder-0")
    producer.produce(topic, value=value, key=cid, headers=[("origin-header", b"kept"), record.to_header()])


@pytest.fixture
def dlq(kafka_bootstrap, topics, monkeypatch):
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for offset, (cid, value, reason, detail) in enumerate(LETTERS):
        dead_letter(producer, topics.dlq, cid, value, reason, detail, offset)
    producer.produce(topics.dlq, value=b"from a hand-written producer", key=b"x")  # no header at all
    assert producer.flush(30) == 0
    for name, value in ({"CLIPPINGS_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap} | topics.env()).items():
        monkeypatch.setenv(name, value)
    return producer


def run(capsys, *args: str) -> tuple[list[str], str]:
    from clippings.services.__main__ import main

    assert main(["dlq", *args]) == 0
    captured = capsys.readouterr()
    return captured.out.strip().splitlines(), captured.err


def test_dlq_prints_every_dead_letter_with_its_reason(dlq, capsys):
    lines, err = run(capsys, "--from-beginning")
    assert len(lines) == 4
    for line, (cid, _, reason, _) in zip(lines, LETTERS):
        assert reason in line and f"id={cid}" in line and "from clippings.raw 2@" in line
    assert "not JSON" in lines[0] and "neither an image nor text" in lines[1]
    assert "\x1b" not in lines[2] and "\\x1b[31m red" in lines[2]  # a detail cannot drive the terminal
    assert "unreadable header" in lines[3]
    assert "4 dead letters" in err and "schema=1" in err


def test_dlq_filters_by_reason_and_shows_the_newest(dlq, capsys):
    lines, _ = run(capsys, "--from-beginning", "--reason", "schema", "--reason", "image_fetch_failed")
    assert [line.split()[2] for line in lines] == ["schema", "image_fetch_failed"]
    lines, _ = run(capsys, "--max", "2")  # the newest two, oldest of them first
    assert "image_fetch_failed" in lines[0] and "unreadable header" in lines[1] and len(lines) == 2
    lines, _ = run(capsys, "--from-beginning", "--max", "1")
    assert len(lines) == 1 and "schema" in lines[0]


def test_dlq_json_carries_header_position_and_original(dlq, capsys, topics):
    lines, _ = run(capsys, "--from-beginning", "--json")
    objs = [json.loads(line) for line in lines]
    assert [o["header"]["reason"] for o in objs[:3]] == ["schema", "empty", "image_fetch_failed"]
    assert objs[0]["header"]["origin"] == {"topic": "clippings.raw", "partition": 2, "offset": 0}
    assert objs[0]["key"] == "c-1" and objs[0]["value_head"] == "not json" and objs[0]["value_bytes"] == 8
    assert objs[0]["dlq"]["topic"] == topics.dlq and objs[0]["dlq"]["offset"] == 0
    assert objs[3]["header"] is None and "no clippings.dlq header" in objs[3]["problem"]


def test_dlq_follow_prints_new_dead_letters(dlq, capsys, topics):
    from clippings.services.__main__ import main

    result = {}
    reader = threading.Thread(target=lambda: result.update(rc=main(["dlq", "--follow", "--from-beginning",
                                                                     "--max", "5"])), daemon=True)
    reader.start()
    time.sleep(1)  # not a timing assertion: the new letter may arrive before or after the backlog is read
    dead_letter(dlq, topics.dlq, "c-9", b"{}", "empty", "late", 9)
    assert dlq.flush(30) == 0
    reader.join(60)
    assert result.get("rc") == 0, "dlq --follow did not print the new dead letter within 60 s"
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 5 and "id=c-9" in lines[-1]


def test_dlq_rejects_an_unknown_reason(dlq, capsys):
    from clippings.services.__main__ import main

    assert main(["dlq", "--reason", "bogus"]) == 2
    assert "unknown --reason bogus" in capsys.readouterr().err
