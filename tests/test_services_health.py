"""The metrics port: /metrics with the agreed names, /healthz and /readyz for the probes."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from clippings.services.ops.health import Health, HealthServer
from clippings.services.kafka.clients import BrokerWatch, partition_lag
from clippings.services.errors import BrokerUnavailable
from clippings.services.ops.metrics import ServiceMetrics

CONTRACT_NAMES = [
    "clippings_events_in_total", "clippings_events_out_total", "clippings_events_failed_total",
    "clippings_batch_size", "clippings_stage_seconds", "clippings_inference_seconds",
    "clippings_search_seconds", "clippings_end_to_end_seconds", "clippings_index_vectors",
    "clippings_entities_created_total", "clippings_entities_merged_total",
    "clippings_duplicates_flagged_total", "clippings_consumer_lag", "clippings_model_info",
    "clippings_ready", "clippings_snapshots_total",
]


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def served():
    metrics = ServiceMetrics("linker")
    health = Health(metrics, liveness_timeout_s=0.5)
    server = HealthServer(health, metrics, "127.0.0.1", 0).start()
    yield metrics, health, server.port
    server.stop()


def test_metrics_exposes_the_agreed_names(served):
    m, _, port = served
    m.count_in(3)
    m.count_out(2)
    m.count_failed("schema")
    m.batch_size.labels("linker").observe(3)
    with m.step("search"):
        pass
    m.inference_seconds.observe(0.01)
    m.search_seconds.observe(0.001)
    m.end_to_end_seconds.observe(0.2)
    m.index_vectors.labels("0", "default").set(10)
    m.entities_created.inc()
    m.entities_merged.inc()
    m.duplicates_flagged.inc()
    m.set_lag({("clippings.embedded", 0): 7, ("clippings.embedded", 1): 0})
    m.model_info.labels("news", "abc", "fp32").set(1)
    m.snapshots.labels("ok").inc()
    status, text = get(port, "/metrics")
    assert status == 200
    for name in CONTRACT_NAMES:
        assert f"\n{name}" in text or f"# TYPE {name}" in text, name
    assert 'clippings_events_failed_total{reason="schema",stage="linker"} 1.0' in text
    assert 'clippings_consumer_lag{partition="0",topic="clippings.embedded"} 7.0' in text
    m.set_lag({("clippings.embedded", 1): 4})  # partition 0 revoked: its series goes
    text = get(port, "/metrics")[1]
    assert 'partition="0",topic="clippings.embedded"' not in text
    assert 'clippings_consumer_lag{partition="1",topic="clippings.embedded"} 4.0' in text


def test_readyz_names_what_is_missing(served):
    m, health, port = served
    health.set("model", True)
    health.set("index", False)
    status, body = get(port, "/readyz")
    assert status == 503 and "index" in body and "model" not in body
    assert 'clippings_ready{stage="linker"} 0.0' in get(port, "/metrics")[1]
    health.set("index", True)
    assert get(port, "/readyz")[0] == 200
    assert get(port, "/readyz?verbose=1")[0] == 200  # a probe or scraper's query string names the same route
    assert 'clippings_ready{stage="linker"} 1.0' in get(port, "/metrics")[1]


def test_healthz_fails_when_the_loop_stops_turning(served):
    _, health, port = served
    health.tick()
    assert get(port, "/healthz")[0] == 200
    time.sleep(0.7)
    assert get(port, "/healthz")[0] == 503
    assert get(port, "/nowhere")[0] == 404


def test_lag_from_librdkafka_statistics():
    stats = {"topics": {"t": {"partitions": {
        "0": {"fetch_state": "active", "consumer_lag": 5, "hi_offset": 10, "app_offset": 5},
        "1": {"fetch_state": "active", "consumer_lag": -1, "hi_offset": 8, "app_offset": 6},
        "2": {"fetch_state": "none", "consumer_lag": 3},
        "-1": {"fetch_state": "none", "consumer_lag": -1},
    }}}}
    assert partition_lag(stats) == {("t", 0): 5, ("t", 1): 2}


def test_broker_watch_crashes_only_after_the_timeout():
    watch = BrokerWatch(timeout_s=0.3)
    watch.on_stats({"brokers": {"b": {"state": "UP", "rxidle": 1000}}})
    assert watch.reachable
    watch.check()
    watch.on_stats({"brokers": {"b": {"state": "UP", "rxidle": 60_000_000}}})  # a paused broker: silent socket
    assert not watch.reachable
    watch.check()
    time.sleep(0.4)
    with pytest.raises(BrokerUnavailable):
        watch.check()
    watch.on_stats({"brokers": {"b": {"state": "UP", "rxidle": 10}}})
    watch.check()


def test_probes_listen_on_loopback_unless_a_deployment_opens_them():
    """The default keeps /metrics and the probes off the network; the Kubernetes manifests open
    them on purpose, since kubelet and Prometheus reach the pod's IP."""
    import socket

    import yaml

    from clippings.services.config import EmbedderSettings, LinkerSettings, load_settings

    for cls, stage in ((EmbedderSettings, "embedder"), (LinkerSettings, "linker")):
        s = load_settings(cls, metrics_port=0)
        metrics = ServiceMetrics(stage)
        server = HealthServer(Health(metrics, 60), metrics, s.metrics_host, s.metrics_port).start()
        try:
            assert server.host == "127.0.0.1"
            with socket.create_connection(("127.0.0.1", server.port), timeout=5):
                pass
        finally:
            server.stop()
    repo = Path(__file__).resolve().parent.parent
    configs = list(yaml.safe_load_all((repo / "deploy/k8s/base/configmaps.yaml").read_text()))
    shared = next(c for c in configs if c["metadata"]["name"] == "clippings-kafka-config")
    assert shared["data"]["CLIPPINGS_METRICS_HOST"] == "0.0.0.0"
