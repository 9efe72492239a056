# Shared by the build, start, test and bench scripts: installs what the
# project needs (once, cached) and exports the paths to it.
# Needs only rustup and Node 20 on the machine; never downloads from GitHub.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${EDGE_TRACKER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/edge-tracker}"
mkdir -p "$CACHE"
cd "$ROOT"

log() { printf '[edge-tracker] %s\n' "$*" >&2; }

# Version of a package as Cargo.lock pins it.
locked_version() {
  awk -v name="$1" '$0 == "name = \"" name "\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

ensure_wasm_target() {
  if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    log "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown >&2
  fi
}

# cargo install NAME VERSION BIN into the cache, once per version.
ensure_cargo_tool() {
  local name="$1" version="$2" bin="$3" root="$CACHE/$1-$2"
  if [ ! -x "$root/bin/$bin" ]; then
    log "installing $name $version (first run only)"
    cargo install "$name" --version "$version" --root "$root" >&2
  fi
  printf '%s/bin/%s' "$root" "$bin"
}

ensure_node_modules() {
  # npm ci when the lock file changed since the last install.
  if [ ! -f node_modules/.installed-lock ] || ! cmp -s package-lock.json node_modules/.installed-lock; then
    log "installing node packages"
    npm ci --no-audit --no-fund --loglevel=error >&2
    cp package-lock.json node_modules/.installed-lock
  fi
}

ensure_tools() {
  ensure_wasm_target
  WASM_BINDGEN_REAL="$(ensure_cargo_tool wasm-bindgen-cli "$(locked_version wasm-bindgen)" wasm-bindgen)"
  WASM_BINDGEN_BIN="$ROOT/scripts/wasm-bindgen-slim.sh"
  WORKER_BUILD_BIN="$(ensure_cargo_tool worker-build "$(locked_version worker)" worker-build)"
  ensure_node_modules
  export WASM_BINDGEN_REAL WASM_BINDGEN_BIN WORKER_BUILD_BIN
  # worker-build bundles with esbuild: use the one npm installed for wrangler.
  export ESBUILD_BIN="$ROOT/node_modules/esbuild/bin/esbuild"
}
