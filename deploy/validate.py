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
import json
import sys
import tempfile
from pathlib import Path

# The checks live in deploy/validation/, beside this script, which runs as a file (and the
# tests load it as one): make its folder importable however it was started.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from validation.common import (  # noqa: E402  (the names tests/test_deploy.py reaches through this module)
    ALERT_TESTS, DASHBOARD, DOCKERFILES, EXTERNAL_METRICS, KUSTOMIZATIONS, SCHEMAS, STACKS, UNSET_SETTINGS,
    by_kind, named, pod_spec, ref, render, render_all, write_rendered,
)
from validation.k8s import reference_problems, schema_problems  # noqa: E402
from validation.observability import (  # noqa: E402
    _panels, alert_rules, alert_runbook_problems, dashboard_problems, declared_service_metrics, exported_metrics,
    metric_names, promtool_problems, unknown_metric_problems, used_metrics,
)
from validation.policy import container_env, policy_problems, settings_problems  # noqa: E402
from validation.tools import checkov_findings, checkov_problems, hadolint_problems  # noqa: E402

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
