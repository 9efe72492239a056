#!/usr/bin/env bash
# Builds the Worker into build/ (entry.mjs, the entry module; index.js and
# index_bg.wasm from worker-build).
source "$(dirname "$0")/env.sh"
ensure_tools
# Skip the build when nothing it reads changed since the last one.
stamp="$(cat Cargo.toml Cargo.lock scripts/wasm-bindgen-slim.sh $(find src -type f | sort) | sha256sum | cut -c1-16)"
if [ -f build/.stamp ] && [ "$(cat build/.stamp)" = "$stamp" ] && [ -f build/index.js ] && [ -f build/entry.mjs ]; then
  exit 0
fi
log "building the worker (wasm32, release)"
# worker-build would download wasm-opt from GitHub: it runs without it, and
# the npm build of binaryen's wasm-opt (pinned in package.json) shrinks the
# module afterwards (about 12%, keeping it under 1 MiB).
"$WORKER_BUILD_BIN" --release --no-opt >&2
log "wasm-opt -Oz --converge (binaryen from npm)"
# --converge repeats the passes while they still shrink the module (~0.7 KB
# more, a few seconds).
node node_modules/binaryen/bin/wasm-opt -Oz --converge --enable-exception-handling --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue build/index_bg.wasm -o build/index_bg.opt.wasm >/dev/null
mv build/index_bg.opt.wasm build/index_bg.wasm
cp src/worker/entry.mjs src/worker/coalesce.mjs build/
echo "$stamp" > build/.stamp
