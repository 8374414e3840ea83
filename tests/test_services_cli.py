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


def review_databases() -> set[str]:
    from review_fixtures import ADMIN_URL
    from sqlalchemy import create_engine, text

    engine = create_engine(ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            return set(conn.execute(text("select datname from pg_database where datname like 'clippings_review_%'"))
                       .scalars())
    finally:
        engine.dispose()


def test_up_demo_links_the_sample_feed_and_cleans_up(redis_url, news_model, sample_feed, tmp_path):
    """The README's first command: its own broker, the services, the review page, the sample
    feed, the summary."""
    from clippings.services.linker.store import redis_client

    before = set(redis_client(redis_url).scan_iter(match="clippings-demo-*"))
    databases = review_databases()
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
    assert f"image_file_roots=[PosixPath('{sample_feed.resolve()}')]" in logs["embedder-0.log"]  # not "/"
    # The review page ran on a scratch database, read the decisions, and is gone with it.
    assert "review page: http://127.0.0.1:" in done.stderr and "password: " in done.stderr
    assert "event=review_started" in logs["review.log"] and "Traceback" not in logs["review.log"]
    assert review_databases() == databases


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


def _clean_env(tmp_path) -> dict[str, str]:
    """No CLIPPINGS_* from the caller, and a private place for the state file of `clippings up`."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CLIPPINGS_")} | {
        "XDG_RUNTIME_DIR": str(tmp_path / "run")}


def test_replay_without_a_broker_fails_fast_naming_it(sample_feed, tmp_path):
    from clippings.services.local.stack import free_port

    bootstrap = f"127.0.0.1:{free_port()}"
    done = subprocess.run([sys.executable, "-m", "clippings.services", "replay", str(sample_feed), "--bootstrap",
                           bootstrap], capture_output=True, text=True, timeout=100, env=_clean_env(tmp_path))
    assert done.returncode == 2, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("clippings replay: error: no Kafka broker answered at " + bootstrap), last
    assert "100%" not in done.stderr  # nothing claims to be sent


def test_replay_progress_rate_is_the_rate_of_its_summary(kafka_bootstrap, topics, sample_feed, monkeypatch, capsys):
    import re

    from clippings.services.__main__ import main

    for name, value in ({"CLIPPINGS_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap} | topics.env()).items():
        monkeypatch.setenv(name, value)
    assert main(["replay", str(sample_feed), "--repeat", "20"]) == 0
    captured = capsys.readouterr()
    bar_rate = float(re.findall(r"([\d.]+)ev/s\]", captured.err)[-1])
    summary_rate = float(re.search(r"\(([\d.]+)/s\)", captured.out).group(1))
    # Two reports of one run: the bar counts acknowledged events over the summary's time.
    assert bar_rate == pytest.approx(summary_rate, rel=0.05), (captured.err[-300:], captured.out)


def test_topics_says_when_partition_counts_differ(kafka_bootstrap, topics, monkeypatch, capsys):
    from clippings.services.__main__ import main

    for name, value in ({"CLIPPINGS_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap} | topics.env()).items():
        monkeypatch.setenv(name, value)
    assert main(["topics", "--partitions", "4"]) == 1  # the fixture made embedded and links with 2
    out = capsys.readouterr()
    assert f"{topics.raw}: exists (4 partitions)" in out.out
    assert f"{topics.embedded}: exists with 2 partitions, fewer than the 4 asked (--grow adds 2)" in out.out
    assert f"{topics.dlq}: exists (1 partition)" in out.out and "--grow adds them" in out.err
    assert main(["topics", "--partitions", "1"]) == 0
    assert f"{topics.raw}: exists with 4 partitions, more than the 1 asked" in capsys.readouterr().out
    # Tansu cannot add partitions (no CreatePartitions): --grow says so, after the warning.
    assert main(["topics", "--partitions", "4", "--grow"]) == 2
    err = capsys.readouterr().err
    assert "a block can move to another partition" in err
    assert any(f"error: cannot add partitions to {t}" in err for t in (topics.embedded, topics.links))


def test_tools_use_the_stack_of_a_running_up(kafka_bootstrap, topics, topic_reader, sample_feed, monkeypatch,
                                            capsys, tmp_path):
    """replay, tail and dlq read the state file `clippings up` writes; the environment still wins."""
    from clippings.services.__main__ import main
    from clippings.services.local.discover import StackInfo, client_settings, publish_stack

    monkeypatch.delenv("CLIPPINGS_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    for name in topics.env():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    assert client_settings(None).kafka_bootstrap_servers == "127.0.0.1:9092"  # nothing running: the default
    assert "no `clippings up` running" in capsys.readouterr().err
    path = publish_stack(StackInfo(bootstrap=kafka_bootstrap, redis_url="redis://127.0.0.1:6379/9", pid=os.getpid(),
                                   redis_prefix="p", workdir=str(tmp_path), topics=topics.settings()))
    assert path == tmp_path / "run" / "clippings" / "stack.json" and (path.stat().st_mode & 0o077) == 0
    assert main(["replay", str(sample_feed), "--limit", "3"]) == 0
    assert f"broker {kafka_bootstrap} (the `clippings up` of pid {os.getpid()}" in capsys.readouterr().err
    assert len(topic_reader(topics.raw, lambda recs: len(recs) >= 3)) == 3  # its topics, not the defaults
    assert main(["dlq"]) == 0
    assert f"0 dead letters in {topics.dlq}" in capsys.readouterr().err
    monkeypatch.setenv("CLIPPINGS_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    assert client_settings(None).kafka_bootstrap_servers == "127.0.0.1:1"  # the environment wins
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    publish_stack(StackInfo(bootstrap="127.0.0.1:2", redis_url="", pid=int(dead.stdout), redis_prefix="p",
                            workdir=str(tmp_path)))
    monkeypatch.delenv("CLIPPINGS_KAFKA_BOOTSTRAP_SERVERS")
    assert client_settings(None).kafka_bootstrap_servers == "127.0.0.1:9092"  # a stale file is ignored


def test_up_serves_replay_tail_and_dlq_then_cleans_up(redis_url, news_model, sample_feed, tmp_path):
    """`clippings up` as a user runs it: the other commands find it, Ctrl-C leaves nothing behind."""
    import json
    import signal
    import time

    from clippings.services.linker.store import redis_client

    env = _clean_env(tmp_path)
    state = tmp_path / "run" / "clippings" / "stack.json"
    err_path = tmp_path / "up.err"
    with open(err_path, "w") as err:
        up = subprocess.Popen([sys.executable, "-m", "clippings.services", "up", "--quiet", "--redis", redis_url,
                               "--model", str(news_model), "--workdir", str(tmp_path / "up"),
                               "--review-database", "postgresql+psycopg://postgres@127.0.0.1:1/postgres"],
                              stdout=subprocess.DEVNULL, stderr=err, env=env)
    try:
        deadline = time.monotonic() + 240
        while not state.exists():
            assert up.poll() is None and "ready;" not in err_path.read_text(), err_path.read_text()[-3000:]
            assert time.monotonic() < deadline, "no state file within 240 s"
            time.sleep(0.5)
        info = json.loads(state.read_text())
        assert info["pid"] == up.pid
        tool = [sys.executable, "-m", "clippings.services"]
        replay = subprocess.run(tool + ["replay", str(sample_feed)], capture_output=True, text=True, timeout=120,
                                env=env)
        assert replay.returncode == 0, replay.stderr[-2000:]
        assert f"broker {info['bootstrap']} (the `clippings up` of pid {up.pid}" in replay.stderr
        tail = subprocess.run(tool + ["tail", "--from-beginning", "--labels", str(sample_feed), "--until-complete",
                                      "--idle-timeout", "180"], capture_output=True, text=True, timeout=240, env=env)
        n = len(load_dataset(sample_feed).records)
        assert f"events={n} " in tail.stdout and f"flags_correct={n}/{n}" in tail.stdout, tail.stdout[-2000:]
        dlq = subprocess.run(tool + ["dlq"], capture_output=True, text=True, timeout=60, env=env)
        assert dlq.returncode == 0 and "0 dead letters" in dlq.stderr, dlq.stderr[-2000:]
        keys = list(redis_client(redis_url).scan_iter(match=f"{info['redis_prefix']}:*"))
        assert keys, "the linker wrote no decisions"
        up.send_signal(signal.SIGINT)  # Ctrl-C
        assert up.wait(120) == 0
    finally:
        if up.poll() is None:  # SIGTERM first: SIGKILL would leave its broker and services running
            up.terminate()
            try:
                up.wait(120)
            except subprocess.TimeoutExpired:
                up.kill()
                up.wait(30)
    text = err_path.read_text()
    assert f"clippings replay {sample_feed}" in text and f"--bootstrap {info['bootstrap']}" in text
    assert "level=INFO" not in text  # --quiet
    assert "review page: not started (PostgreSQL at postgresql+psycopg://postgres@127.0.0.1:1/postgres does not answer" in text
    assert not state.exists()
    assert list(redis_client(redis_url).scan_iter(match=f"{info['redis_prefix']}:*")) == []
