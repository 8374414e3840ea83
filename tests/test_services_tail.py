"""`clippings tail`: verdicts on the flags, the id-prefix filter, stopping once a dataset is complete."""

from __future__ import annotations

import pytest

from clippings.services.schemas import KafkaPosition, LinkEvent
from clippings.services.local.tail import LinkTally, format_link


def link(cid: str, entity: str, duplicate: bool = False, offset: int = 0) -> LinkEvent:
    return LinkEvent(id=cid, block="default", entity_id=entity, is_duplicate=duplicate,
                     matched_id="x" if duplicate else None, similarity=0.9 if duplicate else None,
                     model_version="v", threshold=0.8, origin=KafkaPosition(topic="e", partition=0, offset=offset),
                     raw_ts_ms=1000 + offset, embedded_ts_ms=1100 + offset, linked_ts_ms=1200 + offset)


def test_an_unlabelled_clipping_is_unlabelled_not_wrong():
    tally = LinkTally(labels={"a": "E1", "b": "E1"})
    verdicts = [tally.add(link("a", "e-a")), tally.add(link("b", "e-a", True, 1)),
                tally.add(link("other", "e-o", False, 2))]
    assert verdicts == ["ok", "ok", "unlabelled"]
    assert "WRONG" not in format_link(link("other", "e-o"), verdicts[2], color=False)
    assert "unlabelled" in format_link(link("other", "e-o"), verdicts[2], color=False)
    summary = dict(part.split("=", 1) for part in tally.summary().split())
    assert summary["flags_correct"] == "2/2" and summary["unlabelled"] == "1" and summary["events"] == "3"


def test_a_wrong_flag_is_still_wrong():
    tally = LinkTally(labels={"a": "E1", "b": "E2"})
    tally.add(link("a", "e-a"))
    verdict = tally.add(link("b", "e-a", True, 1))
    assert verdict == "wrong" and "WRONG (labels say new)" in format_link(link("b", "e-a", True), verdict, False)
    assert "flags_correct=1/2" in tally.summary()


def test_complete_once_every_labelled_clipping_was_seen():
    tally = LinkTally(labels={"a": "E1", "b": "E2"})
    tally.add(link("a", "e-a"))
    tally.add(link("zzz", "e-z", offset=1))
    assert not tally.complete
    tally.add(link("b", "e-b", offset=2))
    assert tally.complete


def test_control_characters_in_an_id_do_not_reach_the_terminal():
    line = format_link(link("evil\x1b[2J\r\nDUP fake", "e-1"), "", color=False)
    assert "\x1b" not in line and "\r" not in line and "\n" not in line and "\\x1b[2J" in line


@pytest.mark.integration
def test_tail_counts_only_its_prefix_and_stops_when_complete(kafka_bootstrap, topics, monkeypatch, capsys, tmp_path):
    from confluent_kafka import Producer

    from clippings.services.__main__ import main

    feed = tmp_path / "feed"
    feed.mkdir()
    (feed / "records.jsonl").write_text('{"id": "a", "text": "x", "entity": "E1"}\n'
                                        '{"id": "b", "text": "y", "entity": "E1"}\n')
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    # Other traffic first and between: another replay's ids, and an unlabelled one of ours.
    events = [link("other-a", "e-o"), link("smoke-a", "e-smoke-a", offset=1), link("other-b", "e-o", True, 2),
              link("smoke-new", "e-n", offset=3), link("smoke-b", "e-smoke-a", True, 4)]
    for ev in events:
        producer.produce(topics.links, ev.to_bytes(), key=ev.block)
    assert producer.flush(30) == 0
    for name, value in ({"CLIPPINGS_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap} | topics.env()).items():
        monkeypatch.setenv(name, value)
    # No --max-events: it stops because both labelled clippings were seen; 120 s is only a bound.
    assert main(["tail", "--from-beginning", "--labels", str(feed), "--id-prefix", "smoke-", "--until-complete",
                 "--idle-timeout", "120"]) == 0
    out = capsys.readouterr().out
    assert "other-" not in out and "WRONG" not in out
    summary = dict(part.split("=", 1) for part in out.strip().splitlines()[-1].split())
    assert summary["events"] == "3" and summary["flags_correct"] == "2/2" and summary["unlabelled"] == "1"


def test_a_duplicate_line_shows_the_match_probability_when_the_event_has_one():
    dup = link("b", "e-a", True, 1)
    assert format_link(dup, "ok", color=False).endswith("matched=x cos=0.900")
    with_p = dup.model_copy(update={"probability": 0.934})
    assert format_link(with_p, "ok", color=False).endswith("matched=x cos=0.900 p=0.93")
