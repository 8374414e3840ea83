"""The deployment artifacts, validated offline: every kustomization under deploy/k8s rendered
with a real kustomize (kubectl's), strict Kubernetes schemas and the CRD schemas in
deploy/schemas, references, the services' settings, policy, checkov, hadolint, promtool and
the dashboard. Each check is also run on a broken copy to show that it fails.

The checks themselves live in deploy/validate.py (`python deploy/validate.py` runs them by
hand); tools: docs/operations.md, "Validation tools". The metric names are also checked
against running services in tests/test_deploy_metrics.py.
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path

import pytest
import yaml
from deploy_loader import load_validate

REPO = Path(__file__).resolve().parent.parent


V = load_validate()


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict]]:
    """Every kustomization, rendered once for the session."""
    return V.render_all()


@pytest.fixture
def fresh(rendered):
    """A deep copy to break: rendered(name) -> its objects."""
    return lambda name: copy.deepcopy(rendered[name])


def obj(docs: list[dict], kind: str, name: str) -> dict:
    found = V.named(docs, kind, name)
    assert found is not None, f"{kind}/{name} not rendered"
    return found


def container(docs: list[dict], kind: str, name: str) -> dict:
    return V.pod_spec(obj(docs, kind, name))["containers"][0]


@pytest.fixture(scope="session")
def rules(rendered) -> dict:
    return V.alert_rules(rendered["platform"])


@pytest.fixture(scope="session")
def dashboard() -> dict:
    return json.loads(V.DASHBOARD.read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------ rendering


def test_every_kustomization_renders_what_it_promises(rendered):
    kinds = {name: sorted({d["kind"] for d in docs}) for name, docs in rendered.items()}
    for stack in V.STACKS:
        assert {"Deployment", "StatefulSet", "Service", "PodDisruptionBudget", "ConfigMap", "KafkaTopic"} <= set(kinds[stack])
        suffix = "-green" if stack == "gpu-green" else ""
        for kind in ("Deployment", "Service", "ConfigMap", "ServiceAccount"):
            name = f"clippings-review{'-config' if kind == 'ConfigMap' else ''}{suffix}"
            obj(rendered[stack], kind, name)  # the review page comes with every stack
    assert "ScaledObject" in kinds["cpu"] and "HorizontalPodAutoscaler" not in kinds["cpu"]
    assert "HorizontalPodAutoscaler" in kinds["cpu-hpa"] and "ScaledObject" not in kinds["cpu-hpa"]
    assert "TriggerAuthentication" not in kinds["cpu-hpa"]
    assert {"Namespace", "KafkaTopic", "KafkaUser", "ServiceMonitor", "PrometheusRule"} <= set(kinds["platform"])
    assert kinds["kafka"] == ["Kafka", "KafkaNodePool"]
    assert {d["metadata"].get("namespace") for name, docs in rendered.items() for d in docs if d["kind"] != "Namespace"} == {"clippings"}
    topics = {d["spec"]["topicName"] for name in ("platform", "cpu") for d in V.by_kind(rendered[name], "KafkaTopic")}
    assert topics == {"clippings.raw", "clippings.embedded", "clippings.links", "clippings.dlq", "clippings.corrections"}


def test_images_are_tagged_and_the_gpu_overlay_runs_the_gpu_image_on_gpus(rendered):
    for name in V.STACKS + ("smoke",):
        for doc in rendered[name]:
            for c in (V.pod_spec(doc) or {}).get("containers", []):
                assert re.fullmatch(r"[\w./-]+:[\w.-]+", c["image"]), f"{name} {V.ref(doc)}: untagged image {c['image']}"
    for name in ("gpu", "gpu-green"):
        suffix = "-green" if name == "gpu-green" else ""
        embedder = obj(rendered[name], "Deployment", f"clippings-embedder{suffix}")
        c = V.pod_spec(embedder)["containers"][0]
        assert c["image"].startswith("clippings-gpu:")
        assert c["resources"]["limits"]["nvidia.com/gpu"] == c["resources"]["requests"]["nvidia.com/gpu"] == "1"
        assert any(t["key"] == "nvidia.com/gpu" for t in V.pod_spec(embedder)["tolerations"])
        assert json.loads(obj(rendered[name], "ConfigMap", f"clippings-embedder-config{suffix}")["data"]["CLIPPINGS_ONNX_PROVIDERS"]) == ["CUDAExecutionProvider"]
        linker = container(rendered[name], "StatefulSet", f"clippings-linker{suffix}")
        assert linker["image"].startswith("clippings:") and "nvidia.com/gpu" not in linker["resources"]["limits"]
    for name in ("cpu", "cpu-hpa"):
        assert "nvidia.com/gpu" not in container(rendered[name], "Deployment", "clippings-embedder")["resources"]["limits"]


def test_green_stack_shares_nothing_that_holds_vectors_or_decisions(rendered):
    main, green = rendered["gpu"], rendered["gpu-green"]
    assert all(d["metadata"]["name"].endswith("-green") for d in green)
    assert {d["metadata"]["name"] for d in green} & {d["metadata"]["name"] for d in rendered["platform"]} == set()

    def env(docs, kind, name):
        return V.container_env(container(docs, kind, name), docs)

    for kind, name in (("Deployment", "clippings-embedder"), ("StatefulSet", "clippings-linker")):
        blue_env, green_env = env(main, kind, name), env(green, kind, name + "-green")
        for key in ("CLIPPINGS_GROUP_ID", "CLIPPINGS_TOPIC_EMBEDDED", "CLIPPINGS_TOPIC_LINKS", "CLIPPINGS_TOPIC_CORRECTIONS"):
            assert blue_env[key] != green_env[key], key
        for key in ("CLIPPINGS_TOPIC_RAW", "CLIPPINGS_TOPIC_DLQ", "CLIPPINGS_KAFKA_BOOTSTRAP_SERVERS"):
            assert blue_env[key] == green_env[key], key
    assert env(main, "StatefulSet", "clippings-linker")["CLIPPINGS_REDIS_PREFIX"] != env(green, "StatefulSet", "clippings-linker-green")["CLIPPINGS_REDIS_PREFIX"]
    for doc in green:
        selector = (doc.get("spec") or {}).get("selector")
        if doc["kind"] in ("Deployment", "StatefulSet", "PodDisruptionBudget"):
            assert selector["matchLabels"]["app.kubernetes.io/instance"] == "green", V.ref(doc)
    green_topics = {d["spec"]["topicName"] for d in V.by_kind(green, "KafkaTopic")}
    assert green_topics == {"clippings.embedded.green", "clippings.links.green", "clippings.corrections.green"}


# ------------------------------------------------------------------------------ the review page


def _review(docs: list[dict], suffix: str = "") -> tuple[dict, dict, dict[str, str]]:
    """(Deployment, its container, the container's environment) of a stack's review page."""
    deployment = obj(docs, "Deployment", f"clippings-review{suffix}")
    c = V.pod_spec(deployment)["containers"][0]
    return deployment, c, V.container_env(c, docs)


def _review_env(workload: dict, name: str) -> dict:
    """One env entry of a workload's first container, to break in place."""
    return next(e for e in V.pod_spec(workload)["containers"][0]["env"] if e["name"] == name)


def _acl_allows(user: dict, kind: str, name: str, operation: str) -> bool:
    for acl in user["spec"]["authorization"]["acls"]:
        resource = acl["resource"]
        if resource["type"] != kind or operation not in acl["operations"]:
            continue
        prefix = resource.get("patternType") == "prefix"
        if name == resource["name"] or (prefix and name.startswith(resource["name"])):
            return True
    return False


@pytest.mark.parametrize("name", V.STACKS)
def test_review_page_runs_in_every_stack_with_settings_it_loads(rendered, name, monkeypatch):
    from clippings.review.settings import ReviewSettings, load_review_settings
    from validation.policy import service_containers

    docs, suffix = rendered[name], "-green" if name.endswith("green") else ""
    deployment, c, env = _review(docs, suffix)
    assert [(V.ref(d), cmd) for d, _, cmd in service_containers(docs) if cmd == "review"] == [(V.ref(deployment), "review")]
    assert c["args"] == ["review"] and c["image"].startswith("clippings:")  # the CPU image, also in the GPU stacks
    for key in [k for k in os.environ if k.startswith("CLIPPINGS_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    s = load_review_settings()
    assert isinstance(s, ReviewSettings)
    assert (s.review_host, s.review_port, s.review_group_id) == ("0.0.0.0", 8400, f"clippings-review{suffix}")
    assert s.review_password.get_secret_value() == f"secret-clippings-review-app{suffix}-password"
    assert s.review_database_url.get_secret_value() == f"secret-clippings-review-app{suffix}-database-url"
    # It reads what its own stack's linker writes and shows that linker's Redis keys.
    linker = V.container_env(container(docs, "StatefulSet", f"clippings-linker{suffix}"), docs)
    for key in ("CLIPPINGS_TOPIC_RAW", "CLIPPINGS_TOPIC_LINKS", "CLIPPINGS_TOPIC_CORRECTIONS", "CLIPPINGS_REDIS_PREFIX",
                "CLIPPINGS_KAFKA_BOOTSTRAP_SERVERS"):
        assert env[key] == linker[key], key
    service = obj(docs, "Service", f"clippings-review{suffix}")
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(80, "http")]
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"http": 8400}


@pytest.mark.parametrize("name", ("cpu", "gpu-green"))
def test_review_kafka_user_allows_what_the_page_does(rendered, name):
    docs, suffix = rendered[name], "-green" if name.endswith("green") else ""
    env = _review(docs, suffix)[2]
    user = obj(rendered["platform"], "KafkaUser", env["CLIPPINGS_KAFKA_SASL_USERNAME"])
    assert env["CLIPPINGS_KAFKA_SASL_PASSWORD"] == f"secret-{user['metadata']['name']}-password"
    for topic in (env["CLIPPINGS_TOPIC_RAW"], env["CLIPPINGS_TOPIC_LINKS"]):
        assert _acl_allows(user, "topic", topic, "Read"), topic
    assert _acl_allows(user, "group", env["CLIPPINGS_REVIEW_GROUP_ID"], "Read")
    assert _acl_allows(user, "topic", env["CLIPPINGS_TOPIC_CORRECTIONS"], "Write")
    assert any(a["resource"]["type"] == "cluster" and "IdempotentWrite" in a["operations"]
               for a in user["spec"]["authorization"]["acls"])  # the corrections producer is idempotent
    assert not _acl_allows(user, "topic", env["CLIPPINGS_TOPIC_LINKS"], "Write")  # only the linker writes decisions


def test_green_review_page_keeps_its_decisions_apart(rendered):
    blue, green = _review(rendered["gpu"])[2], _review(rendered["gpu-green"], "-green")[2]
    for key in ("CLIPPINGS_REVIEW_GROUP_ID", "CLIPPINGS_TOPIC_LINKS", "CLIPPINGS_TOPIC_CORRECTIONS", "CLIPPINGS_REDIS_PREFIX",
                "CLIPPINGS_REVIEW_DATABASE_URL"):
        assert blue[key] != green[key], key
    for key in ("CLIPPINGS_TOPIC_RAW", "CLIPPINGS_KAFKA_BOOTSTRAP_SERVERS", "CLIPPINGS_KAFKA_SASL_USERNAME"):
        assert blue[key] == green[key], key


def test_network_policies_let_the_review_page_in_and_reach_redis(rendered):
    from validation.k8s import _labels_match

    for name in V.STACKS:
        deployment = _review(rendered[name], "-green" if name.endswith("green") else "")[0]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        ingress = [p for p in V.by_kind(rendered["platform"], "NetworkPolicy") if _labels_match(p["spec"]["podSelector"], labels)]
        assert [port["port"] for p in ingress for rule in p["spec"]["ingress"] for port in rule["ports"]] == ["http"]
        redis = obj(rendered["redis"], "NetworkPolicy", "clippings-redis-ingress")
        peers = [peer["podSelector"] for rule in redis["spec"]["ingress"] for peer in rule["from"]]
        assert any(_labels_match(peer, labels) for peer in peers), name


# ------------------------------------------------------------------------------ schemas


@pytest.mark.parametrize("name", list(V.KUSTOMIZATIONS))
def test_manifests_pass_strict_schema_validation(rendered, name):
    assert V.schema_problems(rendered[name]) == []


def _set(path: str, value):
    """A mutation: set a dotted path (list indexes as numbers) in one object."""
    def mutate(doc):
        *parents, last = path.split(".")
        node = doc
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node[int(last) if last.isdigit() else last] = value
    return mutate


SCHEMA_BREAKS = {
    "port as text": ("cpu", "Deployment", "clippings-embedder", _set("spec.template.spec.containers.0.ports.0.containerPort", "9101x")),
    "misspelt field": ("cpu", "StatefulSet", "clippings-linker", _set("spec.replicaz", 3)),
    "limits not a map": ("gpu", "Deployment", "clippings-embedder", _set("spec.template.spec.containers.0.resources.limits", "16Gi")),
    "KEDA metadata not a string": ("cpu", "ScaledObject", "clippings-embedder", _set("spec.triggers.0.metadata.lagThreshold", 2000)),
    "KEDA unknown field": ("cpu", "ScaledObject", "clippings-embedder", _set("spec.maxReplicas", 12)),
    "topic without partitions": ("platform", "KafkaTopic", "clippings-raw", _set("spec.partitions", 0)),
    "ACL operation misspelt": ("platform", "KafkaUser", "clippings-linker", _set("spec.authorization.acls.0.operations", ["Raed"])),
    "scrape interval in words": ("platform", "ServiceMonitor", "clippings", _set("spec.endpoints.0.interval", "15 seconds")),
    "rule duration in words": ("platform", "PrometheusRule", "clippings", _set("spec.groups.0.rules.0.for", "a while")),
    "listener type unknown": ("kafka", "Kafka", "clippings-kafka", _set("spec.kafka.listeners.0.type", "public")),
}


@pytest.mark.parametrize("case", list(SCHEMA_BREAKS))
def test_schema_validation_fails_on_a_broken_copy(fresh, case):
    name, kind, obj_name, mutate = SCHEMA_BREAKS[case]
    docs = fresh(name)
    mutate(obj(docs, kind, obj_name))
    problems = V.schema_problems(docs)
    assert problems and all(p.startswith(f"{kind}/{obj_name}:") for p in problems), problems


def test_an_object_of_an_unknown_kind_fails(fresh):
    docs = fresh("platform")
    docs.append({"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledJob", "metadata": {"name": "x"}, "spec": {}})
    assert V.schema_problems(docs) == ["ScaledJob/x: no schema for keda.sh/v1alpha1 ScaledJob (Kubernetes 1.30.0 or deploy/schemas)"]


def test_vendored_crd_schemas_name_their_source():
    schemas = sorted(V.SCHEMAS.glob("*.json"))
    assert len(schemas) == 8
    readme = (V.SCHEMAS / "README.md").read_text(encoding="utf-8")
    for path in schemas:
        schema = json.loads(path.read_text(encoding="utf-8"))
        assert re.search(r"(strimzi|kedacore|prometheus-operator)/", schema["description"]), path.name
        assert path.name in readme


# ------------------------------------------------------------------------------ references, settings, policy


@pytest.mark.parametrize("name", V.STACKS)
def test_stack_references_resolve(rendered, name):
    assert V.reference_problems(rendered[name], rendered["platform"]) == []


def test_platform_and_extras_references_resolve(rendered):
    assert V.reference_problems(rendered["platform"], rendered["cpu"]) == []
    assert V.reference_problems(rendered["smoke"], rendered["cpu"]) == []
    assert V.reference_problems(rendered["redis"]) == []


REFERENCE_BREAKS = {
    "ConfigMap renamed": (("Deployment", "clippings-embedder"), _set("spec.template.spec.containers.0.envFrom.0.configMapRef.name", "clippings-kafka"), "envFrom ConfigMap clippings-kafka does not exist"),
    "Secret key misspelt": (("Deployment", "clippings-embedder"), _set("spec.template.spec.containers.0.env.0.valueFrom.secretKeyRef.key", "passwd"), "has no key passwd"),
    "probe on an unnamed port": (("StatefulSet", "clippings-linker"), _set("spec.template.spec.containers.0.readinessProbe.httpGet.port", "http"), "port http is not a named container port"),
    "PDB selects nothing": (("PodDisruptionBudget", "clippings-linker"), lambda d: d["spec"]["selector"]["matchLabels"].update({"app.kubernetes.io/name": "nobody"}), "matches no workload"),
    "scale target missing": (("ScaledObject", "clippings-embedder"), _set("spec.scaleTargetRef.name", "embedder"), "scale target Deployment/embedder does not exist"),
    "review Secret key misspelt": (("Deployment", "clippings-review"), lambda d: _review_env(d, "CLIPPINGS_REVIEW_DATABASE_URL")["valueFrom"]["secretKeyRef"].update(key="database_url"), "Secret clippings-review-app has no key database_url"),
    "review Secret unknown": (("Deployment", "clippings-review"), lambda d: _review_env(d, "CLIPPINGS_REVIEW_PASSWORD")["valueFrom"]["secretKeyRef"].update(name="review-secrets"), "Secret review-secrets is neither rendered nor a known external Secret"),
}


@pytest.mark.parametrize("case", list(REFERENCE_BREAKS))
def test_reference_check_fails_on_a_broken_copy(fresh, rendered, case):
    (kind, name), mutate, expected = REFERENCE_BREAKS[case]
    docs = fresh("cpu")
    mutate(obj(docs, kind, name))
    problems = V.reference_problems(docs, rendered["platform"])
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize("name", V.STACKS)
def test_configmaps_and_secrets_set_exactly_the_services_settings(rendered, name):
    assert V.settings_problems(rendered[name]) == []


def test_smoke_job_settings_load(rendered):
    assert V.settings_problems(rendered["smoke"], rendered["cpu"]) == []


def test_unset_settings_are_real_settings():
    from clippings.services import config

    fields = set(config.EmbedderSettings.model_fields) | set(config.LinkerSettings.model_fields)
    assert set(V.UNSET_SETTINGS) <= fields


SETTINGS_BREAKS = {
    "misspelt variable": ("clippings-embedder-config", "CLIPPINGS_BATCH_MAX_EVENT", "64", "CLIPPINGS_BATCH_MAX_EVENT is no setting"),
    "provider list not JSON": ("clippings-embedder-config", "CLIPPINGS_ONNX_PROVIDERS", "CUDAExecutionProvider", "would refuse its settings"),
    "unknown protocol": ("clippings-kafka-config", "CLIPPINGS_KAFKA_SECURITY_PROTOCOL", "SASL", "would refuse its settings"),
    "out of range": ("clippings-linker-config", "CLIPPINGS_KNN_K", "0", "would refuse its settings"),
    "left-unset setting set": ("clippings-linker-config", "CLIPPINGS_THRESHOLD", "0.9", "listed in UNSET_SETTINGS"),
    "review variable misspelt": ("clippings-review-config", "CLIPPINGS_REVIEW_THREAD", "4", "CLIPPINGS_REVIEW_THREAD is no setting of ReviewSettings"),
    "review out of range": ("clippings-review-config", "CLIPPINGS_REVIEW_THREADS", "0", "would refuse its settings"),
    "service setting given to review": ("clippings-review-config", "CLIPPINGS_METRICS_PORT", "9103", "CLIPPINGS_METRICS_PORT is no setting of ReviewSettings"),
}


@pytest.mark.parametrize("case", list(SETTINGS_BREAKS))
def test_settings_check_fails_on_a_broken_copy(fresh, case):
    configmap, key, value, expected = SETTINGS_BREAKS[case]
    docs = fresh("cpu")
    obj(docs, "ConfigMap", configmap)["data"][key] = value
    problems = V.settings_problems(docs)
    assert any(expected in p for p in problems), problems


def test_settings_check_fails_when_a_setting_is_dropped(fresh):
    docs = fresh("cpu")
    del obj(docs, "ConfigMap", "clippings-linker-config")["data"]["CLIPPINGS_SNAPSHOT_DIR"]
    assert "CLIPPINGS_SNAPSHOT_DIR is neither set nor listed in UNSET_SETTINGS" in " ".join(V.settings_problems(docs))
    docs = fresh("cpu")
    del obj(docs, "ConfigMap", "clippings-review-config")["data"]["CLIPPINGS_REVIEW_GROUP_ID"]
    assert "CLIPPINGS_REVIEW_GROUP_ID is neither set nor listed in UNSET_SETTINGS" in " ".join(V.settings_problems(docs))


@pytest.mark.parametrize("name", V.STACKS)
def test_stacks_meet_the_policy(rendered, name):
    assert V.policy_problems(rendered[name], rendered["platform"]) == []


def test_redis_and_smoke_meet_the_policy(rendered):
    assert V.policy_problems(rendered["redis"]) == []
    assert V.policy_problems(rendered["smoke"], rendered["cpu"]) == []


POLICY_BREAKS = {
    "grace under the commit interval": (("Deployment", "clippings-embedder"), _set("spec.template.spec.terminationGracePeriodSeconds", 1), "terminationGracePeriodSeconds 1"),
    "writable root": (("StatefulSet", "clippings-linker"), _set("spec.template.spec.containers.0.securityContext.readOnlyRootFilesystem", False), "readOnlyRootFilesystem must be true"),
    "privilege escalation": (("Deployment", "clippings-embedder"), _set("spec.template.spec.containers.0.securityContext.allowPrivilegeEscalation", True), "allowPrivilegeEscalation must be false"),
    "scaling past the partitions": (("ScaledObject", "clippings-embedder"), _set("spec.maxReplicaCount", 20), "max replicas 20, but clippings.raw has 12 partitions"),
    "KEDA watching another group": (("ScaledObject", "clippings-embedder"), _set("spec.triggers.0.metadata.consumerGroup", "clippings"), "consumerGroup clippings is not CLIPPINGS_GROUP_ID"),
    "more linkers than partitions": (("StatefulSet", "clippings-linker"), _set("spec.replicas", 13), "13 replicas but 12 partitions"),
    "probe on the wrong path": (("Deployment", "clippings-embedder"), _set("spec.template.spec.containers.0.readinessProbe.httpGet.path", "/healthz"), "readinessProbe must GET /readyz"),
    "corrections not co-partitioned": (("KafkaTopic", "clippings-corrections"), _set("spec.partitions", 6), "clippings.corrections has 6 partitions, clippings.embedded 12"),
    "replicas fixed under an autoscaler": (("Deployment", "clippings-embedder"), _set("spec.replicas", 2), "spec.replicas is owned by the autoscaler"),
    "review on loopback": (("ConfigMap", "clippings-review-config"), _set("data.CLIPPINGS_REVIEW_HOST", "127.0.0.1"), "CLIPPINGS_REVIEW_HOST is 127.0.0.1, must be 0.0.0.0"),
    "review password in a ConfigMap": (("ConfigMap", "clippings-review-config"), _set("data.CLIPPINGS_REVIEW_PASSWORD", "hunter2"), "CLIPPINGS_REVIEW_PASSWORD is a secret but ConfigMap clippings-review-config holds it"),
    "review database URL as a literal": (("Deployment", "clippings-review"), lambda d: _review_env(d, "CLIPPINGS_REVIEW_DATABASE_URL").update(value="postgresql+psycopg://u:p@db/review") or _review_env(d, "CLIPPINGS_REVIEW_DATABASE_URL").pop("valueFrom"), "CLIPPINGS_REVIEW_DATABASE_URL must come from a Secret"),
    "review session key dropped": (("Deployment", "clippings-review"), lambda d: V.pod_spec(d)["containers"][0]["env"].remove(_review_env(d, "CLIPPINGS_REVIEW_SECRET_KEY")), "CLIPPINGS_REVIEW_SECRET_KEY must come from a Secret"),
    "review probed behind the login": (("Deployment", "clippings-review"), _set("spec.template.spec.containers.0.livenessProbe.httpGet.path", "/queue"), "livenessProbe must GET /healthz on port http"),
    "review port not the setting": (("ConfigMap", "clippings-review-config"), _set("data.CLIPPINGS_REVIEW_PORT", "8401"), "port 'http' is 8400, CLIPPINGS_REVIEW_PORT is 8401"),
    "Kafka password as a literal": (("StatefulSet", "clippings-linker"), lambda d: _review_env(d, "CLIPPINGS_KAFKA_SASL_PASSWORD").update(value="x") or _review_env(d, "CLIPPINGS_KAFKA_SASL_PASSWORD").pop("valueFrom"), "CLIPPINGS_KAFKA_SASL_PASSWORD is a secret: it must come from a Secret"),
}


@pytest.mark.parametrize("case", list(POLICY_BREAKS))
def test_policy_check_fails_on_a_broken_copy(fresh, rendered, case):
    (kind, name), mutate, expected = POLICY_BREAKS[case]
    docs = fresh("cpu")
    mutate(obj(docs, kind, name))
    problems = V.policy_problems(docs, rendered["platform"])
    assert any(expected in p for p in problems), problems


def test_hpa_alternative_is_capped_at_the_partitions_too(fresh, rendered):
    docs = fresh("cpu-hpa")
    obj(docs, "HorizontalPodAutoscaler", "clippings-embedder")["spec"]["maxReplicas"] = 24
    assert any("max replicas 24" in p for p in V.policy_problems(docs, rendered["platform"]))


# ------------------------------------------------------------------------------ checkov and hadolint


@pytest.fixture(scope="session")
def checkov_findings(rendered, tmp_path_factory):
    """One checkov run over the real renders (real/) and a privileged, root copy (broken/)."""
    root = tmp_path_factory.mktemp("checkov")
    V.write_rendered(rendered, root / "real")
    broken = copy.deepcopy(rendered["cpu"])
    pod = V.pod_spec(obj(broken, "Deployment", "clippings-embedder"))
    pod["hostNetwork"] = True
    pod["containers"][0]["securityContext"].update(privileged=True, allowPrivilegeEscalation=True)
    V.write_rendered({"cpu": broken}, root / "broken")
    return V.checkov_findings(root)


def test_checkov_finds_nothing_unaccepted(checkov_findings):
    real = [f for f in checkov_findings if f.file.startswith("real/")]
    assert real, "checkov reported nothing at all: did it scan the renders?"  # the accepted ones at least
    assert V.checkov_problems(real) == []


def test_checkov_fails_on_a_privileged_copy(checkov_findings):
    broken = {f.check_id for f in checkov_findings if f.file.startswith("broken/")}
    assert {"CKV_K8S_16", "CKV_K8S_19", "CKV_K8S_20"} <= broken
    assert V.checkov_problems(f for f in checkov_findings if f.file.startswith("broken/"))


@pytest.mark.parametrize("dockerfile", V.DOCKERFILES, ids=lambda p: p.name)
def test_dockerfiles_pass_hadolint(dockerfile):
    assert V.hadolint_problems(dockerfile) == []


@pytest.mark.parametrize("dockerfile", V.DOCKERFILES, ids=lambda p: p.name)
def test_dockerfiles_build_in_stages_and_run_clippings_unprivileged(dockerfile):
    lines = [line.strip() for line in dockerfile.read_text(encoding="utf-8").splitlines()]
    stages = [line for line in lines if line.startswith("FROM ")]
    assert len(stages) >= 2 and stages[-1].endswith("AS runtime")
    runtime = lines[lines.index(stages[-1]):]
    users = [line for line in runtime if line.startswith("USER ")]
    assert users == ["USER 10001:10001"]
    assert 'ENTRYPOINT ["clippings"]' in runtime
    assert any("COPY --from=build /opt/clippings /opt/clippings" in line for line in runtime)


def test_the_cpu_image_brings_the_review_extra():
    """The review Deployment runs the CPU image (also in the GPU stacks): it needs Flask & co."""
    text = V.DOCKERFILES[0].read_text(encoding="utf-8")
    build = text[:text.index("AS runtime")]
    assert "['optional-dependencies']['review']" in build
    assert re.search(r"^EXPOSE .*\b8400\b", text, re.M)


def test_hadolint_fails_on_a_broken_copy(tmp_path):
    broken = tmp_path / "Dockerfile"
    broken.write_text(V.DOCKERFILES[0].read_text(encoding="utf-8").replace(
        "FROM ${PYTHON_IMAGE} AS runtime", "FROM python:latest AS runtime\nRUN apt-get install curl\nRUN cd /tmp"
    ), encoding="utf-8")
    codes = {p.split(": ")[1].split()[0] for p in V.hadolint_problems(broken)}
    assert {"DL3007", "DL3008", "DL3003"} <= codes


# ------------------------------------------------------------------------------ alert rules


def test_alert_rules_pass_promtool_check_and_unit_tests(rules):
    assert V.promtool_problems(rules) == []


def test_alerts_cover_the_failure_modes(rules):
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    assert {"ClippingsConsumerLagGrowing", "ClippingsDLQSpike", "ClippingsNoEvents", "ClippingsEndToEndLatencyHigh",
            "ClippingsLinkerNotReady", "ClippingsRestarting"} <= alerts
    tested = set(re.findall(r"alertname: (\w+)", V.ALERT_TESTS.read_text(encoding="utf-8")))
    assert alerts == tested, "every alert needs a promtool unit test"


def test_every_alert_has_a_runbook_section(rules):
    assert V.alert_runbook_problems(rules) == []


def _rule(rules: dict, alert: str) -> dict:
    return next(r for g in rules["groups"] for r in g["rules"] if r.get("alert") == alert)


def test_promtool_fails_on_a_bad_expression(rules):
    broken = copy.deepcopy(rules)
    _rule(broken, "ClippingsDLQSpike")["expr"] = "sum by (job) (rate(clippings_events_failed_total[5m])"
    problems = V.promtool_problems(broken)
    assert problems and "promtool check rules" in problems[0]


def test_promtool_unit_tests_fail_when_an_alert_changes_meaning(rules):
    broken = copy.deepcopy(rules)
    rule = _rule(broken, "ClippingsDLQSpike")
    rule["expr"] = rule["expr"].replace("> 0.05", "> 0.5")
    problems = V.promtool_problems(broken)
    assert len(problems) == 1 and "promtool test rules" in problems[0] and "ClippingsDLQSpike" in problems[0]


def test_runbook_check_fails_for_an_alert_without_a_section(rules):
    broken = copy.deepcopy(rules)
    _rule(broken, "ClippingsStalled")["alert"] = "ClippingsWedged"
    problems = V.alert_runbook_problems(broken)
    assert any("no section 'ClippingsWedged'" in p for p in problems)


# ------------------------------------------------------------------------------ dashboard and metric names


def test_dashboard_is_valid(dashboard):
    assert V.dashboard_problems(dashboard) == []


def test_dashboard_shows_what_operators_need(rules, dashboard):
    used = set(V.used_metrics({"groups": []}, dashboard))
    assert {
        "clippings_events_in_total", "clippings_events_out_total",            # throughput by stage
        "clippings_consumer_lag",                                              # lag
        "clippings_end_to_end_seconds_bucket", "clippings_stage_seconds_bucket",  # latency percentiles
        "clippings_batch_size_sum", "clippings_batch_size_count",             # batch size
        "clippings_events_failed_total",                                       # DLQ rate by reason
        "clippings_index_vectors",                                             # index size
        "clippings_duplicates_flagged_total", "clippings_entities_created_total",
        "clippings_model_info",                                                # model version
    } <= used
    reasons = [t["expr"] for p in V._panels(dashboard) for t in p.get("targets", []) if "clippings_events_failed_total" in t["expr"]]
    assert any("reason" in e for e in reasons)


def test_dashboard_and_alert_metrics_are_declared_by_the_services(rules, dashboard):
    used = V.used_metrics(rules, dashboard)
    assert V.unknown_metric_problems(used, V.exported_metrics(V.declared_service_metrics())) == []


def test_dashboard_check_fails_on_bad_promql(dashboard):
    broken = copy.deepcopy(dashboard)
    panel = next(p for p in broken["panels"] if p["type"] != "row")
    panel["targets"][0]["expr"] = "sum(rate(clippings_events_in_total[$__rate_interval])"
    assert any("invalid PromQL" in p for p in V.dashboard_problems(broken))


def test_dashboard_check_fails_on_an_unknown_variable(dashboard):
    broken = copy.deepcopy(dashboard)
    panel = next(p for p in broken["panels"] if p["type"] != "row")
    panel["targets"][0]["expr"] = 'sum(clippings_ready{cluster="$cluster"})'
    assert any("uses $cluster" in p for p in V.dashboard_problems(broken))


def test_unknown_metric_names_fail(rules, dashboard):
    broken_dash, broken_rules = copy.deepcopy(dashboard), copy.deepcopy(rules)
    panel = next(p for p in broken_dash["panels"] if p["type"] != "row")
    panel["targets"][0]["expr"] = "sum(rate(clippings_events_processed_total[5m]))"
    _rule(broken_rules, "ClippingsStalled")["expr"] = "sum by (job) (clippings_lag) > 0"
    problems = V.unknown_metric_problems(V.used_metrics(broken_rules, broken_dash), V.exported_metrics(V.declared_service_metrics()))
    assert len(problems) == 2
    assert any(p.startswith("clippings_events_processed_total ") for p in problems)
    assert any(p.startswith("clippings_lag ") for p in problems)


def test_metric_names_come_from_the_promql_syntax_tree():
    expr = 'histogram_quantile(0.99, sum by (le, stage) (rate(clippings_stage_seconds_bucket{stage="linker", job=~"$job"}[$__rate_interval]))) > on() group_left absent(up)'
    assert V.metric_names(expr) == {"clippings_stage_seconds_bucket", "up"}
    assert V.metric_names('{__name__="clippings_ready"}') == {"clippings_ready"}


def test_exported_names_include_the_suffixes_of_each_type():
    exposition = (
        "# HELP a_total x\n# TYPE a_total counter\n"
        "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 0.0\nh_count 0.0\nh_sum 0.0\n"
        "# HELP g x\n# TYPE g gauge\n"
    )
    names = V.exported_metrics(exposition)
    assert {"a_total", "h_bucket", "h_sum", "h_count", "g"} <= names and "h" not in names and "a" not in names


# ------------------------------------------------------------------------------ the rendered YAML itself


def test_rendered_yaml_round_trips(rendered, tmp_path):
    paths = V.write_rendered(rendered, tmp_path)
    assert [p.name for p in paths] == [f"{name}.yaml" for name in V.KUSTOMIZATIONS]
    for path in paths:
        assert [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d] == rendered[path.stem]
