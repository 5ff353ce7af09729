#!/usr/bin/env bash
# Create (or reuse) one pinned virtual environment from a lock file.
# Usage: scripts/setup_env.sh rasa|svc
# Idempotent: skipped when the venv's stamp matches the lock file's sha256.
set -euo pipefail
cd "$(dirname "$0")/.."

which_env="${1:?usage: setup_env.sh rasa|svc}"
venv_root="${VENV_ROOT:-.venv}"
lock="requirements/${which_env}.lock"
venv="${venv_root}/${which_env}"
stamp="${venv}/.lock-sha256"

case "$which_env" in
  rasa) want_py="3.10" ;;
  svc)  want_py="3.11" ;;
  *) echo "setup_env.sh: unknown environment '$which_env' (use rasa or svc)" >&2; exit 2 ;;
esac

find_python() {
  # Prefer pyenv's installed interpreters; a pyenv shim can exist without a usable version.
  local v="$1" root cand
  if command -v pyenv >/dev/null 2>&1; then
    root="$(pyenv root)"
    for d in "$root"/versions/"$v".*; do
      [ -x "$d/bin/python$v" ] && { echo "$d/bin/python$v"; return; }
    done
  fi
  for cand in "python$v" "/usr/bin/python$v" "/usr/local/bin/python$v"; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import venv' >/dev/null 2>&1; then
      command -v "$cand"; return
    fi
  done
  return 1
}

want_sha="$(sha256sum "$lock" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_sha" ] && [ -x "$venv/bin/python" ]; then
  echo "[setup] ${which_env} environment is up to date ($venv)"
  exit 0
fi

py="$(find_python "$want_py")" || { echo "[setup] Python $want_py is required for the ${which_env} environment: install it (e.g. 'pyenv install $want_py') and rerun." >&2; exit 1; }
echo "[setup] creating ${which_env} environment in $venv with $py (this takes a few minutes the first time)"
started=$(date +%s)
rm -rf "$venv"
"$py" -m venv "$venv"
pipq() { "$venv/bin/python" -m pip "$@" 2>&1 | grep -vE "is ignored: it is neither|DEPRECATION|pip 23.1 will enforce|Discussion can be found" || true; }
if [ "$which_env" = "svc" ]; then
  # torch first, from the pinned CPU build, so that no other package can pull a CUDA build.
  pipq install --quiet "$(grep -E '^torch==' "$lock")"
fi
pipq install --quiet -r "$lock"
# verify the install really worked (pip's exit status is hidden by the filter above)
if [ "$which_env" = "rasa" ]; then
  "$venv/bin/python" -c "import rasa, jieba; print('[setup] rasa', rasa.__version__)"
else
  "$venv/bin/python" -c "import torch, transformers, rasa_sdk, sanic, vosk, pyttsx3; print('[setup] torch', torch.__version__, 'transformers', transformers.__version__, 'sanic', sanic.__version__)"
fi
echo "$want_sha" > "$stamp"
echo "[setup] ${which_env} environment ready in $(( $(date +%s) - started )) s"
