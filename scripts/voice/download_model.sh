#!/usr/bin/env bash
# Download and unpack the official Mandarin Vosk model (vosk-model-small-cn-0.22, ~42 MB) into
# var/models/, where the gateway finds it without any setting. Needs internet access to the Vosk
# models page; on machines without it, copy an unpacked model folder and set VOSK_MODEL_PATH.
#   VOSK_MODEL_NAME  another model from the same page (default vosk-model-small-cn-0.22)
#   VOSK_MODEL_DIR   where to unpack (default var/models under the repository)
set -euo pipefail
cd "$(dirname "$0")/../.."
name="${VOSK_MODEL_NAME:-vosk-model-small-cn-0.22}"
dir="${VOSK_MODEL_DIR:-var/models}"
url="https://alphacephei.com/vosk/models/${name}.zip"
if [[ -d "$dir/$name/am" && -d "$dir/$name/conf" ]]; then
  echo "Vosk model already present: $dir/$name"
  exit 0
fi
mkdir -p "$dir"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "downloading $url ..."
if ! curl -fL --retry 2 --connect-timeout 20 -o "$tmp/model.zip" "$url"; then
  echo "Could not download $url: on a machine without internet, unpack the model elsewhere and set VOSK_MODEL_PATH." >&2
  exit 1
fi
python3 -m zipfile -e "$tmp/model.zip" "$tmp/unpacked"
mv "$tmp/unpacked/$name" "$dir/$name"
echo "Vosk model ready: $dir/$name"
