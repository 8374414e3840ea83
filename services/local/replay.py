"""`clippings replay FEED`: publish a dataset folder or a feed (feed.py) to clippings.raw, at a chosen rate.

Images go inline (base64) up to inline_max_bytes and by file:// reference above that (the
claim-check pattern: the event carries where the bytes are, the embedder fetches them), or
always by reference with images="uri". A record's image URL is passed on as it is.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from tqdm import tqdm

from clippings.data.dataset import Record
from clippings.services.config import ClientSettings
from clippings.services.local.discover import probe_topic
from clippings.services.local.feed import FeedRecord, load_feed
from clippings.services.kafka.clients import BrokerWatch, Outbox, make_producer
from clippings.services.ops.logfmt import kv
from clippings.services.schemas import RawClipping

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplayReport:
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")


def raw_event(record: Record | FeedRecord, source: str, block: str, id_prefix: str, images: str,
              inline_max_bytes: int) -> RawClipping:
    """The event of one record; `source` and `block` are defaults a feed record's own fields override."""
    if isinstance(record, Record):
        record = FeedRecord.of(record)
    image, uri, fields = None, record.image_uri, {"source": source, "block": block} | record.raw
    if record.image is not None:
        data = record.image.read_bytes()
        if images == "inline" and len(data) <= inline_max_bytes:
            image = data
        else:
            uri = Path(record.image).resolve().as_uri()
            fields["image_sha256"] = hashlib.sha256(data).hexdigest()
    return RawClipping(id=f"{id_prefix}{record.id}", text=record.text, image=image, image_uri=uri, **fields)


def select_records(feed: Path, splits: Iterable[str] | None, limit: int | None) -> list[FeedRecord]:
    """The feed's records, only those of `splits` when given (records without a split then drop out)."""
    records = load_feed(feed)
    if splits:
        wanted = set(splits)
        records = [r for r in records if r.split in wanted]
    return records[:limit] if limit else records


def publish(
    settings: ClientSettings,
    events: Iterable[RawClipping],
    rate: float | None = None,  # events per second; None: as fast as the broker takes them
    total: int | None = None,
    progress: bool = True,
) -> ReplayReport:
    """Produce clippings to clippings.raw (keyed by id), paced to `rate`, and wait for every ack.
    A broker that does not answer, or has no such topic, fails within seconds, before any send."""
    probe_topic(settings, settings.topic_raw)
    watch = BrokerWatch(settings.broker_timeout_s)
    producer = make_producer(settings, watch)
    outbox = Outbox(producer, watch)
    # The bar counts acknowledged events and shows the mean rate: the figures of the summary.
    bar = tqdm(total=total, desc="replay", unit="ev", disable=not progress, smoothing=0)
    start = time.monotonic()
    count = 0
    try:
        for i, event in enumerate(events):
            if rate:
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            outbox.send(settings.topic_raw, event.to_bytes(), key=event.id)
            producer.poll(0)
            count += 1
            bar.update(max(0, count - len(producer) - bar.n))  # len(producer): sent, not yet acknowledged
        outbox.wait()
        report = ReplayReport(count, time.monotonic() - start)
        bar.update(count - bar.n)
    finally:
        bar.close()
    log.info(kv("replayed", events=report.events, seconds=round(report.seconds, 2), topic=settings.topic_raw))
    return report


def replay(
    settings: ClientSettings,
    records: list[Record] | list[FeedRecord],
    source: str,
    rate: float | None = None,
    block: str = "default",
    id_prefix: str = "",
    images: str = "inline",
    inline_max_bytes: int = 700_000,
    progress: bool = True,
    repeat: int = 1,
) -> ReplayReport:
    """Publish dataset records as a feed; images are read as each event is sent. With repeat > 1
    the dataset goes out that many times, the ids of pass k prefixed "r<k>-" (a longer feed whose
    later passes are exact duplicates of the first)."""
    events = (
        raw_event(r, source, block, id_prefix + repeat_prefix(k, repeat), images, inline_max_bytes)
        for k in range(repeat) for r in records
    )
    return publish(settings, events, rate, total=len(records) * repeat, progress=progress)


def repeat_prefix(k: int, repeat: int) -> str:
    return f"r{k}-" if repeat > 1 else ""
