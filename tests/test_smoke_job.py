"""The Kubernetes smoke Job (deploy/k8s/smoke) runs `replay` and `tail` with arguments that fit the
sample feed it publishes (read from the manifest and parsed by the real CLI; no cluster needed)."""

from __future__ import annotations

from pathlib import Path

import yaml

from clippings.cli import build_parser
from clippings.services.local import cli as local_cli
from clippings.services.local.cli import SAMPLE_FEED
from clippings.services.local.feed import load_feed

SMOKE = Path(__file__).resolve().parent.parent / "deploy" / "k8s" / "smoke" / "smoke.yaml"


def container_args() -> dict[str, list[str]]:
    (job,) = [d for d in yaml.safe_load_all(SMOKE.read_text()) if d and d["kind"] == "Job"]
    spec = job["spec"]["template"]["spec"]
    return {c["name"]: c["args"] for c in spec["initContainers"] + spec["containers"]}


def test_the_smoke_job_waits_for_exactly_the_sample_feed():
    parser = build_parser((local_cli,))
    args = container_args()
    replay, tail = parser.parse_args(args["replay"]), parser.parse_args(args["tail"])
    assert replay.dataset.parts[-3:] == ("clippings", "assets", "sample_feed") and tail.labels == replay.dataset
    assert tail.id_prefix == replay.id_prefix != ""  # its own clippings only, whatever else flows
    # Every record of the feed, however many it holds (a hard-coded count went stale: 47 for 44).
    n = len(load_feed(SAMPLE_FEED))
    assert getattr(tail, "until_complete", False) or tail.max_events == n, tail
