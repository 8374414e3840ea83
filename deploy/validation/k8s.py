"""Kubernetes checks: every rendered object against its schema, every reference resolved."""

from __future__ import annotations

import json
from typing import Iterable, Iterator

from validation.common import EXTERNAL_SECRETS, KUBERNETES_VERSIONS, SCHEMAS, by_kind, named, pod_spec, ref

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
    names = _Names(everything)
    workloads = [d for d in docs if pod_spec(d) is not None]
    problems = []
    for doc in workloads:
        problems += _workload_problems(doc, names)
    problems += _selector_problems(docs, everything, workloads)
    problems += _scaler_problems(docs, everything, workloads, names)
    return problems


class _Names:
    """The names of what exists, by kind, in the stack and the objects it shares."""

    def __init__(self, everything: list[dict]):
        self.configmaps = {d["metadata"]["name"] for d in by_kind(everything, "ConfigMap")}
        self.secrets = {d["metadata"]["name"] for d in by_kind(everything, "Secret")}
        self.accounts = {d["metadata"]["name"] for d in by_kind(everything, "ServiceAccount")} | {"default"}
        self.services = {d["metadata"]["name"]: d for d in by_kind(everything, "Service")}


def _workload_problems(doc: dict, names: _Names) -> list[str]:
    where, spec, problems = ref(doc), pod_spec(doc), []
    if spec.get("serviceAccountName", "default") not in names.accounts:
        problems.append(f"{where}: ServiceAccount {spec['serviceAccountName']} does not exist")
    if doc["kind"] == "StatefulSet" and doc["spec"].get("serviceName") not in names.services:
        problems.append(f"{where}: serviceName {doc['spec'].get('serviceName')} is no Service")
    selector = doc["spec"].get("selector")
    if selector and not _labels_match(selector, doc["spec"]["template"]["metadata"].get("labels", {})):
        problems.append(f"{where}: selector does not match its own pod template")
    volume_names = {v["name"] for v in spec.get("volumes", [])}
    volume_names |= {t["metadata"]["name"] for t in doc["spec"].get("volumeClaimTemplates", [])}
    for volume in spec.get("volumes", []):
        cm = volume.get("configMap")
        if cm and cm["name"] not in names.configmaps:
            problems.append(f"{where}: volume {volume['name']}: ConfigMap {cm['name']} does not exist")
    for name, key in _secret_refs(spec):
        if name in names.secrets:
            continue
        if name not in EXTERNAL_SECRETS:
            problems.append(f"{where}: Secret {name} is neither rendered nor a known external Secret")
        elif key is not None and key not in EXTERNAL_SECRETS[name][0]:
            problems.append(f"{where}: Secret {name} has no key {key} (made by {EXTERNAL_SECRETS[name][1]})")
    for container in spec["containers"]:
        problems += _container_problems(f"{where} container {container['name']}", container, names, volume_names)
    return problems


def _container_problems(cwhere: str, container: dict, names: _Names, volume_names: set[str]) -> list[str]:
    problems = []
    for source in container.get("envFrom", []):
        cm = source.get("configMapRef")
        if cm and cm["name"] not in names.configmaps:
            problems.append(f"{cwhere}: envFrom ConfigMap {cm['name']} does not exist")
    for env in container.get("env", []):
        cm = env.get("valueFrom", {}).get("configMapKeyRef")
        if cm and cm["name"] not in names.configmaps:
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
    return problems


def _selector_problems(docs: list[dict], everything: list[dict], workloads: list[dict]) -> list[str]:
    problems = []
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
    return problems


def _scaler_problems(docs: list[dict], everything: list[dict], workloads: list[dict], names: _Names) -> list[str]:
    problems = []
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
            if item["name"] not in names.secrets and item["key"] not in known:
                problems.append(f"{ref(auth)}: Secret {item['name']} key {item['key']} is not known")
    return problems
