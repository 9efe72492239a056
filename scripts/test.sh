#!/usr/bin/env bash
# npm test: native core tests, then the built Worker in Miniflare over HTTP.
source "$(dirname "$0")/env.sh"
log "cargo test (native core)"
cargo test --quiet
bash scripts/build.sh
bash scripts/install-clients.sh
log "node --test (Worker in Miniflare)"
node --test --test-concurrency=1 "$@" tests/*.test.mjs
