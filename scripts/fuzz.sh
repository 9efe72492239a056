#!/usr/bin/env bash
# Fuzzes the core with cargo fuzz (libFuzzer, nightly): each target in turn
# for N seconds (default 20), starting from its saved corpus and the seeds
# in fuzz/seeds/. Fails on the first crash, leaving the input that crashed
# in fuzz/artifacts/TARGET/ (a crash becomes a regression test in the core).
# Usage: bash scripts/fuzz.sh [seconds] [target...]
# (FUZZ_WITHOUT_NIGHTLY=1 uses the default toolchain even if nightly is there.)
source "$(dirname "$0")/env.sh"
CARGO_FUZZ_VERSION=0.13.2

seconds="${1:-20}"
shift $(( $# > 0 ? 1 : 0 ))

# cargo fuzz passes nightly-only flags (-Z sanitizer, sancov). Without a
# nightly toolchain that can be installed, the machine's own toolchain takes
# them under RUSTC_BOOTSTRAP=1 (same instrumentation, AddressSanitizer too).
fuzz=(cargo +nightly fuzz)
if [ -n "${FUZZ_WITHOUT_NIGHTLY:-}" ]; then
  fuzz=(cargo fuzz)
elif ! rustup toolchain list | grep -q '^nightly'; then
  log "installing the nightly toolchain (first run only)"
  if ! rustup toolchain install nightly --profile minimal >&2; then
    fuzz=(cargo fuzz)
  fi
fi
if [ "${fuzz[1]}" = fuzz ]; then
  log "fuzzing with the default toolchain under RUSTC_BOOTSTRAP=1"
  export RUSTC_BOOTSTRAP=1
fi
# `cargo fuzz` finds cargo-fuzz on PATH.
PATH="$(dirname "$(ensure_cargo_tool cargo-fuzz "$CARGO_FUZZ_VERSION" cargo-fuzz)"):$PATH"

cd fuzz
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <("${fuzz[@]}" list)
fi
log "building ${#targets[@]} fuzz targets"
"${fuzz[@]}" build >&2

mkdir -p logs
total_runs=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  dirs=("corpus/$t")
  [ -d "seeds/$t" ] && dirs+=("seeds/$t")
  flags=(-max_total_time="$seconds" -print_final_stats=1)
  [ -f "dicts/$t.dict" ] && flags+=(-dict="dicts/$t.dict")
  log "fuzzing $t for ${seconds}s"
  if ! "${fuzz[@]}" run "$t" "${dirs[@]}" -- "${flags[@]}" > "logs/$t.log" 2>&1; then
    tail -n 60 "logs/$t.log" >&2
    log "CRASH in fuzz target $t: input saved in fuzz/artifacts/$t/"
    exit 1
  fi
  runs="$(awk '/stat::number_of_executed_units/ { print $2 }' "logs/$t.log")"
  last="$(grep -E '^#[0-9]+.*cov: ' "logs/$t.log" | tail -n 1 | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' || true)"
  log "$t: ${runs:-?} executions, $last, no crash"
  total_runs=$(( total_runs + ${runs:-0} ))
done
log "fuzzing done: ${#targets[@]} targets, $total_runs executions, no crash"
