#!/usr/bin/env bash
# worker-build calls this as its wasm-bindgen (WASM_BINDGEN_BIN). It runs the
# pinned wasm-bindgen with --remove-name-section: the function-name section
# is a quarter of the module (~260 KB) and only names frames in stack traces.
set -euo pipefail
case " $* " in
  *" --version "* | *" -V "*) exec "$WASM_BINDGEN_REAL" "$@" ;;
  *) exec "$WASM_BINDGEN_REAL" "$@" --remove-name-section ;;
esac
