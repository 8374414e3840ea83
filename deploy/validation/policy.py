"""The services' settings as the manifests give them, and what every stack must meet."""

from __future__ import annotations

import contextlib
import importlib
import os
from typing import Iterable, Iterator

from validation.common import (
    CLIENT_COMMANDS, SECRET_SETTINGS, SERVICE_SETTINGS, UNSET_SETTINGS, by_kind, named, pod_spec, ref,
)

# What the review application must be given in a pod, and what its probes GET (both answer
# without a session; /readyz only while the database answers).
REVIEW_SECRETS = ("CLIPPINGS_REVIEW_DATABASE_URL", "CLIPPINGS_REVIEW_PASSWORD", "CLIPPINGS_REVIEW_SECRET_KEY")
REVIEW_PROBES = {"readinessProbe": "/readyz", "livenessProbe": "/healthz"}

# ------------------------------------------------------------------------------ settings


def container_env(container: dict, docs: Iterable[dict]) -> dict[str, str]:
    """The environment a container starts with; Secret values stand in as placeholders."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        cm = source.get("configMapRef")
        if cm:
            env.update((named(docs, "ConfigMap", cm["name"]) or {}).get("data", {}))
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        elif "secretKeyRef" in item.get("valueFrom", {}):
            key_ref = item["valueFrom"]["secretKeyRef"]
            placeholder = f"secret-{key_ref['name']}-{key_ref['key']}"
            # The services check the Redis URL's shape at start: its stand-in must be a URL.
            url = item["name"] == "CLIPPINGS_REDIS_URL"
            env[item["name"]] = f"redis://{placeholder}:6379/0" if url else placeholder
        elif "configMapKeyRef" in item.get("valueFrom", {}):
            key_ref = item["valueFrom"]["configMapKeyRef"]
            env[item["name"]] = (named(docs, "ConfigMap", key_ref["name"]) or {}).get("data", {}).get(key_ref["key"], "")
        else:
            env[item["name"]] = "from-the-downward-api"
    return env


def service_containers(docs: Iterable[dict], commands: Iterable[str] = SERVICE_SETTINGS) -> Iterator[tuple[dict, dict, str]]:
    """(workload, container, command) for each container running `clippings COMMAND`."""
    commands = set(commands)
    for doc in docs:
        spec = pod_spec(doc) or {}
        for container in spec.get("initContainers", []) + spec.get("containers", []):
            args = container.get("args", [])
            if args and args[0] in commands:
                yield doc, container, args[0]


def settings_class(service: str) -> type:
    """The settings class `clippings SERVICE` loads (SERVICE_SETTINGS), imported now."""
    module, _, name = SERVICE_SETTINGS[service].rpartition(".")
    return getattr(importlib.import_module(module), name)


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    saved = {k: v for k, v in os.environ.items() if k.startswith("CLIPPINGS_")}
    for k in saved:
        del os.environ[k]
    os.environ.update(env)
    try:
        yield
    finally:
        for k in [k for k in os.environ if k.startswith("CLIPPINGS_")]:
            del os.environ[k]
        os.environ.update(saved)


def settings_problems(docs: list[dict], shared: list[dict] = ()) -> list[str]:
    """The CLIPPINGS_* variables of each service container are exactly the settings of its
    class (SERVICE_SETTINGS, less UNSET_SETTINGS), and the service accepts their values."""
    from clippings.services import config

    everything = list(docs) + list(shared)
    problems = []
    for doc, container, service in service_containers(docs):
        where = f"{ref(doc)} container {container['name']}"
        settings_cls = settings_class(service)
        known = {config.ENV_PREFIX + field.upper(): field for field in settings_cls.model_fields}
        env = {k: v for k, v in container_env(container, everything).items() if k.startswith(config.ENV_PREFIX)}
        for name in sorted(set(env) - set(known)):
            problems.append(f"{where}: {name} is no setting of {settings_cls.__name__}")
        for name, field in sorted(known.items()):
            if name not in env and field not in UNSET_SETTINGS:
                problems.append(f"{where}: setting {name} is neither set nor listed in UNSET_SETTINGS")
            if name in env and field in UNSET_SETTINGS:
                problems.append(f"{where}: {name} is set but listed in UNSET_SETTINGS")
        with _environment(env):
            try:
                config.load_settings(settings_cls)
            except config.ConfigError as exc:
                problems.append(f"{where}: the service would refuse its settings: {exc}")
    for doc, container, command in service_containers(docs, CLIENT_COMMANDS):
        env = {k: v for k, v in container_env(container, everything).items() if k.startswith(config.ENV_PREFIX)}
        with _environment(env):
            try:
                config.load_settings(config.ClientSettings)
            except config.ConfigError as exc:
                problems.append(f"{ref(doc)} container {container['name']}: `clippings {command}` would refuse its settings: {exc}")
    return problems


# ------------------------------------------------------------------------------ policy


def _topic_partitions(docs: Iterable[dict]) -> dict[str, int]:
    return {d["spec"].get("topicName", d["metadata"]["name"]): d["spec"]["partitions"] for d in by_kind(docs, "KafkaTopic")}


def policy_problems(docs: list[dict], shared: list[dict] = ()) -> list[str]:
    """What every stack must meet, checked here and not left to checkov alone:
    hardened containers, probes, resources, graceful stop past the commit interval,
    autoscaling capped at the partitions, one configuration across Kafka objects."""
    everything = list(docs) + list(shared)
    partitions = _topic_partitions(everything)
    problems = []
    for doc in docs:
        if pod_spec(doc) is not None:
            problems += _hardening_problems(doc)
    for doc, container, service in service_containers(docs):
        where = f"{ref(doc)} container {container['name']}"
        env = container_env(container, everything)
        problems += _secret_problems(where, container, everything)
        if service == "review":
            problems += _review_problems(where, doc, container, env, partitions)
            continue
        problems += _service_problems(where, doc, container, env, partitions)
        if service == "linker":
            problems += _linker_problems(where, doc, container, env, partitions)
        if service == "embedder":
            problems += _embedder_problems(where, doc, docs, env, partitions)
    return problems


def _hardening_problems(doc: dict) -> list[str]:
    spec, where, problems = pod_spec(doc), ref(doc), []
    pod_sc = spec.get("securityContext", {})
    if spec.get("automountServiceAccountToken") is not False:
        problems.append(f"{where}: automountServiceAccountToken must be false")
    if pod_sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append(f"{where}: pod seccompProfile must be RuntimeDefault")
    for container in spec.get("initContainers", []) + spec["containers"]:
        cwhere = f"{where} container {container['name']}"
        sc = container.get("securityContext", {})
        if not (sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")):
            problems.append(f"{cwhere}: runAsNonRoot is not set")
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{cwhere}: readOnlyRootFilesystem must be true")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{cwhere}: allowPrivilegeEscalation must be false")
        if sc.get("privileged"):
            problems.append(f"{cwhere}: privileged")
        if "ALL" not in sc.get("capabilities", {}).get("drop", []):
            problems.append(f"{cwhere}: capabilities must drop ALL")
        for kind in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in container.get("resources", {}).get(kind, {}):
                    problems.append(f"{cwhere}: no {resource} {kind[:-1]}")
        # A Job runs to its end: nothing to probe. Init containers cannot have probes.
        if doc["kind"] != "Job" and container in spec["containers"]:
            for probe in ("readinessProbe", "livenessProbe"):
                if probe not in container:
                    problems.append(f"{cwhere}: no {probe}")
    return problems


def _service_problems(where: str, doc: dict, container: dict, env: dict[str, str], partitions: dict[str, int]) -> list[str]:
    problems = []
    port = int(env.get("CLIPPINGS_METRICS_PORT", "-1"))
    named_ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    if named_ports.get("metrics") != port:
        problems.append(f"{where}: port 'metrics' is {named_ports.get('metrics')}, CLIPPINGS_METRICS_PORT is {port}")
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = container.get(probe, {}).get("httpGet", {})
        if get.get("path") != path or get.get("port") != "metrics":
            problems.append(f"{where}: {probe} must GET {path} on port metrics")
    stop_s = (int(env.get("CLIPPINGS_COMMIT_INTERVAL_MS", "0")) + int(env.get("CLIPPINGS_BATCH_MAX_WAIT_MS", "0"))) / 1000
    grace = pod_spec(doc).get("terminationGracePeriodSeconds", 30)
    if grace <= stop_s or grace < 30:
        problems.append(f"{where}: terminationGracePeriodSeconds {grace} must exceed 30 s and the commit interval + batch wait ({stop_s} s)")
    for setting in ("CLIPPINGS_TOPIC_RAW", "CLIPPINGS_TOPIC_EMBEDDED", "CLIPPINGS_TOPIC_LINKS", "CLIPPINGS_TOPIC_DLQ"):
        if env.get(setting) not in partitions:
            problems.append(f"{where}: {setting}={env.get(setting)} has no KafkaTopic")
    return problems


def _secret_problems(where: str, container: dict, everything: list[dict]) -> list[str]:
    """Secret settings come from a secretKeyRef and sit in no ConfigMap the container reads."""
    problems = []
    from_secret = {e["name"] for e in container.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})}
    for e in container.get("env", []):
        if e["name"] in SECRET_SETTINGS and e["name"] not in from_secret:
            problems.append(f"{where}: {e['name']} is a secret: it must come from a Secret (secretKeyRef)")
    for source in container.get("envFrom", []):
        cm = (source.get("configMapRef") or {}).get("name")
        data = (named(everything, "ConfigMap", cm) or {}).get("data", {}) if cm else {}
        for name in sorted(set(data) & set(SECRET_SETTINGS)):
            problems.append(f"{where}: {name} is a secret but ConfigMap {cm} holds it")
    return problems


def _review_problems(where: str, doc: dict, container: dict, env: dict[str, str], partitions: dict[str, int]) -> list[str]:
    """`clippings review` in a pod: listening on the pod IP, its secrets from Secrets, probed on
    its health pages, reading and writing topics that exist."""
    problems = []
    if env.get("CLIPPINGS_REVIEW_HOST") != "0.0.0.0":
        problems.append(f"{where}: CLIPPINGS_REVIEW_HOST is {env.get('CLIPPINGS_REVIEW_HOST')}, must be 0.0.0.0 "
                        "(the Service and the kubelet's probes reach the pod IP)")
    from_secret = {e["name"] for e in container.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})}
    for name in REVIEW_SECRETS:
        if name not in from_secret:
            problems.append(f"{where}: {name} must come from a Secret (secretKeyRef)")
    port = int(env.get("CLIPPINGS_REVIEW_PORT", "8400"))
    named_ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    if named_ports.get("http") != port:
        problems.append(f"{where}: port 'http' is {named_ports.get('http')}, CLIPPINGS_REVIEW_PORT is {port}")
    for probe, path in REVIEW_PROBES.items():
        get = container.get(probe, {}).get("httpGet", {})
        if get.get("path") != path or get.get("port") != "http":
            problems.append(f"{where}: {probe} must GET {path} on port http (it answers without a login)")
    grace = pod_spec(doc).get("terminationGracePeriodSeconds", 30)
    if grace < 30:
        problems.append(f"{where}: terminationGracePeriodSeconds {grace} must be at least 30 s (the reader's last batch)")
    for setting in ("CLIPPINGS_TOPIC_RAW", "CLIPPINGS_TOPIC_LINKS", "CLIPPINGS_TOPIC_CORRECTIONS"):
        if env.get(setting) not in partitions:
            problems.append(f"{where}: {setting}={env.get(setting)} has no KafkaTopic")
    return problems


def _linker_problems(where: str, doc: dict, container: dict, env: dict[str, str], partitions: dict[str, int]) -> list[str]:
    problems = []
    if doc["kind"] != "StatefulSet" or not doc["spec"].get("volumeClaimTemplates"):
        problems.append(f"{where}: the linker must be a StatefulSet with a volume claim for its snapshots")
    mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
    if env.get("CLIPPINGS_SNAPSHOT_DIR") not in mounts:
        problems.append(f"{where}: CLIPPINGS_SNAPSHOT_DIR {env.get('CLIPPINGS_SNAPSHOT_DIR')} is not a mounted volume")
    topic = env.get("CLIPPINGS_TOPIC_EMBEDDED")
    if doc["spec"].get("replicas", 1) > partitions.get(topic, 0):
        problems.append(f"{where}: {doc['spec'].get('replicas')} replicas but {partitions.get(topic)} partitions of {topic}")
    corrections = env.get("CLIPPINGS_TOPIC_CORRECTIONS")
    if partitions.get(corrections) != partitions.get(topic):
        problems.append(f"{where}: {corrections} has {partitions.get(corrections)} partitions, {topic} "
                        f"{partitions.get(topic)}: corrections must be co-partitioned with the linker's input")
    return problems


def _embedder_problems(where: str, doc: dict, docs: list[dict], env: dict[str, str], partitions: dict[str, int]) -> list[str]:
    problems = []
    scalers = [s for s in by_kind(docs, "ScaledObject") + by_kind(docs, "HorizontalPodAutoscaler")
               if s["spec"]["scaleTargetRef"]["name"] == doc["metadata"]["name"]]
    if len(scalers) != 1:
        problems.append(f"{where}: {len(scalers)} autoscalers target it (want one)")
    if "replicas" in doc["spec"]:
        problems.append(f"{where}: spec.replicas is owned by the autoscaler; leave it out")
    raw = env.get("CLIPPINGS_TOPIC_RAW")
    for scaler in scalers:
        cap = scaler["spec"].get("maxReplicaCount", scaler["spec"].get("maxReplicas"))
        if cap != partitions.get(raw):
            problems.append(f"{ref(scaler)}: max replicas {cap}, but {raw} has {partitions.get(raw)} partitions")
        for trigger in scaler["spec"].get("triggers", []):
            problems += _trigger_problems(ref(scaler), trigger["metadata"], doc, env)
        for metric in scaler["spec"].get("metrics", []):
            topic = metric.get("external", {}).get("metric", {}).get("selector", {}).get("matchLabels", {}).get("topic")
            if metric["type"] == "External" and topic != raw:
                problems.append(f"{ref(scaler)}: external metric selects topic {topic}, not {raw}")
    return problems


def _trigger_problems(where: str, meta: dict, doc: dict, env: dict[str, str]) -> list[str]:
    """A KEDA Kafka trigger watches the embedder's own group, topic and broker."""
    problems = []
    raw = env.get("CLIPPINGS_TOPIC_RAW")
    if meta.get("consumerGroup") != env.get("CLIPPINGS_GROUP_ID"):
        problems.append(f"{where}: consumerGroup {meta.get('consumerGroup')} is not CLIPPINGS_GROUP_ID {env.get('CLIPPINGS_GROUP_ID')}")
    if meta.get("topic") != raw:
        problems.append(f"{where}: topic {meta.get('topic')} is not CLIPPINGS_TOPIC_RAW {raw}")
    host, _, port = meta.get("bootstrapServers", "").partition(":")
    want_host, _, want_port = env.get("CLIPPINGS_KAFKA_BOOTSTRAP_SERVERS", "").partition(":")
    if host.split(".")[0] != want_host.split(".")[0] or port != want_port:
        problems.append(f"{where}: bootstrapServers {meta.get('bootstrapServers')} is not the services' {want_host}:{want_port}")
    if f".{doc['metadata'].get('namespace')}.svc" not in host:
        problems.append(f"{where}: KEDA runs elsewhere: bootstrapServers needs <service>.{doc['metadata'].get('namespace')}.svc")
    return problems
