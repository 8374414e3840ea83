"""Waiting for the broker before a service joins its group (the loop itself is loop.py)."""

from __future__ import annotations

import logging
from typing import Iterable

from confluent_kafka import Consumer, KafkaException

from clippings.services.errors import BrokerUnavailable
from clippings.services.kafka.clients import BrokerWatch
from clippings.services.ops.deadline import wait_until
from clippings.services.ops.logfmt import kv

log = logging.getLogger(__name__)


def wait_for_topics(consumer: Consumer, topics: Iterable[str], watch: BrokerWatch, timeout_s: float) -> None:
    """Block until the broker answers and lists every topic; BrokerUnavailable past the timeout."""
    wanted = set(topics)
    last = "no answer"  # why the broker is not ready yet, for the error

    def ready() -> bool:
        nonlocal last
        try:
            existing = set(consumer.list_topics(timeout=min(5.0, timeout_s)).topics)
        except KafkaException as exc:
            last = str(exc)
            return False
        watch.mark(True)
        missing = wanted - existing
        last = f"missing topic(s) {', '.join(sorted(missing))} (create them: clippings topics)"
        return not missing

    if not wait_until(ready, timeout_s, 0.5):
        raise BrokerUnavailable(f"broker not ready after {timeout_s:.0f}s: {last}")
