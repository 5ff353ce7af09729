#!/usr/bin/env bash
# Build (once) a Debian sid chroot holding Asterisk 22 for the voice end-to-end test.
# Asterisk is not packaged for bookworm, so the test runs sid's package inside a chroot.
# Idempotent: a finished chroot is marked with .shebao-ready and reused.
#   ASTERISK_CHROOT  where to build (default /var/cache/shebao-asterisk, outside git)
#   DEBIAN_MIRROR    Debian mirror (default: the one apt already uses)
set -euo pipefail

CHROOT="${ASTERISK_CHROOT:-/var/cache/shebao-asterisk}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
MARK="$CHROOT/.shebao-ready"

if [[ -f "$MARK" ]]; then
  echo "asterisk chroot ready at $CHROOT ($(cat "$MARK"))"
  exit 0
fi
if [[ $EUID -ne 0 ]]; then
  echo "build_asterisk_chroot.sh must run as root (debootstrap and chroot need it)." >&2
  exit 1
fi
command -v debootstrap >/dev/null || { echo "Install debootstrap first: scripts/voice/setup_system.sh" >&2; exit 1; }

rm -rf "$CHROOT"
mkdir -p "$(dirname "$CHROOT")"
tmp="$CHROOT.partial"
rm -rf "$tmp"
echo "debootstrap sid into $tmp ..."
debootstrap --variant=minbase sid "$tmp" "$MIRROR" >"$tmp.log" 2>&1 || { tail -20 "$tmp.log" >&2; exit 1; }
cp /etc/resolv.conf "$tmp/etc/resolv.conf" 2>/dev/null || true
echo "installing asterisk inside the chroot ..."
chroot "$tmp" /usr/bin/env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  asterisk asterisk-modules asterisk-config >>"$tmp.log" 2>&1 || { tail -20 "$tmp.log" >&2; exit 1; }
chroot "$tmp" apt-get clean
version="$(chroot "$tmp" /usr/sbin/asterisk -V)"
echo "$version" >"$tmp/.shebao-ready"
mv "$tmp" "$CHROOT"
rm -f "$tmp.log"
echo "asterisk chroot ready at $CHROOT ($version)"
