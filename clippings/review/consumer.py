"""The background reader: clippings.raw and clippings.links into the database.

At least once: a batch is written in one transaction, and its offsets are stored only after
the commit; a crash replays the batch, which changes nothing (ingest.py is idempotent).
"""

from __future__ import annotations

import logging
import threading

from clippings.review.ingest import apply_records
from clippings.services.kafka.loop import seek_back, store_offsets
from clippings.review.settings import ReviewSettings
from clippings.services.ops.logfmt import kv

log = logging.getLogger(__name__)


class EventReader:
    """A daemon thread; stop() ends it. `on_idle` runs between batches (the republisher)."""

    def __init__(self, settings: ReviewSettings, engine, on_idle=lambda: None, batch_max: int = 500):
        self.settings = settings
        self.engine = engine
        self.on_idle = on_idle
        self.batch_max = batch_max
        self.applied = 0  # events that were new: tests wait on it
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="review-reader", daemon=True)

    def start(self) -> "EventReader":
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 15.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def _consumer(self):
        from confluent_kafka import Consumer

        from clippings.services.kafka.clients import BrokerWatch, client_config

        s = self.settings
        # Errors (a broker away) go through the watch's one log line each; librdkafka's own log
        # would repeat every reconnect attempt on stderr.
        watch = BrokerWatch(s.broker_timeout_s)
        consumer = Consumer(client_config(s) | {
            "error_cb": watch.on_error, "log_level": 2,
            "group.id": s.review_group_id,
            "enable.auto.offset.store": False,  # stored after the database commit
            "enable.auto.commit": True,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": s.kafka_session_timeout_ms,
            "heartbeat.interval.ms": s.kafka_heartbeat_interval_ms,
            "fetch.wait.max.ms": s.kafka_fetch_wait_max_ms,
        })
        consumer.subscribe([s.topic_raw, s.topic_links])
        return consumer

    def _run(self) -> None:
        try:
            consumer = self._consumer()
        except Exception as exc:  # noqa: BLE001 (kept for the status line, the page still serves)
            self.error = exc
            log.error(kv("review_reader_failed", detail=str(exc)))
            return
        try:
            while not self._stop.is_set():
                self._turn(consumer)
        finally:
            consumer.close()

    def _turn(self, consumer) -> None:
        msgs = [m for m in consumer.consume(self.batch_max, 0.5) if m.error() is None]
        if msgs:
            try:
                with self.engine.begin() as conn:
                    self.applied += apply_records(conn, [(m.topic(), m.value()) for m in msgs],
                                                  self.settings.topic_raw)
            except Exception as exc:  # noqa: BLE001 (the database is away: read the batch again)
                log.warning(kv("review_ingest_failed", detail=str(exc).splitlines()[0], retry_in_s=2))
                seek_back(consumer, tuple(msgs))
                self._stop.wait(2.0)
                return
            store_offsets(consumer, msgs)
        try:
            self.on_idle()
        except Exception as exc:  # noqa: BLE001
            log.warning(kv("review_idle_task_failed", detail=str(exc).splitlines()[0]))
