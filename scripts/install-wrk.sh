#!/usr/bin/env bash
# wrk, the load generator of the benchmarks (Debian).
source "$(dirname "$0")/env.sh"
if ! command -v wrk >/dev/null 2>&1; then
  log "installing wrk (Debian)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo -n"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >&2 || { $SUDO apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >&2; }
fi
