"""Shared fixtures: one real Tansu broker per session, the real Redis, fresh topics per test,
and runners for the services (in-process threads, or child processes where the test is about
process behaviour). Every wait is bounded; a missing broker or Redis fails, never skips.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from clippings.services.local.stack import TansuBroker, free_port, redis_answers, start_service

TEST_REDIS_URL = "redis://127.0.0.1:6379/9"


class ExternalBroker:
    """A broker named by CLIPPINGS_TEST_BOOTSTRAP: used as it is, it cannot be paused from here."""

    def __init__(self, bootstrap: str):
        self.bootstrap = bootstrap

    def pause(self) -> None:
        raise RuntimeError("the outage test needs the session's own Tansu broker (unset CLIPPINGS_TEST_BOOTSTRAP)")

    resume = pause


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    external = os.environ.get("CLIPPINGS_TEST_BOOTSTRAP")
    if external:
        yield ExternalBroker(external)
        return
    # An empty schema registry: a test that needs the broker to refuse a topic's records puts
    # a schema for that topic there (refuse_produce).
    b = TansuBroker(log_path=tmp_path_factory.mktemp("broker") / "tansu.log",
                    schema_dir=tmp_path_factory.mktemp("schemas")).start()
    yield b
    b.stop()


# No record of ours has this field: with this schema the broker refuses every record of the topic.
_REFUSE_EVERY_RECORD = {"type": "object", "properties": {"value": {"type": "object", "required": ["refused-by-test"]}}}


@pytest.fixture
def refuse_produce(broker):
    """refuse_produce(topic): the broker rejects every record produced to `topic` from now on
    (INVALID_RECORD, a real produce failure); refuse_produce(topic, False) accepts them again."""
    schema_dir = getattr(broker, "schema_dir", None)
    if schema_dir is None:
        pytest.fail("refusing records needs the session's own Tansu broker (unset CLIPPINGS_TEST_BOOTSTRAP)",
                    pytrace=False)
    written: list[Path] = []

    def refuse(topic: str, refused: bool = True) -> None:
        path = schema_dir / f"{topic}.json"
        if refused:
            path.write_text(json.dumps(_REFUSE_EVERY_RECORD))
            written.append(path)
        else:
            path.unlink(missing_ok=True)

    yield refuse
    for path in written:
        path.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def kafka_bootstrap(broker) -> str:
    return broker.bootstrap


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("CLIPPINGS_TEST_REDIS_URL", TEST_REDIS_URL)
    if not redis_answers(url, timeout_s=3):
        pytest.fail(f"no Redis answers at {url}; start redis-server (CI: .ci/run does) "
                    "or name one in CLIPPINGS_TEST_REDIS_URL", pytrace=False)
    return url


@pytest.fixture(scope="session")
def news_model() -> Path:
    """The shipped default model: the services are tested with what `clippings up` serves."""
    from clippings.runtime.onnx_model import resolve_model

    return resolve_model(os.environ.get("CLIPPINGS_TEST_MODEL", "news"))


@pytest.fixture(scope="session")
def sample_feed() -> Path:
    from clippings.services.local.cli import SAMPLE_FEED

    return SAMPLE_FEED


@dataclass(frozen=True)
class Topics:
    raw: str
    embedded: str
    links: str
    dlq: str
    corrections: str

    def settings(self) -> dict:
        return dict(topic_raw=self.raw, topic_embedded=self.embedded, topic_links=self.links, topic_dlq=self.dlq,
                    topic_corrections=self.corrections)

    def env(self) -> dict[str, str]:
        return {f"CLIPPINGS_{k.upper()}": v for k, v in self.settings().items()}


@pytest.fixture
def topics(kafka_bootstrap) -> Topics:
    from clippings.services.config import ClientSettings
    from clippings.services.kafka.clients import ensure_topics

    suffix = uuid.uuid4().hex[:10]
    t = Topics(f"raw-{suffix}", f"embedded-{suffix}", f"links-{suffix}", f"dlq-{suffix}", f"corrections-{suffix}")
    ensure_topics(ClientSettings(kafka_bootstrap_servers=kafka_bootstrap),
                  {t.raw: 4, t.embedded: 2, t.links: 2, t.dlq: 1, t.corrections: 2})
    return t


@pytest.fixture
def redis_prefix(redis_url):
    """A fresh key prefix; its keys are removed after the test."""
    from clippings.services.linker.store import RedisState, redis_client

    prefix = f"test-{uuid.uuid4().hex[:10]}"
    yield prefix
    RedisState(redis_client(redis_url), prefix).delete_all()


@pytest.fixture
def service_settings(kafka_bootstrap, topics, redis_url, redis_prefix, news_model, tmp_path):
    """Settings for services of this test: its topics, its groups, its prefix, quick group joins."""
    from clippings.services.config import EmbedderSettings, LinkerSettings, load_settings

    group = uuid.uuid4().hex[:8]
    common = dict(
        kafka_bootstrap_servers=kafka_bootstrap, model=str(news_model), metrics_port=0,
        kafka_session_timeout_ms=6000, kafka_heartbeat_interval_ms=500, stats_interval_ms=500,
        batch_max_wait_ms=20, **topics.settings(),
    )

    def make(kind: str, **overrides):
        if kind == "embedder":
            return load_settings(EmbedderSettings, **(common | dict(group_id=f"emb-{group}", onnx_threads=1) | overrides))
        return load_settings(LinkerSettings, **(common | dict(
            group_id=f"lnk-{group}", redis_url=redis_url, redis_prefix=redis_prefix,
            snapshot_dir=tmp_path / "snapshots") | overrides))

    return make


@pytest.fixture
def service_env(kafka_bootstrap, topics, redis_url, redis_prefix, news_model, tmp_path):
    """The same settings as CLIPPINGS_* variables, for services run as child processes."""
    return topics.env() | {
        "CLIPPINGS_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "CLIPPINGS_MODEL": str(news_model),
        "CLIPPINGS_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "CLIPPINGS_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
        "CLIPPINGS_STATS_INTERVAL_MS": "500",
        "CLIPPINGS_BATCH_MAX_WAIT_MS": "20",
        "CLIPPINGS_ONNX_THREADS": "1",
        "CLIPPINGS_REDIS_URL": redis_url,
        "CLIPPINGS_REDIS_PREFIX": redis_prefix,
        "CLIPPINGS_SNAPSHOT_DIR": str(tmp_path / "snapshots"),
    }


class ServiceThread:
    """A service run in this process (enough where the test is not about the process itself).

    A service thread that raised, or returned before it was told to stop, fails the test: at
    wait_ready(), at stop() and at the teardown of run_service. A test that provokes a crash on
    purpose takes the error with wait_failed(), which is then not re-raised.
    """

    def __init__(self, service):
        self.service = service
        self.error: BaseException | None = None
        self.returned_unasked = False  # run() came back although stop was never set
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.service.run()
        except BaseException as exc:  # noqa: BLE001 (re-raised in the test thread by stop())
            self.error = exc
        else:
            self.returned_unasked = not self.service.stop

    @property
    def name(self) -> str:
        return type(self.service).__name__

    def check(self) -> None:
        """Raise what ended the thread, if it ended on its own (once: teardown does not repeat it)."""
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        if self.returned_unasked:
            raise AssertionError(f"{self.name} returned from run() without being stopped")

    def start(self) -> "ServiceThread":
        self._thread.start()
        return self

    def wait_ready(self, timeout_s: float = 60.0) -> "ServiceThread":
        deadline = time.monotonic() + timeout_s
        while not self.service.health.ready()[0]:
            self.check()
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} not ready: {self.service.health.ready()[1]}")
            time.sleep(0.05)
        return self

    def wait_failed(self, timeout_s: float = 60.0) -> BaseException:
        """Wait for a crash the test provoked -> its error (taken: teardown does not re-raise it)."""
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise TimeoutError(f"{self.name} still running after {timeout_s}s; a crash was expected")
        if self.error is None:
            raise AssertionError(f"{self.name} ended without an error; a crash was expected")
        error, self.error = self.error, None
        return error

    def stop(self, timeout_s: float = 30.0) -> None:
        self.service.stop.set()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise TimeoutError(f"{self.name} did not stop within {timeout_s}s")
        self.check()


@pytest.fixture
def run_service(service_settings):
    """run_service("embedder"|"linker", **overrides) -> a started, ready ServiceThread. At teardown
    every one still running is stopped (as SIGTERM would), and the test fails when any of them
    raised, while running or while draining, or did not stop."""
    from clippings.services.embedder.service import EmbedderService
    from clippings.services.linker.service import LinkerService

    running: list[ServiceThread] = []

    def run(kind: str, wait: bool = True, **overrides) -> ServiceThread:
        cls = EmbedderService if kind == "embedder" else LinkerService
        st = ServiceThread(cls(service_settings(kind, **overrides))).start()
        running.append(st)
        return st.wait_ready() if wait else st

    yield run
    for st in running:
        st.service.stop.set()
    failures: list[BaseException] = []
    for st in running:
        try:
            st.stop()
        except BaseException as exc:  # noqa: BLE001 (all are stopped before the first is raised)
            failures.append(exc)
    if failures:
        if len(failures) > 1:
            failures[0].add_note(f"and {len(failures) - 1} more: {failures[1:]!r}")
        raise failures[0]


@pytest.fixture
def spawn_service(service_env, tmp_path):
    """spawn_service("linker", env) -> a ServiceProcess (`python -m clippings.cli linker`); killed after the test."""
    started = []
    group = uuid.uuid4().hex[:8]

    def spawn(kind: str, name: str | None = None, env: dict[str, str] | None = None):
        name = name or f"{kind}-{len(started)}"
        own = {"CLIPPINGS_KAFKA_CLIENT_ID": name, "CLIPPINGS_GROUP_ID": f"{kind}-{group}"}
        svc = start_service(kind, service_env | own | (env or {}),
                            tmp_path / "logs" / f"{name}.log", metrics_port=free_port(), name=name)
        started.append(svc)
        return svc

    yield spawn
    for svc in started:
        if svc.proc.poll() is None:
            svc.proc.kill()
            svc.proc.wait(10)


def read_topic(bootstrap: str, topic: str, until: Callable[[list], bool] | None = None,
               timeout_s: float = 60.0, idle_s: float = 1.0) -> list:
    """Every record of `topic` from the start: read until `until(records)` holds (TimeoutError past
    the timeout), or with until=None, until nothing new came for idle_s (what is there now)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"read-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        records: list = []
        deadline = time.monotonic() + timeout_s
        last_new = time.monotonic()
        while True:
            if until is not None and until(records):
                return records
            if until is None and time.monotonic() - last_new > idle_s:
                return records
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: condition not met after {timeout_s}s with {len(records)} records")
            batch = [m for m in consumer.consume(500, 0.2) if m.error() is None]
            if batch:
                records += batch
                last_new = time.monotonic()
    finally:
        consumer.close()


@pytest.fixture
def topic_reader(kafka_bootstrap):
    return lambda topic, until=None, timeout_s=60.0: read_topic(kafka_bootstrap, topic, until, timeout_s)
