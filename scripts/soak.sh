#!/usr/bin/env bash
# npm run soak: the tracker under minutes of sustained load with churn
# (SOAK_SECONDS, default 300). Results: bench-results/soak.json.
source "$(dirname "$0")/env.sh"
bash scripts/build.sh
node bench/soak.mjs
