#!/usr/bin/env bash
# The README's first command: install, then run the whole stack on the shipped sample feed
# (own broker, Redis, the shipped `news` model) and print the duplicate flags and a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export PYTHONWARNINGS=${PYTHONWARNINGS:-ignore::DeprecationWarning}
exec .venv/bin/clippings up --demo "$@"
