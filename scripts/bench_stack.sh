#!/usr/bin/env bash
# Start the stack on benchmark ports, time a forced Rasa training, then run scripts/bench_stack.py.
set -euo pipefail
cd "$(dirname "$0")/.."
export RASA_PORT=25005 ACTION_PORT=25055 WEBAPP_PORT=28080 RUN_DIR=var/bench
export RASA_URL="http://127.0.0.1:$RASA_PORT" ACTION_SERVER_URL="http://127.0.0.1:$ACTION_PORT/webhook" WEBAPP_URL="http://127.0.0.1:$WEBAPP_PORT"
rm -rf "$RUN_DIR"; mkdir -p "$RUN_DIR"
export TRACKER_STORE_URL="sqlite:///$PWD/$RUN_DIR/rasa.db" WEBAPP_DATABASE_URL="sqlite:///$PWD/$RUN_DIR/webapp.db"
export KB_DATABASE_URL="$WEBAPP_DATABASE_URL"  # the knowledge the bot answers with: the desk's tables of this run
. scripts/env.sh
extra=""
if [ "${BENCH_TRAIN:-1}" = 1 ]; then
  start=$(date +%s)
  # an empty Rasa cache, so nothing is reused from earlier trainings
  RASA_CACHE_DIRECTORY="$RUN_DIR/rasa-cache" "$RASA_VENV/bin/rasa" train --config config.yml --domain domain.yml --data data --out "$RUN_DIR/train" --quiet >/dev/null 2>&1
  extra="- \`rasa train\` from scratch (config, domain, data of this commit): $(( $(date +%s) - start )) s"
fi
# the bare Rasa bot our turn is compared with (bench/bare_bot), trained into the run folder, served beside the stack
"$RASA_VENV/bin/rasa" train --config bench/bare_bot/config.yml --domain bench/bare_bot/domain.yml \
  --data bench/bare_bot/data --out "$RUN_DIR/bare" --fixed-model-name bare --quiet >/dev/null 2>&1
"$RASA_VENV/bin/rasa" run --enable-api -i 127.0.0.1 -p 25105 --model "$RUN_DIR/bare/bare.tar.gz" >"$RUN_DIR/bare.log" 2>&1 &
bare=$!
trap 'kill $bare 2>/dev/null; bash scripts/stop.sh' EXIT
bash scripts/run.sh --detach
for _ in $(seq 120); do curl -sf http://127.0.0.1:25105/status >/dev/null && break; sleep 1; done
BENCH_EXTRA="$extra" BARE_RASA_URL=http://127.0.0.1:25105 "$SVC_VENV/bin/python" scripts/bench_stack.py
