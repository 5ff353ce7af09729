#!/usr/bin/env bash
# Train the Rasa model only when training data, domain, config or the jieba dictionary changed.
# The model is named by the hash of its inputs: build/rasa-models/<hash>.tar.gz (+ current.tar.gz link).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
out=build/rasa-models
hash=$(cat config.yml domain.yml $(find data bot/jieba_dict -type f \( -name '*.yml' -o -name '*.txt' \) | sort) | sha256sum | cut -c1-16)
if [ -f "$out/$hash.tar.gz" ]; then
  echo "[train] model is up to date ($out/$hash.tar.gz)"
else
  echo "[train] training data changed: training a new model (3–4 minutes on 2 cores)…"
  start=$(date +%s)
  "$RASA_VENV/bin/rasa" train --config config.yml --domain domain.yml --data data --out "$out" \
      --fixed-model-name "$hash" --quiet
  echo "[train] trained in $(( $(date +%s) - start )) s"
fi
ln -sf "$hash.tar.gz" "$out/current.tar.gz"
