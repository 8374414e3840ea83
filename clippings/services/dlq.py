"""Dead letters: a record that cannot be processed goes to clippings.dlq, and the stream goes on."""

from __future__ import annotations

import logging
import time

from confluent_kafka import Message

from clippings.services.kafka import Outbox
from clippings.services.logfmt import kv
from clippings.services.metrics import ServiceMetrics
from clippings.services.schemas import DlqRecord, KafkaPosition

log = logging.getLogger(__name__)


class DeadLetters:
    def __init__(self, topic: str, stage: str, service: str, metrics: ServiceMetrics):
        self._topic = topic
        self._stage = stage
        self._service = service
        self._metrics = metrics

    def send(self, outbox: Outbox, msg: Message, reason: str, detail: str, clipping_id: str | None = None) -> None:
        """Queue the record, untouched, with the reason in a header; acked with the batch's outputs."""
        record = DlqRecord(
            stage=self._stage,
            reason=reason,
            detail=detail[:2000],
            clipping_id=clipping_id,
            origin=KafkaPosition(topic=msg.topic(), partition=msg.partition(), offset=msg.offset()),
            failed_ts_ms=int(time.time() * 1000),
            service=self._service,
        )
        headers = list(msg.headers() or []) + [record.to_header()]
        outbox.send(self._topic, value=msg.value(), key=msg.key(), headers=headers)
        self._metrics.count_failed(reason)
        log.warning(
            kv("dead_letter", id=clipping_id, topic=msg.topic(), partition=msg.partition(),
               offset=msg.offset(), reason=reason, detail=detail[:300])
        )
