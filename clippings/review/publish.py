"""Corrections to clippings.corrections: acknowledged, then marked published.

A row is marked only after the broker acknowledged its event (acks=all), so a crash between
the insert and the acknowledgement leaves it unpublished, and publish_pending (at start, and
every few seconds in the background) sends it again. The linker applies each id once, so a
second copy of an event is harmless.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta, timezone

from sqlalchemy import Engine, select, update

from clippings.review.corrections import event_of
from clippings.review.settings import ReviewSettings
from clippings.review.tables import corrections
from clippings.services.ops.logfmt import kv
from clippings.services.schemas import Correction

log = logging.getLogger(__name__)


class CorrectionPublisher:
    def __init__(self, settings: ReviewSettings, engine: Engine, retry_every_s: float = 5.0):
        self.settings = settings
        self.engine = engine
        self.retry_every_s = retry_every_s
        self._producer = None
        self._lock = threading.Lock()  # one publish at a time: the delivery wait is per message
        self._last_scan = 0.0

    def _make_producer(self):
        from confluent_kafka import Producer

        from clippings.services.kafka.clients import client_config

        timeout_ms = int(self.settings.review_publish_timeout_s * 1000)
        return Producer(client_config(self.settings) | {
            "acks": "all", "enable.idempotence": True, "linger.ms": 0,
            "delivery.timeout.ms": timeout_ms, "request.timeout.ms": min(timeout_ms, 30_000),
        })

    def publish(self, event: Correction, partition: int) -> bool:
        """Send, wait for the acknowledgement, mark the row -> True when it is published."""
        with self._lock:
            if self._producer is None:
                self._producer = self._make_producer()
            outcome: list = []
            self._producer.produce(self.settings.topic_corrections, value=event.to_bytes(), key=event.block,
                                   partition=partition, on_delivery=lambda err, msg: outcome.append(err))
            self._producer.flush(self.settings.review_publish_timeout_s + 1.0)
        if not outcome or outcome[0] is not None:
            why = "no acknowledgement in time" if not outcome else outcome[0].str()
            log.warning(kv("correction_not_published", id=event.id, partition=partition, detail=why))
            return False
        with self.engine.begin() as conn:
            conn.execute(update(corrections).where(corrections.c.id == event.id)
                         .values(published_at=datetime.now(timezone.utc)))
        log.info(kv("correction_published", id=event.id, action=event.action, partition=partition))
        return True

    def publish_pending(self, min_age_s: float = 0.0) -> int:
        """Publish every unpublished row at least min_age_s old, oldest first -> how many were published."""
        older_than = datetime.now(timezone.utc) - timedelta(seconds=min_age_s)
        with self.engine.connect() as conn:
            rows = conn.execute(select(corrections).where(corrections.c.published_at.is_(None),
                                                          corrections.c.at <= older_than)
                                .order_by(corrections.c.at)).all()
        return sum(self.publish(event_of(row), row.kafka_partition) for row in rows)

    def retry_due(self) -> None:
        """The background retry, at most every retry_every_s, of rows whose own action has given up
        waiting: a younger row may still be in its action's publish, and would go out twice."""
        if time.monotonic() - self._last_scan >= self.retry_every_s:
            self._last_scan = time.monotonic()
            self.publish_pending(min_age_s=self.settings.review_publish_timeout_s + 5.0)

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.flush(5.0)
                self._producer = None
