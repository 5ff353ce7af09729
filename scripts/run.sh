#!/usr/bin/env bash
# Start the whole system on 127.0.0.1 with embedded defaults; Ctrl-C stops everything.
#   scripts/run.sh            foreground (make run)
#   scripts/run.sh --detach   start, wait until healthy, write the pids to $RUN_DIR/pids and return
#                             (the tests do this; scripts/stop.sh stops it)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
detach=0; [ "${1:-}" = "--detach" ] && detach=1
RUN_DIR="${RUN_DIR:-var}"
logdir="$RUN_DIR/log"
mkdir -p "$logdir"
pids=()
optional=()  # services whose failure leaves the others running (the phone gateway)
stop() {
  trap - INT TERM EXIT
  echo; echo "[run] stopping…"
  for p in "${pids[@]}" "${optional[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "[run] stopped."
}
trap stop INT TERM EXIT

start() {  # name, log file, command…
  local name="$1" logf="$2"; shift 2
  "$@" >"$logf" 2>&1 &
  pids+=($!)
  echo "[run] started $name (pid $!, log $logf)"
}

# production (APP_ENV=production; any other value than development or production is refused) refuses missing or development secrets before anything starts
"$SVC_VENV/bin/python" -m common.secrets check || { echo "[run] set the secrets above (see .env.example)"; exit 1; }

if [ "$APP_ENV" = development ]; then  # synthetic citizens for the card self-service demo (idempotent)
  "$SVC_VENV/bin/python" -m cardsys.seed --count 300 >/dev/null
  # a simulated last month in an empty analytics store, with its report, so the supervisors' desk has something to
  # show (once; never over real data; marked as simulated). Not for the test stack (RUN_DIR=var/test).
  if [ "$RUN_DIR" = var ]; then
    "$SVC_VENV/bin/python" -m analytics.demo | sed 's/^/[run] /' || echo "[run] no demo analytics month (see above)"
  fi
fi
start "action server" "$logdir/actions.log" env KB_PRELOAD=1 "$SVC_VENV/bin/python" -m actions.server -p "$ACTION_PORT"
start "Rasa server" "$logdir/rasa.log" "$RASA_VENV/bin/rasa" run --enable-api --auth-token "$RASA_TOKEN" \
  -i 127.0.0.1 -p "$RASA_PORT" --model build/rasa-models/current.tar.gz \
  --credentials credentials.yml --endpoints endpoints.yml
start "web app" "$logdir/webapp.log" "$SVC_VENV/bin/python" -m webapp
# the phone gateway: speech and keypad with a Mandarin Vosk model, keypad only without one
if voice_mode=$("$SVC_VENV/bin/python" -m voice --check 2>&1 | tail -n 1); then  # pipefail: the check's status
  "$SVC_VENV/bin/python" -m voice >"$logdir/voice.log" 2>&1 &
  optional+=($!)
  echo "[run] started voice gateway (pid $!, log $logdir/voice.log): $voice_mode"
else
  echo "[run] $voice_mode"
fi

wait_for() {  # name, url, seconds
  local name="$1" url="$2" secs="$3" i
  for ((i = 0; i < secs; i++)); do
    if curl -fsS -o /dev/null "$url" 2>/dev/null; then echo "[run] $name is up"; return 0; fi
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || { echo "[run] a service exited early; see $logdir/"; tail -n 30 "$logdir"/*.log; exit 1; }; done
    sleep 1
  done
  echo "[run] $name did not come up in ${secs}s; see $logdir/"; tail -n 30 "$logdir"/*.log; exit 1
}
wait_for "action server" "http://127.0.0.1:$ACTION_PORT/health" 120
wait_for "web app" "$WEBAPP_URL/health" 60
wait_for "Rasa server" "$RASA_URL/status?token=$RASA_TOKEN" 180
# warm-up: one real knowledge action call returns once the knowledge base is indexed
warm='{"next_action":"action_answer_from_kb","sender_id":"warmup","tracker":{"sender_id":"warmup","slots":{},"latest_message":{"text":"社保卡","intent":{"name":"ask_question"},"entities":[]},"events":[],"latest_action_name":"action_listen"},"domain":{}}'
if curl -fsS -m 300 -o /dev/null -H 'Content-Type: application/json' -H "X-Action-Token: $ACTION_TOKEN" -d "$warm" "http://127.0.0.1:$ACTION_PORT/webhook"; then
  echo "[run] knowledge base is ready"
else
  echo "[run] the knowledge action did not answer; see $logdir/actions.log"; tail -n 30 "$logdir/actions.log"; exit 1
fi

voice_url="http://127.0.0.1:$VOICE_HTTP_PORT"
if (( ${#optional[@]} )); then  # the gateway's failure is reported, the chat keeps running
  for ((i = 0; i < 60; i++)); do
    if curl -fsS -o /dev/null "$voice_url/health" 2>/dev/null; then echo "[run] voice gateway is up"; break; fi
    kill -0 "${optional[0]}" 2>/dev/null || { echo "[run] the voice gateway stopped; see $logdir/voice.log"; tail -n 5 "$logdir/voice.log"; optional=(); break; }
    sleep 1
  done
  (( i < 60 )) || echo "[run] the voice gateway did not answer in 60 s; see $logdir/voice.log"
fi

if [ "$detach" = 1 ]; then
  printf '%s\n' "${pids[@]}" "${optional[@]}" > "$RUN_DIR/pids"
  trap - INT TERM EXIT
  echo "[run] running in the background (pids in $RUN_DIR/pids; stop with scripts/stop.sh)"
  exit 0
fi

cat <<TXT

  Citizen chat:   $WEBAPP_URL/
  Agent desk:     $WEBAPP_URL/desk   (development mode: see README for the demo accounts)
  Rasa REST:      $RASA_URL/webhooks/rest/webhook   (header X-Channel-Token: \$CHANNEL_TOKEN)
  Action server:  http://127.0.0.1:$ACTION_PORT/health
  Phone gateway:  ${optional[*]:+$voice_url/health  (Asterisk AudioSocket 127.0.0.1:$AUDIOSOCKET_PORT, $voice_mode)}${optional[*]:-not running}
${optional[*]:+  Web softphone:  $WEBAPP_URL/phone   (call the phone bot from a browser)
}  Logs:           $logdir/

  Press Ctrl-C to stop everything.
TXT
wait -n "${pids[@]}" || true
echo "[run] a service stopped unexpectedly; see $logdir/"
