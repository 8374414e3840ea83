#!/usr/bin/env bash
# Installs what clippings needs on a fresh Debian/Ubuntu machine into a virtualenv in .venv.
#   bash scripts/install.sh         everything (tests, CI): apt fonts and tools for `clippings synth`,
#                                   Chromium for the review page's browser tests, the package with the
#                                   train, local, dev, ops, review and browser extras (torch included)
#   bash scripts/install.sh demo    what `clippings up --demo` needs (scripts/demo.sh): the package
#                                   with the local and review extras; no torch, no apt packages
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-all}
case "$MODE" in
  all|demo) ;;
  *) echo "usage: bash scripts/install.sh [all|demo]" >&2; exit 2 ;;
esac
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
if [ "$MODE" = demo ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[local,review]"
  echo "install: ok, demo ($(.venv/bin/python -c 'import onnxruntime, faiss; print("onnxruntime", onnxruntime.__version__, "faiss", faiss.__version__)'))"
  exit 0
fi

APT_PACKAGES=(
  fonts-ipafont-gothic fonts-ipafont-mincho fonts-ipaexfont-gothic fonts-ipaexfont-mincho
  fonts-vlgothic fonts-noto-cjk fonts-dejavu-core fonts-liberation2 fonts-freefont-ttf
  mecab-ipadic tesseract-ocr tesseract-ocr-jpn tesseract-ocr-jpn-vert
  fonts-sawarabi-mincho fonts-sawarabi-gothic fonts-hanazono fonts-mplus fonts-umeplus
  fonts-motoya-l-cedar fonts-motoya-l-maruberi fonts-horai-umefont
  tesseract-ocr-eng fonts-texgyre fonts-crosextra-caladea fonts-linuxlibertine fonts-roboto-slab fonts-go
  chromium chromium-driver
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

# torch is pinned in pyproject (train extra): an unpinned one pulls a CUDA build of several GB.
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[train,local,dev,ops,review,browser]"
# The reader family's trunk is a file of this wheel; its own dependencies (OpenCV...) are not needed.
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps rapidocr==3.10.0
echo "install: ok ($(.venv/bin/python -c 'import torch, onnxruntime, faiss; print("torch", torch.__version__, "onnxruntime", onnxruntime.__version__)'))"
