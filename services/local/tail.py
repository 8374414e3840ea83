"""`clippings tail`: print link events as they arrive, duplicates highlighted, then a summary.

Reads clippings.links without joining a group (it assigns every partition itself), so it
starts at once and commits nothing. Given the dataset's labels it also says, for each flag,
whether it is right: a clipping is a duplicate exactly when a clipping of the same labelled
entity was linked before it. A clipping the labels do not know is "unlabelled", not wrong.
With an id prefix, only clippings whose id starts with it count (other traffic is skipped).
"""

from __future__ import annotations

import re
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import TextIO

import numpy as np
from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, TopicPartition
from pydantic import ValidationError

from clippings.services.config import ClientSettings
from clippings.services.local.discover import probe_topic
from clippings.services.kafka.clients import client_config
from clippings.services.linker.partition import Entities
from clippings.services.schemas import LinkEvent

_BOLD_YELLOW, _RED, _RESET = "\033[1;33m", "\033[31m", "\033[0m"
OK, WRONG, UNLABELLED, UNCHECKED = "ok", "wrong", "unlabelled", ""  # verdicts on a flag
CORRECTED = "corrected"  # a reviewer's correction, not a flag
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str) -> str:
    """Control characters escaped: an id or a reason from the stream must not drive the terminal."""
    return _CONTROL.sub(lambda m: ascii(m.group())[1:-1], text)


@dataclass
class LinkTally:
    """What the link events say so far: entities (with merges applied), flags, latencies."""

    labels: dict[str, str] | None = None
    events: dict[str, LinkEvent] = field(default_factory=dict)  # first event per clipping
    repeats: int = 0
    corrections: int = 0
    duplicates: int = 0
    flags_correct: int = 0
    unlabelled: int = 0
    _entities: Entities = field(default_factory=Entities)  # the linker's union-find, merges applied
    _labels_seen: set[str] = field(default_factory=set)

    def _find(self, e: str) -> str:
        return self._entities.find(e)

    def add(self, link: LinkEvent) -> str | None:
        """-> None for a repeat of a clipping already seen, else the verdict on its flag: OK, WRONG,
        UNLABELLED (the labels do not name it), or UNCHECKED (no labels); CORRECTED for a
        reviewer's correction (it moves a clipping or merges entities; the flags stay as decided)."""
        if link.correction is not None:
            self.corrections += 1
            for other in link.merged_entities:
                self._entities.union(link.entity_id, other)
            if link.id in self.events and link.correction.action == "reject":
                self.events[link.id] = self.events[link.id].model_copy(update={"entity_id": link.entity_id})
            return CORRECTED
        if link.id in self.events:
            self.repeats += 1
            return None
        self.events[link.id] = link
        for other in link.merged_entities:
            self._entities.union(link.entity_id, other)
        self.duplicates += link.is_duplicate
        if self.labels is None:
            return UNCHECKED
        label = self.labels.get(link.id)
        if label is None:
            self.unlabelled += 1
            return UNLABELLED
        correct = link.is_duplicate == (label in self._labels_seen)
        self._labels_seen.add(label)
        self.flags_correct += correct
        return OK if correct else WRONG

    @property
    def complete(self) -> bool:
        """Every labelled clipping has its link event."""
        return self.labels is not None and len(self.events) - self.unlabelled >= len(self.labels)

    @property
    def entities(self) -> int:
        return len({self._find(e.entity_id) for e in self.events.values()})

    def summary(self) -> str:
        n = len(self.events)
        parts = [f"events={n}", f"duplicates={self.duplicates}", f"entities={self.entities}"]
        if n:
            first_raw = min(e.raw_ts_ms for e in self.events.values())
            last_link = max(e.linked_ts_ms for e in self.events.values())
            seconds = max(last_link - first_raw, 1) / 1000
            lat = np.array([e.linked_ts_ms - e.raw_ts_ms for e in self.events.values()]) / 1000
            parts += [f"throughput={n / seconds:.1f}/s", f"latency_p50={np.percentile(lat, 50):.3f}s",
                      f"latency_p99={np.percentile(lat, 99):.3f}s"]
        if self.labels is not None:
            parts.append(f"flags_correct={self.flags_correct}/{n - self.unlabelled}")
            if self.unlabelled:
                parts.append(f"unlabelled={self.unlabelled}")
        if self.repeats:
            parts.append(f"repeated_events={self.repeats}")
        if self.corrections:
            parts.append(f"corrections={self.corrections}")
        return " ".join(parts)


def format_link(link: LinkEvent, verdict: str, color: bool) -> str:
    tag = "FIX" if verdict == CORRECTED else "DUP" if link.is_duplicate else "new"
    line = f"{tag:<4}{link.id:<28} entity={link.entity_id}"
    if verdict == CORRECTED:
        c = link.correction
        return printable(line + f"  {c.action} by {c.reviewer}" + (f" merged={','.join(link.merged_entities)}"
                                                                    if link.merged_entities else ""))
    if link.is_duplicate:
        line += f"  matched={link.matched_id} cos={link.similarity:.3f}"
        if link.probability is not None:
            line += f" p={link.probability:.2f}"
    if link.merged_entities:
        line += f"  merged={','.join(link.merged_entities)}"
    if verdict == WRONG:
        line += "  WRONG (labels say " + ("new)" if link.is_duplicate else "duplicate)")
    elif verdict == UNLABELLED:
        line += "  (unlabelled)"
    line = printable(line)
    if color and verdict == WRONG:
        return _RED + line + _RESET
    if color and link.is_duplicate:
        return _BOLD_YELLOW + line + _RESET
    return line


def tail(
    settings: ClientSettings,
    from_beginning: bool = True,
    max_events: int | None = None,  # stop after this many distinct clippings
    idle_timeout_s: float | None = None,  # stop after this long without a new event
    labels: dict[str, str] | None = None,
    out: TextIO | None = sys.stdout,
    color: bool | None = None,
    stop=lambda: False,
    id_prefix: str = "",  # only clippings whose id starts with this
    until_complete: bool = False,  # with labels: stop once every labelled clipping was seen
) -> LinkTally:
    color = out is not None and (out.isatty() if color is None else color)
    partitions = probe_topic(settings, settings.topic_links)
    consumer = Consumer(client_config(settings) | {
        "group.id": f"clippings-tail-{uuid.uuid4().hex[:8]}",  # never joined: partitions are assigned
        "enable.auto.commit": False,
        "fetch.wait.max.ms": settings.kafka_fetch_wait_max_ms,
    })
    tally = LinkTally(labels=labels)
    try:
        start = OFFSET_BEGINNING if from_beginning else OFFSET_END
        consumer.assign([TopicPartition(settings.topic_links, p, start) for p in range(partitions)])
        last_new = time.monotonic()
        while not stop():
            if max_events is not None and len(tally.events) >= max_events:
                break
            if until_complete and tally.complete:
                break
            if idle_timeout_s is not None and time.monotonic() - last_new > idle_timeout_s:
                break
            for msg in consumer.consume(100, 0.2):
                link = _link(msg, id_prefix)
                verdict = None if link is None else tally.add(link)
                if verdict is None:
                    continue
                last_new = time.monotonic()
                if out is not None:
                    print(format_link(link, verdict, color), file=out, flush=True)
    finally:
        consumer.close()
    return tally


def _link(msg, id_prefix: str) -> LinkEvent | None:
    """The link event of a record, None for an error, a bad record, or another prefix's clipping."""
    if msg.error():
        return None
    try:
        link = LinkEvent.model_validate_json(msg.value())
    except ValidationError:
        return None
    return link if link.id.startswith(id_prefix) else None
