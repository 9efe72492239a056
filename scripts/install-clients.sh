#!/usr/bin/env bash
# Installs the real BitTorrent clients the end-to-end tests drive, from
# Debian packages (aria2, python3-libtorrent, transmission-cli), and headless
# Chromium for the dashboard test. WebTorrent comes from npm (package.json).
# Does nothing when they are already there.
set -euo pipefail
missing=()
command -v aria2c >/dev/null 2>&1 || missing+=(aria2)
/usr/bin/python3 -c 'import libtorrent' >/dev/null 2>&1 || missing+=(python3-libtorrent)
command -v transmission-cli >/dev/null 2>&1 || missing+=(transmission-cli)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "[edge-tracker] installing test clients: ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "need root (or sudo) to apt-get install ${missing[*]}" >&2; exit 1; }
  SUDO="sudo -n"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
