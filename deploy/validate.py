"""Offline checks of everything under deploy/ (and the Dockerfiles); no cluster needed.

    .venv/bin/python deploy/validate.py                 # every check
    .venv/bin/python deploy/validate.py --only rules    # one group: render, schema, refs, settings,
                                                        # policy, checkov, hadolint, rules, dashboard, metrics

Each check returns a list of problems ("where: what"); an empty list is a pass. The same
functions back tests/test_deploy.py, which also feeds them broken copies to prove they fail.
Tools (install lines in docs/operations.md, "Validation tools"): kubectl (its built-in
kustomize renders the overlays), promtool, checkov, hadolint; Python packages
kubernetes-validate, jsonschema, PyYAML, promql-parser.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import yaml

DEPLOY = Path(__file__).resolve().parent
REPO = DEPLOY.parent
SCHEMAS = DEPLOY / "schemas"
DASHBOARD = DEPLOY / "k8s" / "platform" / "dashboards" / "clippings.json"
ALERT_TESTS = DEPLOY / "observability" / "alerts-test.yaml"
DOCKERFILES = (REPO / "Dockerfile", REPO / "Dockerfile.gpu")

# Every kustomization an operator applies, by a short name.
KUSTOMIZATIONS = {
    "platform": DEPLOY / "k8s" / "platform",
    "cpu": DEPLOY / "k8s" / "overlays" / "cpu",
    "gpu": DEPLOY / "k8s" / "overlays" / "gpu",
    "cpu-hpa": DEPLOY / "k8s" / "overlays" / "cpu-hpa",
    "gpu-green": DEPLOY / "k8s" / "overlays" / "gpu-green",
    "kafka": DEPLOY / "k8s" / "kafka",
    "redis": DEPLOY / "k8s" / "redis",
    "smoke": DEPLOY / "k8s" / "smoke",
}
# The ones that are a stack of services (each is applied together with platform).
STACKS = ("cpu", "gpu", "cpu-hpa", "gpu-green")
# The oldest Kubernetes docs/deploy.md supports and the newest kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")

# Secrets the manifests read but no kustomization creates: name -> (keys, who creates it).
EXTERNAL_SECRETS = {
    "clippings-embedder": ({"password"}, "the Strimzi User Operator, for KafkaUser clippings-embedder"),
    "clippings-linker": ({"password"}, "the Strimzi User Operator, for KafkaUser clippings-linker"),
    "clippings-kafka-cluster-ca-cert": ({"ca.crt"}, "the Strimzi Cluster Operator, for Kafka clippings-kafka"),
    "clippings-redis": ({"url", "password", "users.acl"}, "the operator, with the command in docs/deploy.md"),
    "clippings-smoke": ({"password"}, "the Strimzi User Operator, for KafkaUser clippings-smoke"),
}

# Settings of services/config.py that the manifests leave unset on purpose.
UNSET_SETTINGS = {
    "kafka_ssl_certificate_location": "no mutual TLS: the Strimzi listener authenticates users with SCRAM-SHA-512",
    "kafka_ssl_key_location": "no mutual TLS (see kafka_ssl_certificate_location)",
    "kafka_ssl_key_password": "no mutual TLS (see kafka_ssl_certificate_location)",
    "threshold": "unset means the threshold tuned into the model's manifest",
    "redis_username": "the in-cluster Redis has only its default user (deploy/k8s/redis)",
    "redis_ssl_ca_certs": "the in-cluster Redis speaks plain TCP inside the namespace; set with a rediss:// URL",
    "redis_ssl_certfile": "no client certificate for Redis (see redis_ssl_ca_certs)",
    "redis_ssl_keyfile": "no client certificate for Redis (see redis_ssl_ca_certs)",
}
SERVICE_SETTINGS = {"embedder": "EmbedderSettings", "linker": "LinkerSettings"}
# The short-lived tools read ClientSettings and ignore the services' variables.
CLIENT_COMMANDS = ("replay", "tail", "topics")

# Metrics the alerts and the dashboard may use although no clippings service exports them.
EXTERNAL_METRICS = {
    "up": "written by Prometheus for every scrape target",
    "kube_pod_container_status_restarts_total": "kube-state-metrics (part of kube-prometheus-stack)",
}

# checkov findings accepted on purpose, with the reason. Anything else fails validation.
CHECKOV_ACCEPTED = {
    "CKV_K8S_43": "image digests are pinned per environment with kustomize `images` (docs/deploy.md, Images); "
    "the repository cannot know the digest of an image it has not built",
    "CKV_K8S_35": "services/config.py reads its secrets from environment variables "
    "(pydantic-settings), so Secrets are passed as env, never logged (SecretStr)",
}
# hadolint rules switched off, with the reason.
HADOLINT_IGNORED: dict[str, str] = {}

_PLACEHOLDER = re.compile(r"\$(?:__\w+|\{\w+\}|\w+)")


class ToolMissing(RuntimeError):
    """A validation tool is not installed; the message says how to install it."""


def find_tool(name: str) -> str:
    """A tool's path: $<NAME>_BIN, then PATH, then beside this Python (a venv's bin/)."""
    env = os.environ.get(f"{name.upper()}_BIN")
    found = env or shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if not found:
        raise ToolMissing(f"{name} not found: see docs/operations.md, 'Validation tools' (or set {name.upper()}_BIN)")
    return found


# ------------------------------------------------------------------------------ rendering


def render(directory: Path) -> list[dict]:
    """The objects a kustomization renders to, with kubectl's built-in kustomize."""
    proc = subprocess.run(
        [find_tool("kubectl"), "kustomize", str(directory)], capture_output=True, text=True, timeout=120
    )
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {directory} failed: {proc.stderr.strip()}")
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def render_all() -> dict[str, list[dict]]:
    return {name: render(path) for name, path in KUSTOMIZATIONS.items()}


def write_rendered(rendered: dict[str, list[dict]], directory: Path) -> list[Path]:
    """One multi-document YAML file per kustomization (what checkov and humans read)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, docs in rendered.items():
        path = directory / f"{name}.yaml"
        path.write_text(yaml.safe_dump_all(docs, sort_keys=False), encoding="utf-8")
        paths.append(path)
    return paths


def ref(doc: dict) -> str:
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def by_kind(docs: Iterable[dict], kind: str) -> list[dict]:
    return [d for d in docs if d.get("kind") == kind]


def named(docs: Iterable[dict], kind: str, name: str) -> dict | None:
    return next((d for d in by_kind(docs, kind) if d["metadata"]["name"] == name), None)


def pod_spec(doc: dict) -> dict | None:
    if doc.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return doc["spec"]["template"]["spec"]
    return None


# ------------------------------------------------------------------------------ schemas


def crd_validators() -> dict[tuple[str, str], object]:
    """(apiVersion, kind) -> a validator for the CRD schemas vendored in deploy/schemas."""
    import jsonschema

    validators = {}
    for path in sorted(SCHEMAS.glob("*.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        props = schema["properties"]
        validators[(props["apiVersion"]["const"], props["kind"]["const"])] = jsonschema.Draft202012Validator(schema)
    return validators


def schema_problems(docs: Iterable[dict], versions: Iterable[str] = KUBERNETES_VERSIONS) -> list[str]:
    """Strict validation: built-in kinds against Kubernetes' OpenAPI (kubernetes-validate),
    custom resources against deploy/schemas. An object of an unknown kind is a problem."""
    import kubernetes_validate

    crds = crd_validators()
    problems = []
    for doc in docs:
        where = ref(doc)
        crd = crds.get((doc.get("apiVersion"), doc.get("kind")))
        if crd is not None:
            for err in sorted(crd.iter_errors(doc), key=lambda e: list(e.absolute_path)):
                path = ".".join(map(str, err.absolute_path)) or "(root)"
                problems.append(f"{where}: {path}: {err.message}")
            continue
        for version in versions:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                problems.append(f"{where}: no schema for {doc.get('apiVersion')} {doc.get('kind')} (Kubernetes {version} or deploy/schemas)")
                break
            except kubernetes_validate.ValidationError as err:
                path = ".".join(map(str, err.path)) or "(root)"
                problems.append(f"{where}: Kubernetes {version}: {path}: {err.message}")
    return problems


# ------------------------------------------------------------------------------ references


def _labels_match(selector: dict, labels: dict) -> bool:
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        present, value = expr["key"] in labels, labels.get(expr["key"])
        op = expr["operator"]
        if (op == "In" and value not in expr["values"]) or (op == "NotIn" and value in expr.get("values", [])):
            return False
        if (op == "Exists" and not present) or (op == "DoesNotExist" and present):
            return False
    return True


def _secret_refs(spec: dict) -> Iterator[tuple[str, str | None]]:
    for container in spec.get("containers", []) + spec.get("initContainers", []):
        for env in container.get("env", []):
            key_ref = env.get("valueFrom", {}).get("secretKeyRef")
            if key_ref:
                yield key_ref["name"], key_ref["key"]
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                yield source["secretRef"]["name"], None
    for volume in spec.get("volumes", []):
        secret = volume.get("secret")
        if secret:
            items = secret.get("items") or [{"key": None}]
            for item in items:
                yield secret["secretName"], item["key"]


def reference_problems(docs: list[dict], shared: list[dict] = ()) -> list[str]:
    """Every name a manifest points at exists: ConfigMaps, Secrets (made here or by someone
    named in EXTERNAL_SECRETS), ServiceAccounts, Services, volumes, ports, scale targets;
    every selector selects something."""
    everything = list(docs) + list(shared)
    problems = []
    configmaps = {d["metadata"]["name"] for d in by_kind(everything, "ConfigMap")}
    secrets = {d["metadata"]["name"] for d in by_kind(everything, "Secret")}
    accounts = {d["metadata"]["name"] for d in by_kind(everything, "ServiceAccount")} | {"default"}
    services = {d["metadata"]["name"]: d for d in by_kind(everything, "Service")}
    workloads = [d for d in docs if pod_spec(d) is not None]

    for doc in workloads:
        where, spec = ref(doc), pod_spec(doc)
        if spec.get("serviceAccountName", "default") not in accounts:
            problems.append(f"{where}: ServiceAccount {spec['serviceAccountName']} does not exist")
        if doc["kind"] == "StatefulSet" and doc["spec"].get("serviceName") not in services:
            problems.append(f"{where}: serviceName {doc['spec'].get('serviceName')} is no Service")
        selector = doc["spec"].get("selector")
        if selector and not _labels_match(selector, doc["spec"]["template"]["metadata"].get("labels", {})):
            problems.append(f"{where}: selector does not match its own pod template")
        volume_names = {v["name"] for v in spec.get("volumes", [])}
        volume_names |= {t["metadata"]["name"] for t in doc["spec"].get("volumeClaimTemplates", [])}
        for volume in spec.get("volumes", []):
            cm = volume.get("configMap")
            if cm and cm["name"] not in configmaps:
                problems.append(f"{where}: volume {volume['name']}: ConfigMap {cm['name']} does not exist")
        for name, key in _secret_refs(spec):
            if name in secrets:
                continue
            if name not in EXTERNAL_SECRETS:
                problems.append(f"{where}: Secret {name} is neither rendered nor a known external Secret")
            elif key is not None and key not in EXTERNAL_SECRETS[name][0]:
                problems.append(f"{where}: Secret {name} has no key {key} (made by {EXTERNAL_SECRETS[name][1]})")
        for container in spec["containers"]:
            cwhere = f"{where} container {container['name']}"
            for source in container.get("envFrom", []):
                cm = source.get("configMapRef")
                if cm and cm["name"] not in configmaps:
                    problems.append(f"{cwhere}: envFrom ConfigMap {cm['name']} does not exist")
            for env in container.get("env", []):
                cm = env.get("valueFrom", {}).get("configMapKeyRef")
                if cm and cm["name"] not in configmaps:
                    problems.append(f"{cwhere}: env {env['name']}: ConfigMap {cm['name']} does not exist")
            for mount in container.get("volumeMounts", []):
                if mount["name"] not in volume_names:
                    problems.append(f"{cwhere}: volumeMount {mount['name']} has no volume")
            port_names = {p.get("name") for p in container.get("ports", [])}
            for probe_name in ("readinessProbe", "livenessProbe", "startupProbe"):
                probe = container.get(probe_name) or {}
                port = (probe.get("httpGet") or probe.get("tcpSocket") or {}).get("port")
                if isinstance(port, str) and port not in port_names:
                    problems.append(f"{cwhere}: {probe_name} port {port} is not a named container port")

    pod_labels = [(ref(w), w["spec"]["template"]["metadata"].get("labels", {})) for w in workloads]
    for svc in by_kind(docs, "Service"):
        selector = {"matchLabels": svc["spec"].get("selector", {})}
        if not any(_labels_match(selector, labels) for _, labels in pod_labels):
            problems.append(f"{ref(svc)}: selector matches no pod template")
    for pdb in by_kind(docs, "PodDisruptionBudget"):
        matched = [w for w, labels in pod_labels if _labels_match(pdb["spec"]["selector"], labels)]
        if len(matched) != 1:
            problems.append(f"{ref(pdb)}: selector matches {matched or 'no workload'} (want exactly one)")
    every_pod = [w["spec"]["template"]["metadata"].get("labels", {}) for w in everything if pod_spec(w) is not None]
    for policy in by_kind(docs, "NetworkPolicy"):
        if not any(_labels_match(policy["spec"]["podSelector"], labels) for labels in every_pod):
            problems.append(f"{ref(policy)}: podSelector matches no pod template")

    targets = {(d["kind"], d["metadata"]["name"]) for d in workloads}
    auths = {d["metadata"]["name"] for d in by_kind(everything, "TriggerAuthentication")}
    for scaler in by_kind(docs, "ScaledObject") + by_kind(docs, "HorizontalPodAutoscaler"):
        target = scaler["spec"]["scaleTargetRef"]
        if (target.get("kind", "Deployment"), target["name"]) not in targets:
            problems.append(f"{ref(scaler)}: scale target {target.get('kind')}/{target['name']} does not exist")
        for trigger in scaler["spec"].get("triggers", []):
            auth = trigger.get("authenticationRef", {}).get("name")
            if auth and auth not in auths:
                problems.append(f"{ref(scaler)}: TriggerAuthentication {auth} does not exist")
    for auth in by_kind(docs, "TriggerAuthentication"):
        for item in auth["spec"].get("configMapTargetRef", []):
            cm = named(everything, "ConfigMap", item["name"])
            if cm is None or item["key"] not in cm.get("data", {}):
                problems.append(f"{ref(auth)}: ConfigMap {item['name']} has no key {item['key']}")
        for item in auth["spec"].get("secretTargetRef", []):
            known = EXTERNAL_SECRETS.get(item["name"], (set(),))[0]
            if item["name"] not in secrets and item["key"] not in known:
                problems.append(f"{ref(auth)}: Secret {item['name']} key {item['key']} is not known")
    return problems


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
    """The CLIPPINGS_* variables of each service container are exactly the settings of
    services/config.py (less UNSET_SETTINGS), and the services accept their values."""
    from clippings.services import config

    everything = list(docs) + list(shared)
    problems = []
    for doc, container, service in service_containers(docs):
        where = f"{ref(doc)} container {container['name']}"
        settings_cls = getattr(config, SERVICE_SETTINGS[service])
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
        spec = pod_spec(doc)
        if spec is None:
            continue
        where = ref(doc)
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

    for doc, container, service in service_containers(docs):
        where = f"{ref(doc)} container {container['name']}"
        env = container_env(container, everything)
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
        if service == "linker":
            if doc["kind"] != "StatefulSet" or not doc["spec"].get("volumeClaimTemplates"):
                problems.append(f"{where}: the linker must be a StatefulSet with a volume claim for its snapshots")
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            if env.get("CLIPPINGS_SNAPSHOT_DIR") not in mounts:
                problems.append(f"{where}: CLIPPINGS_SNAPSHOT_DIR {env.get('CLIPPINGS_SNAPSHOT_DIR')} is not a mounted volume")
            topic = env.get("CLIPPINGS_TOPIC_EMBEDDED")
            if doc["spec"].get("replicas", 1) > partitions.get(topic, 0):
                problems.append(f"{where}: {doc['spec'].get('replicas')} replicas but {partitions.get(topic)} partitions of {topic}")
        if service == "embedder":
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
                    meta = trigger["metadata"]
                    if meta.get("consumerGroup") != env.get("CLIPPINGS_GROUP_ID"):
                        problems.append(f"{ref(scaler)}: consumerGroup {meta.get('consumerGroup')} is not CLIPPINGS_GROUP_ID {env.get('CLIPPINGS_GROUP_ID')}")
                    if meta.get("topic") != raw:
                        problems.append(f"{ref(scaler)}: topic {meta.get('topic')} is not CLIPPINGS_TOPIC_RAW {raw}")
                    host, _, port = meta.get("bootstrapServers", "").partition(":")
                    want_host, _, want_port = env.get("CLIPPINGS_KAFKA_BOOTSTRAP_SERVERS", "").partition(":")
                    if host.split(".")[0] != want_host.split(".")[0] or port != want_port:
                        problems.append(f"{ref(scaler)}: bootstrapServers {meta.get('bootstrapServers')} is not the services' {want_host}:{want_port}")
                    if f".{doc['metadata'].get('namespace')}.svc" not in host:
                        problems.append(f"{ref(scaler)}: KEDA runs elsewhere: bootstrapServers needs <service>.{doc['metadata'].get('namespace')}.svc")
                for metric in scaler["spec"].get("metrics", []):
                    topic = metric.get("external", {}).get("metric", {}).get("selector", {}).get("matchLabels", {}).get("topic")
                    if metric["type"] == "External" and topic != raw:
                        problems.append(f"{ref(scaler)}: external metric selects topic {topic}, not {raw}")
    return problems


# ------------------------------------------------------------------------------ checkov, hadolint


@dataclass(frozen=True)
class Finding:
    check_id: str
    file: str
    resource: str
    name: str


def checkov_findings(directory: Path) -> list[Finding]:
    """Every failed checkov Kubernetes check on the YAML files under a directory."""
    proc = subprocess.run(
        [find_tool("checkov"), "--directory", str(directory), "--framework", "kubernetes",
         "--output", "json", "--quiet", "--compact", "--skip-download"],
        capture_output=True, text=True, timeout=600,
    )
    if proc.returncode not in (0, 1) or not proc.stdout.strip():
        raise RuntimeError(f"checkov failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    findings = []
    for report in reports:
        for failed in report.get("results", {}).get("failed_checks", []):
            # file_path is relative to the scanned directory ("/sub/cpu.yaml").
            findings.append(Finding(failed["check_id"], failed["file_path"].lstrip("/"), failed["resource"], failed["check_name"]))
    return findings


def checkov_problems(findings: Iterable[Finding]) -> list[str]:
    return sorted({f"{f.file}: {f.resource}: {f.check_id} {f.name}" for f in findings if f.check_id not in CHECKOV_ACCEPTED})


def hadolint_problems(dockerfile: Path) -> list[str]:
    cmd = [find_tool("hadolint"), "--format", "json", "--failure-threshold", "style"]
    for rule in HADOLINT_IGNORED:
        cmd += ["--ignore", rule]
    proc = subprocess.run(cmd + [str(dockerfile)], capture_output=True, text=True, timeout=60)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"hadolint failed ({proc.returncode}): {proc.stderr.strip()}")
    return [f"{dockerfile.name}:{f['line']}: {f['code']} {f['level']}: {f['message']}" for f in json.loads(proc.stdout or "[]")]


# ------------------------------------------------------------------------------ alert rules


def alert_rules(platform_docs: Iterable[dict]) -> dict:
    """The Prometheus rule file held by the PrometheusRule object(s)."""
    groups = [g for d in by_kind(platform_docs, "PrometheusRule") for g in d["spec"]["groups"]]
    return {"groups": groups}


def promtool_problems(rules: dict, tests: Path = ALERT_TESTS) -> list[str]:
    """`promtool check rules` on the rule file, then `promtool test rules` on its unit tests."""
    promtool = find_tool("promtool")
    with tempfile.TemporaryDirectory(prefix="clippings-rules-") as tmp:
        (Path(tmp) / "rules.yaml").write_text(yaml.safe_dump(rules, sort_keys=False), encoding="utf-8")
        shutil.copy(tests, Path(tmp) / "alerts-test.yaml")
        problems = []
        for command in (["check", "rules", "rules.yaml"], ["test", "rules", "alerts-test.yaml"]):
            proc = subprocess.run([promtool, *command], cwd=tmp, capture_output=True, text=True, timeout=120)
            if proc.returncode != 0:
                problems.append(f"promtool {' '.join(command)}: {(proc.stdout + proc.stderr).strip()}")
        return problems


def alert_runbook_problems(rules: dict, runbook: Path = REPO / "docs" / "operations.md") -> list[str]:
    """Each alert names its runbook section, and docs/operations.md has that section."""
    text = runbook.read_text(encoding="utf-8") if runbook.exists() else ""
    headings = {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", text, re.M)}
    problems = []
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            anchor = rule["alert"].lower()
            if rule.get("annotations", {}).get("runbook") != f"docs/operations.md#{anchor}":
                problems.append(f"{rule['alert']}: annotation runbook must be docs/operations.md#{anchor}")
            if anchor not in headings:
                problems.append(f"{rule['alert']}: docs/operations.md has no section '{rule['alert']}'")
    return problems


# ------------------------------------------------------------------------------ dashboard and metric names


def promql_expressions(rules: dict, dashboard: dict) -> list[tuple[str, str]]:
    """(where, PromQL) for every alert or record rule and every dashboard query."""
    exprs = [(f"rule {r.get('alert') or r.get('record')}", str(r["expr"])) for g in rules["groups"] for r in g["rules"]]
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            if target.get("expr"):
                exprs.append((f"panel {panel.get('title')!r} {target.get('refId')}", target["expr"]))
    for var in dashboard.get("templating", {}).get("list", []):
        query = var.get("query")
        text = query.get("query") if isinstance(query, dict) else query
        if var.get("type") == "query" and text:
            # label_values(SELECTOR, label): the selector is PromQL.
            match = re.fullmatch(r"\s*label_values\((.*),\s*\w+\)\s*", text)
            exprs.append((f"variable {var['name']}", match.group(1) if match else text))
    return exprs


def _panels(dashboard: dict) -> Iterator[dict]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def _parse(expr: str):
    import promql_parser

    # Grafana's placeholders ($__rate_interval, $namespace, ${datasource}) are not PromQL.
    return promql_parser.parse(_PLACEHOLDER.sub(lambda m: "5m" if m.group(0).startswith("$__") else "x", expr))


def metric_names(expr: str) -> set[str]:
    import promql_parser

    names: set[str] = set()

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            else:
                names.update(m.value for m in node.matchers.matchers if m.name == "__name__")
        return True

    promql_parser.walk(_parse(expr), visit)
    return names


def dashboard_problems(dashboard: dict) -> list[str]:
    problems = []
    for key in ("uid", "title", "panels", "schemaVersion"):
        if key not in dashboard:
            problems.append(f"dashboard: no {key}")
    ids = [p.get("id") for p in _panels(dashboard)]
    if len(ids) != len(set(ids)) or None in ids:
        problems.append(f"dashboard: panel ids must be present and unique: {ids}")
    variables = {v["name"] for v in dashboard.get("templating", {}).get("list", [])}
    for panel in _panels(dashboard):
        where = f"panel {panel.get('title')!r}"
        grid = panel.get("gridPos", {})
        if not all(isinstance(grid.get(k), int) for k in ("h", "w", "x", "y")) or grid.get("x", 0) + grid.get("w", 0) > 24:
            problems.append(f"{where}: gridPos {grid} is not a valid 24-column position")
        if panel.get("type") == "row":
            continue
        if not panel.get("targets"):
            problems.append(f"{where}: no queries")
        for target in panel.get("targets", []):
            for name in re.findall(r"\$\{?(\w+)\}?", json.dumps(target)):
                if not name.startswith("__") and name not in variables:
                    problems.append(f"{where}: uses ${name}, which is no dashboard variable")
    for where, expr in promql_expressions({"groups": []}, dashboard):
        try:
            _parse(expr)
        except ValueError as exc:
            problems.append(f"{where}: invalid PromQL {expr!r}: {exc}")
    return problems


def used_metrics(rules: dict, dashboard: dict) -> dict[str, list[str]]:
    """Metric name -> where the alerts or the dashboard use it."""
    used: dict[str, list[str]] = {}
    for where, expr in promql_expressions(rules, dashboard):
        for name in metric_names(expr):
            used.setdefault(name, []).append(where)
    return used


def exported_metrics(exposition: str) -> set[str]:
    """Every series name a /metrics page declares: a labelled metric is declared (HELP/TYPE)
    before its first sample, and each type has its own suffixes."""
    from prometheus_client.parser import text_string_to_metric_families

    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
        "summary": ("", "_sum", "_count", "_created"),
        "info": ("_info",),
    }
    names = set()
    for family in text_string_to_metric_families(exposition):
        names.update(family.name + s for s in suffixes.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def unknown_metric_problems(used: dict[str, list[str]], exported: set[str]) -> list[str]:
    return [
        f"{name} (used by {', '.join(sorted(set(where)))}) is exported by no service and is not in EXTERNAL_METRICS"
        for name, where in sorted(used.items())
        if name not in exported and name not in EXTERNAL_METRICS
    ]


def declared_service_metrics() -> str:
    """The /metrics page of a fresh service, from the class the services use (no process)."""
    from prometheus_client import generate_latest

    from clippings.services.ops.metrics import ServiceMetrics

    return generate_latest(ServiceMetrics("embedder").registry).decode()


# ------------------------------------------------------------------------------ command line


def main(argv: list[str] | None = None) -> int:
    groups = ("render", "schema", "refs", "settings", "policy", "checkov", "hadolint", "rules", "dashboard", "metrics")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=groups, action="append", help="run only these checks (repeatable)")
    parser.add_argument("--keep", type=Path, help="also write the rendered manifests to this folder")
    args = parser.parse_args(argv)
    wanted = set(args.only or groups)

    rendered = render_all()
    platform = rendered["platform"]
    results: dict[str, list[str]] = {"render": []}
    if "schema" in wanted:
        results["schema"] = [f"{name}: {p}" for name, docs in rendered.items() for p in schema_problems(docs)]
    if "refs" in wanted:
        results["refs"] = [f"{name}: {p}" for name in STACKS for p in reference_problems(rendered[name], platform)]
        results["refs"] += [f"platform: {p}" for p in reference_problems(platform, rendered["cpu"])]
        results["refs"] += [f"{name}: {p}" for name in ("kafka", "redis") for p in reference_problems(rendered[name])]
        results["refs"] += [f"smoke: {p}" for p in reference_problems(rendered["smoke"], rendered["cpu"])]
    if "settings" in wanted:
        results["settings"] = [f"{name}: {p}" for name in STACKS for p in settings_problems(rendered[name])]
        results["settings"] += [f"smoke: {p}" for p in settings_problems(rendered["smoke"], rendered["cpu"])]
    if "policy" in wanted:
        results["policy"] = [f"{name}: {p}" for name in STACKS for p in policy_problems(rendered[name], platform)]
        results["policy"] += [f"{name}: {p}" for name in ("redis", "smoke") for p in policy_problems(rendered[name])]
    if "checkov" in wanted:
        with tempfile.TemporaryDirectory(prefix="clippings-checkov-") as tmp:
            write_rendered(rendered, Path(tmp))
            results["checkov"] = checkov_problems(checkov_findings(Path(tmp)))
    if "hadolint" in wanted:
        results["hadolint"] = [p for dockerfile in DOCKERFILES for p in hadolint_problems(dockerfile)]
    rules = alert_rules(platform)
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    if "rules" in wanted:
        results["rules"] = promtool_problems(rules) + alert_runbook_problems(rules)
    if "dashboard" in wanted:
        results["dashboard"] = dashboard_problems(dashboard)
    if "metrics" in wanted:
        results["metrics"] = unknown_metric_problems(used_metrics(rules, dashboard), exported_metrics(declared_service_metrics()))
    if args.keep:
        write_rendered(rendered, args.keep)

    failed = 0
    for group, problems in results.items():
        if group not in wanted:
            continue
        print(f"{group}: {'ok' if not problems else f'{len(problems)} problem(s)'}")
        for problem in problems:
            print(f"  {problem}")
        failed += len(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
