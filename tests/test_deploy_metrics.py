"""Every metric the alerts and the Grafana dashboard use is exported by the running services.

A real embedder and a real linker run as child processes (`clippings embedder|linker`)
against the session's broker and Redis; a few records of the sample feed flow through them,
then both /metrics pages are scraped and every metric name in
deploy/k8s/platform/prometheusrule.yaml and the dashboard must be on one of them, or be one
of the few external metrics named in deploy/validate.py (EXTERNAL_METRICS).
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest
from deploy_loader import load_validate

from clippings.services.local.stack import wait_ready

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.integration


V = load_validate()


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return resp.read().decode()


def _value(exposition: str, sample: str) -> float:
    for line in exposition.splitlines():
        if line.startswith(sample + " ") or line.startswith(sample + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.fixture
def live_metrics(spawn_service, service_env, sample_feed, kafka_bootstrap, topics):
    """The /metrics pages of a running embedder and linker that have linked some records."""
    from clippings.services.config import ClientSettings
    from clippings.services.local.replay import replay, select_records

    embedder, linker = spawn_service("embedder"), spawn_service("linker")
    wait_ready([embedder, linker], timeout_s=120)
    records = select_records(sample_feed, None, 8)
    replay(ClientSettings(kafka_bootstrap_servers=kafka_bootstrap, **topics.settings()), records,
           source=sample_feed.name, progress=False)
    deadline = time.monotonic() + 120
    while _value(_scrape(linker.metrics_port), 'clippings_events_out_total{stage="linker"}') < len(records):
        assert time.monotonic() < deadline, f"the linker did not link {len(records)} records:\n{linker.log_tail()}"
        time.sleep(0.5)
    # One more statistics interval, so the lag gauges of both consumers are set.
    time.sleep(1.5)
    return {"embedder": _scrape(embedder.metrics_port), "linker": _scrape(linker.metrics_port)}


def test_alert_and_dashboard_metrics_are_exported_by_the_running_services(live_metrics):
    rules = V.alert_rules(V.render(V.KUSTOMIZATIONS["platform"]))
    dashboard = json.loads(V.DASHBOARD.read_text(encoding="utf-8"))
    used = V.used_metrics(rules, dashboard)
    exported = set().union(*(V.exported_metrics(page) for page in live_metrics.values()))

    assert V.unknown_metric_problems(used, exported) == []
    # The external allowance is not a loophole: it covers exactly what no service exports.
    assert set(V.EXTERNAL_METRICS) <= set(used) and not set(V.EXTERNAL_METRICS) & exported
    # The flow really ran: the series the alerts key on carry samples, not only declarations.
    for page, sample in (("embedder", 'clippings_events_in_total{stage="embedder"}'),
                         ("embedder", 'clippings_ready{stage="embedder"}'),
                         ("linker", 'clippings_events_out_total{stage="linker"}'),
                         ("linker", "clippings_end_to_end_seconds_count")):
        assert _value(live_metrics[page], sample) > 0, f"{sample} on the {page}"
    assert "clippings_consumer_lag{" in live_metrics["linker"]
    assert "clippings_model_info{" in live_metrics["embedder"]

    # The same check against the same pages fails for a name no service exports (one
    # service start serves both halves: starting them is most of this test's time).
    broken = used | {"clippings_embeddings_total": ["panel b"],
                     "clippings_stage_seconds": ["rule c"]}  # a histogram's bare name is no series
    problems = V.unknown_metric_problems(broken, exported)
    assert [p.split()[0] for p in problems] == ["clippings_embeddings_total", "clippings_stage_seconds"]
