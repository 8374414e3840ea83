"""The commands as a user types them: `clippings up --demo`, `topics`, `replay`."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from clippings.data.dataset import load_dataset
from clippings.services.schemas import RawClipping

pytestmark = pytest.mark.integration


def clippings(*args: str, timeout_s: float = 240, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "clippings.cli", *args], capture_output=True, text=True,
                          timeout=timeout_s, env=os.environ | (env or {}))


def test_up_demo_links_the_sample_feed_and_cleans_up(redis_url, news_model, sample_feed, tmp_path):
    """The README's first command: its own broker, the services, the sample feed, the summary."""
    from clippings.services.state import redis_client

    before = set(redis_client(redis_url).scan_iter(match="clippings-demo-*"))
    done = clippings("up", "--demo", "--redis", redis_url, "--model", str(news_model), "--workdir", str(tmp_path))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    n = len(load_dataset(sample_feed).records)
    assert len(lines) == n + 1
    flagged = [line for line in lines[:-1] if line.startswith("DUP")]
    summary = dict(part.split("=", 1) for part in lines[-1].split())
    assert summary["events"] == str(n) and summary["flags_correct"] == f"{n}/{n}"
    assert summary["duplicates"] == str(len(flagged))
    assert summary["entities"] == summary["redis_entities"] == str(len({r.entity for r in load_dataset(sample_feed).records}))
    assert "WRONG" not in done.stdout
    assert set(redis_client(redis_url).scan_iter(match="clippings-demo-*")) == before  # its keys are gone
    logs = {p.name: p.read_text() for p in (tmp_path / "logs").iterdir()}
    assert all("event=stopped" in text for text in logs.values()), logs.keys()  # SIGTERM, clean exits


def test_topics_and_replay_commands(kafka_bootstrap, topics, topic_reader, sample_feed, monkeypatch, capsys):
    from clippings.services.__main__ import main

    for name, value in ({"CLIPPINGS_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap} | topics.env()).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CLIPPINGS_TOPIC_RAW", topics.raw + "-new")
    assert main(["topics", "--partitions", "2"]) == 0
    out = capsys.readouterr().out
    assert f"{topics.raw}-new: created" in out and f"{topics.links}: exists" in out
    monkeypatch.setenv("CLIPPINGS_TOPIC_RAW", topics.raw)
    assert main(["replay", str(sample_feed), "--repeat", "2", "--rate", "200", "--images", "uri"]) == 0
    n = len(load_dataset(sample_feed).records)
    records = topic_reader(topics.raw, lambda recs: len(recs) >= 2 * n)
    events = [RawClipping.model_validate_json(m.value()) for m in records]
    assert len({e.id for e in events}) == 2 * n and all(e.id.startswith(("r0-", "r1-")) for e in events)
    with_image = [e for e in events if e.has_image]
    assert with_image and all(e.image_uri.startswith("file://") and e.image_sha256 for e in with_image)
    capsys.readouterr()
    assert main(["replay", str(sample_feed), "--rate", "0"]) == 2
    assert "--rate must be positive" in capsys.readouterr().err
