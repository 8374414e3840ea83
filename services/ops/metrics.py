"""The Prometheus metrics of a service process (exact names: the dashboard and alerts use them).

Each service holds its own CollectorRegistry, so two services in one process (tests, the
local stack) never share counters.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
END_TO_END_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class ServiceMetrics:
    def __init__(self, stage: str):
        self.stage = stage
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.events_in = Counter("clippings_events_in_total", "Records consumed", ["stage"], registry=r)
        self.events_out = Counter("clippings_events_out_total", "Records produced and acknowledged", ["stage"], registry=r)
        self.events_failed = Counter(
            "clippings_events_failed_total", "Records sent to the DLQ", ["stage", "reason"], registry=r
        )
        self.batch_size = Histogram(
            "clippings_batch_size", "Records per micro-batch", ["stage"], buckets=BATCH_BUCKETS, registry=r
        )
        self.stage_seconds = Histogram(
            "clippings_stage_seconds", "Seconds per batch in each step", ["stage", "step"],
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.inference_seconds = Histogram(
            "clippings_inference_seconds", "ONNX Runtime run per batch", buckets=LATENCY_BUCKETS, registry=r
        )
        self.search_seconds = Histogram(
            "clippings_search_seconds", "FAISS search per batch", buckets=LATENCY_BUCKETS, registry=r
        )
        self.end_to_end_seconds = Histogram(
            "clippings_end_to_end_seconds", "Raw record timestamp to link event produced",
            buckets=END_TO_END_BUCKETS, registry=r,
        )
        self.index_vectors = Gauge(
            "clippings_index_vectors", "Vectors in the FAISS index of a block", ["partition", "block"], registry=r
        )
        self.index_approximate = Gauge(
            "clippings_index_approximate", "1 when a block searches an approximate (IVF) index, 0 when exact",
            ["partition", "block"], registry=r,
        )
        self.index_link_recall = Gauge(
            "clippings_index_link_recall",
            "Link recall at the decision threshold of a block's approximate index against exact search, "
            "measured on a sample of its vectors when it was built", ["partition", "block"], registry=r,
        )
        self.entities_created = Counter("clippings_entities_created_total", "Entities minted", registry=r)
        self.entities_merged = Counter(
            "clippings_entities_merged_total", "Entities merged into an older one", registry=r
        )
        self.duplicates_flagged = Counter(
            "clippings_duplicates_flagged_total", "Clippings that joined an existing entity", registry=r
        )
        self.consumer_lag = Gauge(
            "clippings_consumer_lag", "Records behind the partition end", ["topic", "partition"], registry=r
        )
        self.model_info = Gauge("clippings_model_info", "The served model", ["model", "version", "variant"], registry=r)
        self.ready = Gauge("clippings_ready", "1 when /readyz answers 200", ["stage"], registry=r)
        self.corrections = Counter(
            "clippings_corrections_total", "Reviewers' corrections consumed: applied, repeated (a redelivery, "
            "applied before) or refused", ["outcome"], registry=r)
        self.snapshots = Counter("clippings_snapshots_total", "Linker index snapshots", ["result"], registry=r)
        # No labels: the series is there, at 0, from the start (the alert compares it with 0).
        self.state_lost = Counter(
            "clippings_linker_state_lost_total",
            "Findings that Redis lost linker state (watermark behind what was recorded), see statecheck.py",
            registry=r,
        )
        self._lag_labels: set[tuple[str, str]] = set()

    # Small helpers so the service code reads as what it counts.
    def count_in(self, n: int) -> None:
        self.events_in.labels(self.stage).inc(n)

    def count_out(self, n: int) -> None:
        self.events_out.labels(self.stage).inc(n)

    def count_failed(self, reason: str) -> None:
        self.events_failed.labels(self.stage, reason).inc()

    @contextmanager
    def step(self, step: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.stage_seconds.labels(self.stage, step).observe(time.perf_counter() - start)

    def set_ready(self, ready: bool) -> None:
        self.ready.labels(self.stage).set(1 if ready else 0)

    def set_lag(self, lag: dict[tuple[str, int], int]) -> None:
        """Replace the lag series by those of the partitions assigned now."""
        labels = {(t, str(p)) for t, p in lag}
        for gone in self._lag_labels - labels:
            self.consumer_lag.remove(*gone)
        for (topic, partition), value in lag.items():
            self.consumer_lag.labels(topic, str(partition)).set(value)
        self._lag_labels = labels
