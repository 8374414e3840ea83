"""`clippings replay DATASET`: publish a dataset folder to clippings.raw as a feed, at a chosen rate.

Images go inline (base64) up to inline_max_bytes and by file:// reference above that (the
claim-check pattern: the event carries where the bytes are, the embedder fetches them), or
always by reference with images="uri".
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from tqdm import tqdm

from clippings.data.dataset import Record, load_dataset
from clippings.services.config import ClientSettings
from clippings.services.kafka import BrokerWatch, Outbox, make_producer
from clippings.services.logfmt import kv
from clippings.services.schemas import RawClipping

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplayReport:
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")


def raw_event(record: Record, source: str, block: str, id_prefix: str, images: str, inline_max_bytes: int) -> RawClipping:
    image, uri, sha = None, None, None
    if record.image is not None:
        data = record.image.read_bytes()
        if images == "inline" and len(data) <= inline_max_bytes:
            image = data
        else:
            uri, sha = Path(record.image).resolve().as_uri(), hashlib.sha256(data).hexdigest()
    return RawClipping(id=f"{id_prefix}{record.id}", source=source, block=block, text=record.text,
                       image=image, image_uri=uri, image_sha256=sha)


def select_records(dataset: Path, splits: Iterable[str] | None, limit: int | None) -> list[Record]:
    records = load_dataset(dataset).records
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
    """Produce clippings to clippings.raw (keyed by id), paced to `rate`, and wait for every ack."""
    watch = BrokerWatch(settings.broker_timeout_s)
    producer = make_producer(settings, watch)
    outbox = Outbox(producer, watch)
    start = time.monotonic()
    count = 0
    for i, event in enumerate(tqdm(events, total=total, desc="replay", unit="ev", disable=not progress)):
        if rate:
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        outbox.send(settings.topic_raw, event.to_bytes(), key=event.id)
        producer.poll(0)
        count += 1
    outbox.wait()
    report = ReplayReport(count, time.monotonic() - start)
    log.info(kv("replayed", events=report.events, seconds=round(report.seconds, 2), topic=settings.topic_raw))
    return report


def replay(
    settings: ClientSettings,
    records: list[Record],
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
