#!/usr/bin/env bash
# Debian packages the tests need; installs only what is missing (idempotent). Needs root.
set -euo pipefail
need=()
for pkg in chromium chromium-driver espeak-ng libespeak-ng1 sox curl haproxy openssl; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ -f voice/system-packages.txt ]; then
  while read -r pkg; do
    [ -n "$pkg" ] && [ "${pkg:0:1}" != "#" ] && { dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); }
  done < voice/system-packages.txt
fi
if [ ${#need[@]} -eq 0 ]; then echo "[system] Debian packages present"; exit 0; fi
if [ "$(id -u)" != 0 ]; then echo "[system] missing Debian packages: ${need[*]} — install them as root (apt-get install ${need[*]})" >&2; exit 1; fi
echo "[system] installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
