"""Every setting of the streaming services, in one place.

One frozen settings object per service, read from environment variables with the prefix
CLIPPINGS_ (e.g. CLIPPINGS_KAFKA_BOOTSTRAP_SERVERS) and overridable by keyword (the CLI
passes its flags that way). Secrets are SecretStr: they print as '**********' and are only
unwrapped where a client is built. docs/configuration.md lists every variable.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from clippings.errors import ConfigError
from clippings.runtime.manifest import Variant

ENV_PREFIX = "CLIPPINGS_"


class _Base(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")


class KafkaSettings(_Base):
    """How to reach the brokers; everything a client needs, security included."""

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_client_id: str = "clippings"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "GSSAPI"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_location: str | None = None
    kafka_ssl_certificate_location: str | None = None
    kafka_ssl_key_location: str | None = None
    kafka_ssl_key_password: SecretStr | None = None
    kafka_ssl_verify_hostname: bool = True
    # Any other librdkafka property ({"socket.keepalive.enable": "true"}); values may be
    # secret, so they are SecretStr and only the keys are ever logged.
    kafka_extra: dict[str, SecretStr] = Field(default_factory=dict)
    # librdkafka's default session (45 s) makes a group join slow; 10 s still rides out GC pauses.
    kafka_session_timeout_ms: int = Field(10_000, ge=1_000)
    kafka_heartbeat_interval_ms: int = Field(1_000, ge=100)
    kafka_max_poll_interval_ms: int = Field(300_000, ge=10_000)
    kafka_socket_timeout_ms: int = Field(30_000, ge=1_000)
    # How long the broker may hold a fetch waiting for data: each hop of the pipeline waits up
    # to this long for a new record, so it bounds the added latency (librdkafka default: 500).
    kafka_fetch_wait_max_ms: int = Field(100, ge=1, le=10_000)
    # How long a producer holds a record to send it with the ones after it. The services
    # flush every batch, so it never delays them; it batches a paced publisher (`clippings
    # replay`, a feed): one record a request made the local broker's fetches slower with every
    # record stored (docs/performance.md, "The local broker's fetch cost").
    kafka_linger_ms: int = Field(50, ge=0, le=5_000)
    # How long the producer retries one message before failing it; longer than any broker
    # outage we want to ride out without a restart.
    kafka_delivery_timeout_ms: int = Field(300_000, ge=10_000)
    # Past this long with no broker reachable the process exits non-zero (Kubernetes restarts it).
    broker_timeout_s: float = Field(120.0, gt=0)

    topic_raw: str = "clippings.raw"
    topic_embedded: str = "clippings.embedded"
    topic_links: str = "clippings.links"
    topic_dlq: str = "clippings.dlq"
    # Reviewers' corrections (the review page -> the linker); as many partitions as
    # topic_embedded: a correction goes to the partition whose linker holds its block.
    topic_corrections: str = "clippings.corrections"

    @model_validator(mode="after")
    def _sasl_complete(self):
        if self.kafka_security_protocol.startswith("SASL") and self.kafka_sasl_mechanism is None:
            raise ValueError("kafka_security_protocol SASL_* needs kafka_sasl_mechanism")
        if self.kafka_sasl_mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512") and not (
            self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(f"kafka_sasl_mechanism {self.kafka_sasl_mechanism} needs kafka_sasl_username "
                             "and kafka_sasl_password")
        return self


class ServiceSettings(KafkaSettings):
    """What every long-running service shares: its consumer loop, metrics port, model."""

    group_id: str = "clippings"
    model: str = "news"  # a shipped model name or an exported model folder
    batch_max_events: int = Field(64, ge=1, le=10_000)
    batch_max_wait_ms: int = Field(50, ge=0, le=60_000)
    commit_interval_ms: int = Field(1_000, ge=100)  # stored offsets are committed this often
    stats_interval_ms: int = Field(5_000, ge=100)  # librdkafka statistics -> lag metric
    # Loopback: /metrics and the probes are not for the network unless a deployment says so
    # (the Kubernetes manifests set 0.0.0.0: kubelet and Prometheus reach the pod's IP).
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(9100, ge=0, le=65535)  # 0: any free port (tests)
    # /healthz fails when the main loop has not turned for this long (a hung process).
    liveness_timeout_s: float = Field(300.0, gt=0)


class EmbedderSettings(ServiceSettings):
    group_id: str = "clippings-embedder"
    metrics_port: int = Field(9101, ge=0, le=65535)
    # None: the variant the model's manifest serves (the one its decision was tuned on).
    model_variant: Variant | None = None
    onnx_providers: list[str] | None = None  # None: CUDA when present, else CPU
    onnx_threads: int = Field(0, ge=0)  # ONNX Runtime intra-op threads; 0: one per core
    decode_workers: int = Field(2, ge=1, le=64)  # image fetch/decode/preprocess threads
    image_inline_max_bytes: int = Field(700_000, ge=1)  # decoded size of a base64 image in the event
    image_max_bytes: int = Field(20_000_000, ge=1)  # any image, fetched by reference or inline
    image_max_pixels: int = Field(40_000_000, ge=1)  # decompression-bomb guard (width x height)
    image_fetch_timeout_s: float = Field(10.0, gt=0)  # one fetch in all: connect, TLS, headers, body
    # All the images of one batch; those not ready by then go to the DLQ instead of holding it.
    image_batch_timeout_s: float = Field(15.0, gt=0)
    # file:// references are read only under these folders; empty: file:// is refused.
    image_file_roots: list[Path] = Field(default_factory=list)
    image_http_allowed: bool = False
    # Hosts http(s) references may name: "img.example.com", "*.example.com" (its subdomains),
    # "*" (any); empty: none. Only public addresses are fetched, checked after DNS.
    image_http_hosts: list[str] = Field(default_factory=list)
    image_http_private_allowed: bool = False  # also private/loopback (an image server in the cluster)


class LinkerSettings(ServiceSettings):
    group_id: str = "clippings-linker"
    metrics_port: int = Field(9102, ge=0, le=65535)
    threshold: float | None = Field(None, ge=-1.0, le=1.0)  # None: the manifest's threshold
    threshold_kind: Literal["dedup", "link"] = "dedup"  # which manifest threshold
    # Any faiss.index_factory string over inner product, wrapped in an IDMap: "Flat" (exact),
    # "HNSW32" (approximate, needs search="knn").
    index_spec: str = "Flat"
    search: Literal["range", "knn"] = "range"  # range: exact single linkage; knn: top-k only
    # A Flat block moves to an approximate IVF index, trained on its own vectors in the
    # background and checked against exact search, at this many vectors (docs/services.md):
    # an exact scan of 1e5 vectors of 256 floats takes 13 ms a decision (p99, one core), past
    # the 10 ms target; at 2e4 a decision took 4 ms (p99) while the build ran beside it, and
    # the IVF index is rebuilt with more lists as the block grows. 0 pins exact search.
    index_grow_at: int = Field(20_000, ge=0)
    index_recall_target: float = Field(0.99, gt=0.0, le=1.0)  # link recall at the threshold, on a sample
    index_nprobe: int = Field(16, ge=1)  # IVF lists probed to begin with; doubled until the target is met
    knn_k: int = Field(32, ge=1, le=4096)
    faiss_threads: int = Field(1, ge=1)
    # A batch's search switches to BLAS from this many queries (FAISS's default waits for
    # about 1,000); at one OpenMP thread BLAS wins from a handful (docs/performance.md).
    faiss_blas_min_queries: int = Field(8, ge=1)
    # With search="knn": a block of at least this many vectors moves to the GPU when FAISS has one
    # (the gpu extra); 0: CPU only. Range search stays on the CPU (FAISS has none on GPU).
    faiss_gpu_min_vectors: int = Field(0, ge=0)
    neighbours_in_event: int = Field(5, ge=0, le=100)
    # Link events also name neighbours up to this far below the threshold (never joined): the
    # near misses a reviewer should see, which the review page's queue ranks with the rest.
    neighbours_below: float = Field(0.05, ge=0.0, le=1.0)
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")  # rediss:// for TLS
    redis_username: str | None = None
    redis_password: SecretStr | None = None
    redis_ssl_ca_certs: str | None = None
    redis_ssl_certfile: str | None = None
    redis_ssl_keyfile: str | None = None
    redis_prefix: str = "clippings"
    redis_socket_timeout_s: float = Field(5.0, gt=0)
    # Past this long with Redis unreachable the process exits non-zero.
    redis_timeout_s: float = Field(120.0, gt=0)
    snapshot_dir: Path = Path("snapshots")
    snapshot_every_events: int = Field(5_000, ge=1)
    snapshot_interval_s: float = Field(60.0, gt=0)

    @field_validator("redis_url")
    @classmethod
    def _url_parses(cls, v: SecretStr) -> SecretStr:
        problem = _url_problem(v.get_secret_value())
        if problem:  # the message never quotes the URL: it may hold a password
            raise ValueError(problem)
        return v

    @field_validator("redis_prefix")
    @classmethod
    def _prefix_plain(cls, v: str) -> str:
        if not v or any(c.isspace() for c in v):
            raise ValueError("redis_prefix must be non-empty without spaces")
        return v


class ClientSettings(KafkaSettings):
    """For the short-lived tools (replay, tail, topics)."""


def load_settings(cls: type[_Base], **overrides) -> _Base:
    """Environment + overrides (None values ignored) -> settings, or a ConfigError naming the
    environment variables (CLIPPINGS_...) to fix, never their values."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return cls(**given)
    except ValidationError as exc:
        problems = "; ".join(_error_line(cls, e["loc"], e["msg"]) for e in exc.errors())
    except SettingsError as exc:  # a list or dict variable that is no JSON
        found = re.search(r'field "(\w+)"', str(exc))
        name = env_name(found.group(1)) if found else f"a {ENV_PREFIX}* variable"
        problems = f"{name}: not valid JSON ({exc.__cause__ or exc})"
    raise ConfigError(f"invalid {cls.__name__}: {problems}") from None


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def _error_line(cls: type[_Base], loc: tuple, msg: str) -> str:
    # A check across fields has no location: its message names fields, which become variables.
    # Only names with an underscore are rewritten, so plain words ("model") stay words.
    names = sorted((f for f in cls.model_fields if "_" in f), key=len, reverse=True)
    msg = msg.removeprefix("Value error, ")  # pydantic's prefix for a ValueError a validator raised
    msg = re.sub(r"\b(" + "|".join(names) + r")\b", lambda m: env_name(m.group(1)), msg)
    if not loc:
        return msg
    where = env_name(str(loc[0]))
    return f"{where} [{'.'.join(map(str, loc[1:]))}]: {msg}" if len(loc) > 1 else f"{where}: {msg}"


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_SECRET_KEY = re.compile(r"pass|secret|token|auth|cred|key", re.IGNORECASE)


def _url_problem(url: str) -> str | None:
    """Why the URL cannot be read as one scheme://[user-info@]host[:port]/path, or None."""
    scheme, sep, _ = url.partition("://")
    if not sep or not _SCHEME.fullmatch(scheme):
        return "has no scheme:// (redis://, rediss:// or unix://)"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a port that is no number)
    except ValueError:
        parts = None
    # An unencoded '/', '#', '?' or '@' in a password ends the user-info early: the host, the
    # port or the path then hold part of the password.
    if parts is None or url.count("@") != parts.netloc.count("@"):
        return ("cannot be parsed: percent-encode '/', '#', '?', '@' and ':' in the user name and "
                "password (e.g. '/' as %2F)")
    return None


def redact_url(url: str) -> str:
    """redis://user:secret@host:6379/0 -> redis://user:***@host:6379/0, for logs.

    Never shows any part of a password: when the URL does not parse as one user-info part
    before the host (an unencoded '/', '#', '?' or '@' in the password), only the scheme is
    shown; query values named like secrets (?password=) and the fragment are masked too.
    """
    if _url_problem(url):
        scheme = url.partition("://")[0]
        return f"{scheme}://***" if "://" in url and _SCHEME.fullmatch(scheme) else "***"
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if at:
        name, colon, _ = userinfo.partition(":")
        # Without ':' some clients take the whole user-info for the password: mask it all.
        hostport = (f"{name}:***@" if colon else "***@") + hostport
    query = "&".join(
        f"{k}=***" if sep and _SECRET_KEY.search(k) else f"{k}{sep}{v}"
        for k, sep, v in (item.partition("=") for item in parts.query.split("&"))
    ) if parts.query else ""
    # Built by hand: urlunsplit drops the '//' of unix:///path.
    return f"{parts.scheme}://{hostport}{parts.path}" + (f"?{query}" if query else "") + ("#***" if parts.fragment else "")


def describe(settings: _Base) -> str:
    """key=value of every setting with secrets masked, for the start-up log line."""
    out = []
    for name, value in settings.model_dump().items():
        if isinstance(value, SecretStr):
            shown = redact_url(value.get_secret_value()) if name.endswith("_url") else "***"
        elif name == "kafka_extra":
            shown = ",".join(sorted(value)) or "-"
        else:
            shown = value
        out.append(f"{name}={shown}")
    return " ".join(out)
