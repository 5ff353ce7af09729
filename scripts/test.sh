#!/usr/bin/env bash
# Every test, in the order a failure is cheapest to find: data validation, unit and service tests,
# Rasa conversation tests, then the real stack (Rasa + action server + web app) end to end and in
# headless Chromium, then the short kill -9 fault-injection run (scripts/faults.py). Exits non-zero if any
# step fails; the last line sums up the steps.
set -uo pipefail
cd "$(dirname "$0")/.."
# the test stack runs on its own ports and databases, so a `make run` beside it is not disturbed
export RASA_PORT="${TEST_RASA_PORT:-15005}" ACTION_PORT="${TEST_ACTION_PORT:-15055}" WEBAPP_PORT="${TEST_WEBAPP_PORT:-18080}"
export VOICE_HTTP_PORT="${TEST_VOICE_HTTP_PORT:-18081}" AUDIOSOCKET_PORT="${TEST_AUDIOSOCKET_PORT:-19092}"
export RASA_URL="http://127.0.0.1:$RASA_PORT" ACTION_SERVER_URL="http://127.0.0.1:$ACTION_PORT/webhook" WEBAPP_URL="http://127.0.0.1:$WEBAPP_PORT"
export RUN_DIR=var/test
# a short hand-off waiting limit, so tests/e2e/test_handoff_time_limits.py sees the callback offer within a minute
export HANDOFF_WAIT_SECONDS="${TEST_HANDOFF_WAIT_SECONDS:-40}"
rm -rf "$RUN_DIR"; mkdir -p "$RUN_DIR"
export TRACKER_STORE_URL="sqlite:///$PWD/$RUN_DIR/rasa_tracker.db" WEBAPP_DATABASE_URL="sqlite:///$PWD/$RUN_DIR/webapp.db"
export KB_DATABASE_URL="$WEBAPP_DATABASE_URL"  # the knowledge the bot answers with: the desk's tables of this run
export CARDSYS_DATABASE_URL="sqlite:///$PWD/$RUN_DIR/cardsys.db" CARDSYS_SMS_LOG="$PWD/$RUN_DIR/sms.log"  # the development SMS outbox the tests read codes from
. scripts/env.sh
PY="$SVC_VENV/bin/python"; RASA="$RASA_VENV/bin/rasa"

passed=0; failed=0; failed_steps=()
step() {  # name, command…
  local name="$1"; shift
  echo; echo "=== $name"
  if "$@"; then passed=$((passed + 1)); echo "--- ok: $name"
  else failed=$((failed + 1)); failed_steps+=("$name"); echo "--- FAILED: $name"; fi
}

step "ruff (lint)" "$PY" -m ruff check actions bot cardsys common knowledge modelbuild webapp voice analytics tests scripts
step "rasa data validate" "$RASA" data validate --config config.yml --domain domain.yml --data data --fail-on-warnings
step "unit and service tests" "$PY" -m pytest -q -p no:cacheprovider tests/unit tests/service tests/voice tests/analytics -m "not stack and not browser"
step "Rasa conversation tests" "$RASA" test core --stories tests --model build/rasa-models/current.tar.gz \
  --endpoints endpoints.yml --fail-on-prediction-errors --out "$RUN_DIR/results-core"
step "NLU held-out evaluation" bash scripts/nlu_report.sh "$RUN_DIR/results-nlu"

echo; echo "=== starting the system for end-to-end tests"
if "$PY" -m cardsys.seed --count 300 && bash scripts/run.sh --detach; then
  trap 'bash scripts/stop.sh' EXIT
  step "end-to-end and browser tests" env E2E_REQUIRED=1 RUN_RASA_TESTS=1 "$PY" -m pytest -q -p no:cacheprovider tests/e2e tests/voice tests/service/test_desk_supervision.py -m "stack or browser or rasa"
  bash scripts/stop.sh
else
  failed=$((failed + 1)); failed_steps+=("start the system")
fi
# the production profile (scripts/run_prod.py): two replicas of Rasa, action server and web app behind HAProxy on the
# local PostgreSQL, Redis and RabbitMQ; a Rasa replica and an action server killed mid-load (ports 21000+)
step "production profile" env RUN_PROD_TESTS=1 "$PY" -m pytest -q -p no:cacheprovider tests/prod
# kill -9 of each service under traffic, on a stack of its own (var/faults): nothing lost, nothing done twice
step "fault injection (short)" "$PY" scripts/faults.py --short

echo
[ "$failed" -gt 0 ] && echo "failed steps: ${failed_steps[*]}"
echo "steps: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
