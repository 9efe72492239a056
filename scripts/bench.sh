#!/usr/bin/env bash
# npm run bench: native core benchmarks, then the built Worker under load
# beside a floor Worker, and the cost per announce. Results: bench-results/.
source "$(dirname "$0")/env.sh"
bash scripts/build.sh
bash scripts/install-wrk.sh
log "native benchmarks (criterion, memory)"
cargo bench --quiet --bench announce >&2
cargo bench --quiet --bench memory >&2
cargo bench --quiet --bench adaptive_interval >&2
log "load and cost benchmarks"
node bench/run.mjs
log "one hot swarm, tracker against the floor and the floor asking by RPC (bench/hot-swarm.mjs; about 12 minutes)"
node bench/hot-swarm.mjs
log "the hot path bounded: the tracker with its Rust answers canned, two epochs of fresh processes (bench/hot-bound.mjs; about 9 minutes)"
node bench/hot-bound.mjs
log "one hot swarm, the object's own time: Worker and objects in two processes, as deployed, with the targets that bound it (bench/hot-split.mjs; about 16 minutes)"
node bench/hot-split.mjs
log "all-in cost of churn and long-tail swarms, scrapes included (bench/churn.mjs; about 4 minutes)"
node bench/churn.mjs
log "torrent creation: hashing 1 GiB in headless Chromium (bench/create.mjs)"
bash scripts/install-clients.sh
node bench/create.mjs
log "one swarm of 200,000 peers in workerd (bench/big-swarm.mjs; several minutes)"
node bench/big-swarm.mjs
log "swarm totals at 1M torrents (bench/totals.mjs)"
node bench/totals.mjs
