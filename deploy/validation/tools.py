"""The external linters: checkov over the rendered manifests, hadolint over the Dockerfiles."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from validation.common import CHECKOV_ACCEPTED, HADOLINT_IGNORED, find_tool

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
