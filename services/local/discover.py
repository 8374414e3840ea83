"""How the short-lived tools (replay, tail, dlq, topics) find a broker, and check that it answers.

A running `clippings up` describes its stack in a small JSON file (its broker and Redis
listen on random ports): $XDG_RUNTIME_DIR/clippings/stack.json, else
~/.cache/clippings/stack.json. The tools use it when neither --bootstrap nor
CLIPPINGS_KAFKA_BOOTSTRAP_SERVERS names a broker, and say which broker they use.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from clippings.services.config import ENV_PREFIX, ClientSettings, load_settings
from clippings.services.errors import BrokerUnavailable, ServiceError

# Long enough for a TLS + SASL handshake to a remote cluster, short enough that a wrong
# address fails at once instead of after broker_timeout_s of retries.
PROBE_TIMEOUT_S = 6.0
_TOPIC_FIELDS = ("topic_raw", "topic_embedded", "topic_links", "topic_dlq", "topic_corrections")


@dataclass(frozen=True)
class StackInfo:
    """What `clippings up` publishes about the stack it runs."""

    bootstrap: str
    redis_url: str
    redis_prefix: str
    pid: int
    workdir: str
    topics: dict[str, str] = field(default_factory=dict)  # settings field -> topic name


def state_path() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) if runtime else Path.home() / ".cache"
    return base / "clippings" / "stack.json"


def publish_stack(info: StackInfo) -> Path:
    """Write the state file (owner-only: the Redis URL may hold a password), replacing any."""
    path = state_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{info.pid}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(asdict(info), fh)
    tmp.replace(path)
    return path


def withdraw_stack(pid: int) -> None:
    """Remove the state file if it still describes the stack of `pid` (a newer `up` may own it)."""
    info = _read(state_path())
    if info is not None and info.pid == pid:
        state_path().unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read(path: Path) -> StackInfo | None:
    try:
        return StackInfo(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def running_stack() -> StackInfo | None:
    """The stack of a `clippings up` that is still running, if the state file names one."""
    info = _read(state_path())
    return info if info is not None and _alive(info.pid) else None


def _env_sets(name: str) -> bool:
    key = (ENV_PREFIX + name).upper()
    return any(k.upper() == key for k in os.environ)  # pydantic-settings ignores the case


def client_settings(bootstrap: str | None, say: bool = True) -> ClientSettings:
    """Settings for a tool: --bootstrap, else the environment, else a running `clippings up`
    (its topics too, where the environment names none), else the default; says which."""
    overrides: dict = {"kafka_bootstrap_servers": bootstrap}
    if bootstrap:
        origin = "--bootstrap"
    elif _env_sets("kafka_bootstrap_servers"):
        origin = f"{ENV_PREFIX}KAFKA_BOOTSTRAP_SERVERS"
    elif (stack := running_stack()) is not None:
        overrides = {"kafka_bootstrap_servers": stack.bootstrap}
        overrides |= {k: v for k, v in stack.topics.items() if k in _TOPIC_FIELDS and not _env_sets(k)}
        origin = f"the `clippings up` of pid {stack.pid}, from {state_path()}"
    else:
        origin = f"the default: no --bootstrap, no {ENV_PREFIX}KAFKA_BOOTSTRAP_SERVERS, no `clippings up` running"
    settings = load_settings(ClientSettings, **overrides)
    if say:
        print(f"broker {settings.kafka_bootstrap_servers} ({origin})", file=sys.stderr)
    return settings


def probe_broker(settings: ClientSettings, topic: str | None = None, timeout_s: float = PROBE_TIMEOUT_S):
    """-> the cluster's metadata (of `topic` alone when given); BrokerUnavailable naming the
    bootstrap and what the client saw (refused, unresolvable, authentication failed) when no
    broker answers within timeout_s. Its own client, silent: librdkafka would log every
    reconnect attempt, ten a second, before the one message that says it all."""
    from confluent_kafka.admin import AdminClient

    from clippings.services.kafka.clients import client_config

    seen: list[str] = []
    admin = AdminClient(client_config(settings) | {"log_level": 0, "error_cb": lambda err: seen.append(err.str())})
    try:
        return admin.list_topics(topic, timeout=timeout_s)
    except Exception as exc:  # noqa: BLE001 (librdkafka raises KafkaException on a timeout)
        admin.poll(0)  # serves the error callbacks queued meanwhile
        raise BrokerUnavailable(
            f"no Kafka broker answered at {settings.kafka_bootstrap_servers} within {timeout_s:.0f}s "
            f"({seen[-1] if seen else exc}); name one with --bootstrap or {ENV_PREFIX}KAFKA_BOOTSTRAP_SERVERS, "
            "or start one with `clippings up`") from exc


def probe_topic(settings: ClientSettings, topic: str) -> int:
    """-> the partition count of `topic`, as probe_broker; ServiceError when it does not exist."""
    found = probe_broker(settings, topic).topics.get(topic)
    if found is None or found.error is not None or not found.partitions:
        raise ServiceError(f"the broker at {settings.kafka_bootstrap_servers} has no topic {topic} "
                           "(create it: clippings topics)")
    return len(found.partitions)
