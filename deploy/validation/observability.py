"""Alert rules (promtool, runbook anchors), the dashboard, and the metric names both use."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

import yaml

from validation.common import ALERT_TESTS, EXTERNAL_METRICS, REPO, _PLACEHOLDER, by_kind, find_tool

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
