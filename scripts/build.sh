#!/usr/bin/env bash
# Builds the Worker into build/ (index.js + index_bg.wasm).
source "$(dirname "$0")/env.sh"
ensure_tools
# Skip the build when nothing it reads changed since the last one.
stamp="$(cat Cargo.toml Cargo.lock scripts/wasm-bindgen-slim.sh $(find src -type f | sort) | sha256sum | cut -c1-16)"
if [ -f build/.stamp ] && [ "$(cat build/.stamp)" = "$stamp" ] && [ -f build/index.js ]; then
  exit 0
fi
log "building the worker (wasm32, release)"
# wasm-opt would be downloaded from GitHub; the release profile already
# optimises for size.
"$WORKER_BUILD_BIN" --release --no-opt >&2
echo "$stamp" > build/.stamp
