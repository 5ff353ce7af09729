#!/usr/bin/env bash
# NLU accuracy on the held-out test set (tests/nlu/nlu_holdout.yml, never trained on).
# Writes the summary to docs/nlu_report.md; fails if intent accuracy drops below NLU_MIN_ACCURACY.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
out="${1:-var/results-nlu}"
"$RASA_VENV/bin/rasa" test nlu --nlu tests/nlu/nlu_holdout.yml --model build/rasa-models/current.tar.gz --out "$out" --no-plot >/dev/null 2>"$out.log" || { tail -20 "$out.log"; exit 1; }
"$SVC_VENV/bin/python" scripts/nlu_summary.py "$out" docs/nlu_report.md
