"""What every check shares: the deploy/ paths and the facts they check against, the tools,
the rendered manifests, and lookups over them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterable

import yaml

DEPLOY = Path(__file__).resolve().parent.parent
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
    "clippings-review": ({"password"}, "the Strimzi User Operator, for KafkaUser clippings-review"),
    "clippings-review-app": ({"database-url", "password", "secret-key"}, "the operator, with the command in docs/deploy.md"),
    "clippings-review-app-green": ({"database-url", "password", "secret-key"},
                                   "the operator, for the green stack's review page (docs/deploy.md)"),
}

# Settings of services/config.py that the manifests leave unset on purpose.
UNSET_SETTINGS = {
    "kafka_ssl_certificate_location": "no mutual TLS: the Strimzi listener authenticates users with SCRAM-SHA-512",
    "kafka_ssl_key_location": "no mutual TLS (see kafka_ssl_certificate_location)",
    "kafka_ssl_key_password": "no mutual TLS (see kafka_ssl_certificate_location)",
    "threshold": "unset means the threshold tuned into the model's manifest",
    "model_variant": "unset means the variant the model's manifest serves, the graph its decision was tuned on",
    "redis_username": "the in-cluster Redis has only its default user (deploy/k8s/redis)",
    "redis_ssl_ca_certs": "the in-cluster Redis speaks plain TCP inside the namespace; set with a rediss:// URL",
    "redis_ssl_certfile": "no client certificate for Redis (see redis_ssl_ca_certs)",
    "redis_ssl_keyfile": "no client certificate for Redis (see redis_ssl_ca_certs)",
}
# A container's first argument (`clippings COMMAND`) -> the settings class it loads, imported
# when a check needs it (the review application's needs its `review` extra installed).
SERVICE_SETTINGS = {
    "embedder": "clippings.services.config.EmbedderSettings",
    "linker": "clippings.services.config.LinkerSettings",
    "review": "clippings.review.settings.ReviewSettings",
}
# Settings that hold a secret: wherever a service container sets one, it comes from a Secret
# (secretKeyRef), never from a ConfigMap or a literal value.
SECRET_SETTINGS = (
    "CLIPPINGS_KAFKA_SASL_PASSWORD", "CLIPPINGS_KAFKA_SSL_KEY_PASSWORD", "CLIPPINGS_REDIS_PASSWORD",
    "CLIPPINGS_REVIEW_DATABASE_URL", "CLIPPINGS_REVIEW_PASSWORD", "CLIPPINGS_REVIEW_SECRET_KEY",
)
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
