#!/usr/bin/env bash
# Everything the phone gateway's tests need from Debian, idempotent (safe to run on every CI run):
# the packages in voice/system-packages.txt, then the cached Asterisk chroot for the end-to-end test.
#   SKIP_ASTERISK_CHROOT=1  skip the chroot (about a minute and ~400 MB the first time)
set -euo pipefail
cd "$(dirname "$0")/../.."
need=()
while read -r pkg; do
  [[ -z "$pkg" || "$pkg" == \#* ]] && continue
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done < voice/system-packages.txt
if (( ${#need[@]} )); then
  if [[ $EUID -ne 0 ]]; then
    echo "Missing Debian packages: ${need[*]}; install them as root (apt-get install ${need[*]})." >&2
    exit 1
  fi
  echo "[voice] installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
else
  echo "[voice] Debian packages present"
fi
if [[ "${SKIP_ASTERISK_CHROOT:-0}" != 1 && $EUID -eq 0 ]]; then
  bash scripts/voice/build_asterisk_chroot.sh
fi
