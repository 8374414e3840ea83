#!/usr/bin/env bash
# Installs what clippings needs on a fresh Debian/Ubuntu machine: fonts for `clippings synth`,
# promtool for the alert-rule checks, and a virtualenv in .venv with the package and its extras.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  fonts-ipafont-gothic fonts-ipafont-mincho fonts-ipaexfont-gothic fonts-ipaexfont-mincho
  fonts-vlgothic fonts-noto-cjk fonts-dejavu-core fonts-liberation2 fonts-freefont-ttf
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install: apt packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# torch is pinned in pyproject (train extra): an unpinned one pulls a CUDA build of several GB.
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[train,local,dev,ops]"
echo "install: ok ($(.venv/bin/python -c 'import torch, onnxruntime, faiss; print("torch", torch.__version__, "onnxruntime", onnxruntime.__version__)'))"
