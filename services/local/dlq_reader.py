"""`clippings dlq`: the dead letters in clippings.dlq, each with the reason its header gives.

Like `clippings tail`, it assigns every partition itself (no group, nothing committed). It
reads the topic from the start to its current end (the partition-end events of the fetches,
not ListOffsets, say where that is), prints the newest ones or, with from_beginning, the
oldest first, then with follow waits for new ones.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import Counter, deque
from dataclasses import dataclass
from typing import Callable, Iterator

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition
from pydantic import ValidationError

from clippings.services.config import ClientSettings
from clippings.services.local.discover import probe_topic
from clippings.services.kafka.clients import client_config
from clippings.services.schemas import DlqRecord
from clippings.services.local.tail import printable

_HEAD_CHARS = 200  # of the original value, in --json


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    key: bytes | None
    value: bytes | None
    record: DlqRecord | None  # None: no readable clippings.dlq header
    problem: str | None = None  # why record is None

    @classmethod
    def of(cls, msg: Message) -> "DeadLetter":
        record, problem = None, None
        try:
            record = DlqRecord.from_headers(msg.headers())
        except (ValueError, ValidationError) as exc:  # ValidationError: a header of another version
            problem = f"unreadable header: {str(exc).splitlines()[0]}"
        kind, ts = msg.timestamp()
        return cls(msg.topic(), msg.partition(), msg.offset(), ts if kind else None, msg.key(), msg.value(),
                   record, problem)

    @property
    def reason(self) -> str | None:
        return self.record.reason if self.record else None

    def to_dict(self) -> dict:
        value = self.value or b""
        return {
            "dlq": {"topic": self.topic, "partition": self.partition, "offset": self.offset,
                    "timestamp_ms": self.timestamp_ms},
            "header": self.record.model_dump() if self.record else None,
            "problem": self.problem,
            "key": None if self.key is None else self.key.decode("utf-8", "replace"),
            "value_bytes": len(value),
            "value_head": value[:_HEAD_CHARS * 4].decode("utf-8", "replace")[:_HEAD_CHARS],
        }

    def line(self) -> str:
        when = "-" if self.timestamp_ms is None else dt.datetime.fromtimestamp(
            self.timestamp_ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        where = f"dlq {self.partition}@{self.offset}"
        if self.record is None:
            return printable(f"{when}  {'?':<19} {where}  {self.problem}")
        r, o = self.record, self.record.origin
        return printable(f"{when}  {r.reason:<19} {r.stage:<8} id={r.clipping_id or '-'}  "
                         f"from {o.topic} {o.partition}@{o.offset}  {where}  {r.detail}")


def _eof(msg: Message) -> bool:
    return msg.error() is not None and msg.error().code() == KafkaError._PARTITION_EOF


def _records(consumer: Consumer, partitions: int, stop: Callable[[], bool]) -> Iterator[DeadLetter | None]:
    """Every record from the start; a None marks the moment every partition reached its end."""
    at_end: set[int] = set()
    while not stop():
        for msg in consumer.consume(200, 0.2):
            if _eof(msg):
                at_end.add(msg.partition())
                if len(at_end) == partitions:
                    at_end.add(-1)  # say it once
                    yield None
            elif msg.error() is None:
                yield DeadLetter.of(msg)


def read_dead_letters(
    settings: ClientSettings,
    from_beginning: bool = False,  # oldest first; else the newest max_records (None: all), oldest of them first
    max_records: int | None = None,  # stop after this many
    follow: bool = False,  # after the current end, wait for new ones
    reasons: set[str] | None = None,  # only these reasons
    stop: Callable[[], bool] = lambda: False,
) -> Iterator[DeadLetter]:
    partitions = probe_topic(settings, settings.topic_dlq)
    consumer = Consumer(client_config(settings) | {
        "group.id": f"clippings-dlq-{uuid.uuid4().hex[:8]}",  # never joined: partitions are assigned
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "fetch.wait.max.ms": settings.kafka_fetch_wait_max_ms,
    })
    try:
        consumer.assign([TopicPartition(settings.topic_dlq, p, OFFSET_BEGINNING) for p in range(partitions)])
        newest: deque[DeadLetter] | None = None if from_beginning else deque(maxlen=max_records)
        shown = 0
        for letter in _records(consumer, partitions, stop):
            if letter is None:  # the end of what is there now
                for old in newest or ():
                    yield old
                    shown += 1
                newest = None
                if not follow or (max_records is not None and shown >= max_records):
                    return
            elif reasons is None or letter.reason in reasons:
                if newest is not None:
                    newest.append(letter)
                    continue
                yield letter
                shown += 1
                if max_records is not None and shown >= max_records:
                    return
    finally:
        consumer.close()


def tally(letters: list[DeadLetter]) -> str:
    """'3 dead letters (schema=2 empty=1)'."""
    counts = Counter(d.reason or "unreadable" for d in letters)
    detail = " ".join(f"{k}={n}" for k, n in counts.most_common())
    return f"{len(letters)} dead letter{'s' if len(letters) != 1 else ''}" + (f" ({detail})" if detail else "")


def to_json(letter: DeadLetter) -> str:
    return json.dumps(letter.to_dict(), ensure_ascii=True)
