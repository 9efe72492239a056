#!/usr/bin/env bash
# npm run bench: native core benchmarks, then the built Worker under load
# beside a floor Worker, and the cost per announce. Results: bench-results/.
source "$(dirname "$0")/env.sh"
bash scripts/build.sh
if ! command -v wrk >/dev/null 2>&1; then
  log "installing wrk (Debian)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo -n"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >&2 || { $SUDO apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >&2; }
fi
log "native benchmarks (criterion, memory)"
cargo bench --quiet --bench announce >&2
cargo bench --quiet --bench memory >&2
log "load and cost benchmarks"
node bench/run.mjs
