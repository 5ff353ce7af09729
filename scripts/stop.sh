#!/usr/bin/env bash
# Stop a system started with scripts/run.sh --detach (pids in $RUN_DIR/pids).
cd "$(dirname "$0")/.."
RUN_DIR="${RUN_DIR:-var}"
[ -f "$RUN_DIR/pids" ] || exit 0
while read -r p; do kill "$p" 2>/dev/null || true; done < "$RUN_DIR/pids"
for _ in $(seq 1 20); do
  alive=0; while read -r p; do kill -0 "$p" 2>/dev/null && alive=1; done < "$RUN_DIR/pids"
  [ "$alive" = 0 ] && break; sleep 0.5
done
while read -r p; do kill -9 "$p" 2>/dev/null || true; done < "$RUN_DIR/pids"
rm -f "$RUN_DIR/pids"
echo "[stop] stopped"
