"""Dead letters: a record that cannot be processed goes to clippings.dlq, and the stream goes on.

A dead letter is the original record (value, key, headers) with the reason in one more
header. The original may be as large as the broker took, so each part is bounded to make the
dead letter fit in one produced message; a part cut is named in the DLQ header. Should the
producer or the broker still refuse it for its size, a minimal dead letter (no value, no key,
only the DLQ header) goes instead (Outbox's fallback): a record never stops the stream.
"""

from __future__ import annotations

import hashlib
import logging
import time

from confluent_kafka import Message

from clippings.services.kafka.clients import Outbox
from clippings.services.ops.logfmt import kv
from clippings.services.ops.metrics import ServiceMetrics
from clippings.services.schemas import DLQ_HEADER, ID_MAX, DlqRecord, KafkaPosition

log = logging.getLogger(__name__)

# librdkafka's default message.max.bytes (value + key + headers), a little under a Kafka
# broker's default max.message.bytes (1,048,588).
MESSAGE_MAX_BYTES = 1_000_000
KEY_MAX_BYTES = 1_024
HEADERS_MAX_BYTES = 16_384  # the original's headers, all together
# The DLQ header at its largest: detail (2,000 characters) and clipping_id (512) with every
# character escaped in JSON (6 bytes each), and the other fields.
DLQ_HEADER_MAX_BYTES = 20_000
_SLACK = 4_096  # librdkafka's per-record framing, counted generously
VALUE_MAX_BYTES = MESSAGE_MAX_BYTES - KEY_MAX_BYTES - HEADERS_MAX_BYTES - DLQ_HEADER_MAX_BYTES - _SLACK

Headers = list[tuple[str, bytes | None]]
FORGED_HEADER = f"{DLQ_HEADER}-original"  # a DLQ header found on the record being dead-lettered


def _headers_size(headers: Headers) -> int:
    return sum(len(name.encode("utf-8")) + len(value or b"") + 8 for name, value in headers)


class DeadLetters:
    def __init__(self, topic: str, stage: str, service: str, metrics: ServiceMetrics):
        self._topic = topic
        self._stage = stage
        self._service = service
        self._metrics = metrics

    def send(self, outbox: Outbox, msg: Message, reason: str, detail: str, clipping_id: str | None = None) -> None:
        """Queue the record with the reason in a header; acked with the batch's outputs."""
        # A tombstone (None) stays a tombstone; a DLQ header the producer put on the original is
        # renamed, so that the one header readers trust is always the one written here.
        value, key = msg.value(), msg.key()
        headers = [(FORGED_HEADER if name == DLQ_HEADER else name, v) for name, v in msg.headers() or []]
        truncated: list[str] = []
        if clipping_id is not None and len(clipping_id) > ID_MAX:
            clipping_id, truncated = clipping_id[:ID_MAX], truncated + ["clipping_id"]
        if key is not None and len(key) > KEY_MAX_BYTES:
            key, truncated = None, truncated + ["key"]
        if _headers_size(headers) > HEADERS_MAX_BYTES:
            headers, truncated = [], truncated + ["headers"]
        whole = {"value_bytes": len(value or b""), "value_sha256": hashlib.sha256(value or b"").hexdigest()}
        record = DlqRecord(
            stage=self._stage,
            reason=reason,
            detail=detail[:2000],
            clipping_id=clipping_id,
            origin=KafkaPosition(topic=msg.topic(), partition=msg.partition(), offset=msg.offset()),
            failed_ts_ms=int(time.time() * 1000),
            service=self._service,
        )
        if value is not None and len(value) > VALUE_MAX_BYTES:
            value, truncated = value[:VALUE_MAX_BYTES], truncated + ["value"]
            record = record.model_copy(update=whole)
        record = record.model_copy(update={"truncated": truncated})
        minimal = record.model_copy(update=whole | {"truncated": sorted({*truncated, "value", "key", "headers"})})
        outbox.send(self._topic, value=value, key=key, headers=headers + [record.to_header()],
                    fallback=(b"", None, [minimal.to_header()]))
        self._metrics.count_failed(reason)
        log.warning(
            kv("dead_letter", id=clipping_id, topic=msg.topic(), partition=msg.partition(), offset=msg.offset(),
               reason=reason, detail=detail[:300], truncated=",".join(truncated) or None)
        )
