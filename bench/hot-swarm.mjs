// One hot swarm: every announce into ONE object, the tracker against the
// floor Worker (bench/floor/worker.js: a Durable Object per info hash that
// returns a fixed reply). wrk (bench/announce.lua with one torrent) sends
// HOT_PEERS peer ids (half seeders, numwant=50, compact, each its own
// cf-connecting-ip), no scrapes. Every peer joins first, then HOT_ROUNDS
// rounds (3) of HOT_SECONDS of random re-announces per target, alternating;
// the best round of each counts. Two pairs, each like for like:
// - "direct": both Workers without the static-assets router in front;
// - "router": both behind the same router (wrangler.toml [assets]), as
//   deployed. Locally Miniflare runs that router as two more Workers in the
//   same workerd process, on the same CPU; in production Cloudflare routes
//   `run_worker_first` paths before the Worker runs.
// Besides requests/s, workerd's CPU time per request (from /proc) is
// reported (less sensitive than rates to the other work on the machine),
// and each tracker round's CPU ratio to the floor round before it.
// The goal's floor asks its object by `fetch`; a second floor asks by JS
// RPC, as the tracker does (`*_rpc` figures: how much of the ratio is the
// way the Worker asks). Writes bench-results/hot-swarm.json (HOT_OUT
// names another file). About 12 minutes.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, startTracker } from '../tests/helpers.mjs';
import { envNumbers, median, medianInterval, runWrk, startFloor, steadyRound, workerdCpu } from './lib.mjs';

const { PEERS, SECONDS, ROUNDS, CONNECTIONS } = envNumbers('HOT', { PEERS: 20_000, SECONDS: 20, ROUNDS: 3, CONNECTIONS: 64 });
// Long enough for the tracker to write every peer through (~350/s behind
// the local router); the floor keeps no peers: its join only warms it.
const { POPULATE_SECONDS: POPULATE, FLOOR_POPULATE_SECONDS: FLOOR_POPULATE } = envNumbers('HOT', { POPULATE_SECONDS: 90, FLOOR_POPULATE_SECONDS: 20 });
const PAIRS = (process.env.HOT_PAIRS ?? 'direct,router').split(',');
const GOAL = 0.9;
const OUT = join(ROOT, 'bench-results');
const OUT_FILE = process.env.HOT_OUT ?? 'hot-swarm.json';
const log = (...a) => console.log('[hot-swarm]', ...a);

function round(name, target, seconds, populate) {
  const args = ['0', populate ? 'populate' : 'steady', String(PEERS), '1'];
  let cpuBefore = workerdCpu();
  const options = { base: target.base, seconds, connections: CONNECTIONS, args };
  // A steady round starts warm (`steadyRound`: the swarm evicted while the
  // other target ran is reloaded before the round, not in it).
  const r = populate ? runWrk(options) : steadyRound({ ...options, before: () => { cpuBefore = workerdCpu(); } });
  const cpuMs = (1000 * (workerdCpu() - cpuBefore)) / r.requests;
  log(`${name}${populate ? ' (joining)' : ''}: ${r.rps} req/s, ${r.requests} requests, ${cpuMs.toFixed(3)} CPU ms each, p50 ${r.p50}, p99 ${r.p99}, failures ${r.failures}, socket errors ${r.errors}, non-2xx ${r.non2xx}`);
  return { name: populate ? `${name} (joining)` : name, ...r, cpu_ms_per_request: Number(cpuMs.toFixed(4)), raw: undefined };
}

async function pair(router) {
  // Every announce does the full work (no min-interval refusals), with the
  // deployed configuration otherwise (no cost headers).
  const tracker = await startTracker({ assets: router, vars: { ENFORCE_MIN_INTERVAL: 'false', EXPOSE_COSTS: 'false' } });
  const floor = await startFloor({ assets: router });
  const floorRpc = await startFloor({ assets: router, rpc: true });
  const targets = [['floor', floor], ['floor (RPC)', floorRpc], ['tracker', tracker]];
  const rounds = [];
  try {
    const floorJoin = round('floor', floor, FLOOR_POPULATE, true);
    const floorRpcJoin = round('floor (RPC)', floorRpc, FLOOR_POPULATE, true);
    const trackerJoin = round('tracker', tracker, POPULATE, true);
    // The script announces peers 0..PEERS-1 in order before any re-announce.
    trackerJoin.all_joined = trackerJoin.requests >= PEERS;
    rounds.push(floorJoin, floorRpcJoin, trackerJoin);
    for (let i = 0; i < ROUNDS; i++) for (const [name, target] of targets) rounds.push(round(name, target, SECONDS, false));
  } finally {
    await tracker.close();
    await floor.close();
    await floorRpc.close();
  }
  const of = (n) => rounds.filter((r) => r.name === n);
  const best = (n) => Math.max(...of(n).map((r) => r.rps));
  const cpu = (n) => Math.min(...of(n).map((r) => r.cpu_ms_per_request));
  const ratio = best('tracker') / best('floor');
  // Each round's CPU ratio against the floor's round just before it: a
  // second view, less sensitive to one lucky round.
  const pairedWith = (f) => of('tracker').map((t, i) => of(f)[i].cpu_ms_per_request / t.cpu_ms_per_request);
  const paired = pairedWith('floor');
  const pairedRpc = pairedWith('floor (RPC)');
  return {
    rounds,
    floor_rps: best('floor'),
    tracker_rps: best('tracker'),
    ratio: Number(ratio.toFixed(3)),
    floor_cpu_ms: cpu('floor'),
    tracker_cpu_ms: cpu('tracker'),
    cpu_ratio: Number((cpu('floor') / cpu('tracker')).toFixed(3)),
    paired_cpu_ratios: paired.map((r) => Number(r.toFixed(3))),
    median_paired_cpu_ratio: Number(median(paired).toFixed(3)),
    // Wide with few rounds, and blind to a process's own bias (one process
    // a target): bench/hot-bound.mjs, BOUND_EPOCHS, for the narrower figure.
    paired_cpu_interval_95: medianInterval([paired]).map((r) => Number(r.toFixed(3))),
    all_joined: of('tracker (joining)')[0].all_joined,
    joining_tracker_rps: best('tracker (joining)'),
    floor_rpc_rps: best('floor (RPC)'),
    ratio_rpc: Number((best('tracker') / best('floor (RPC)')).toFixed(3)),
    floor_rpc_cpu_ms: cpu('floor (RPC)'),
    median_paired_cpu_ratio_rpc: Number(median(pairedRpc).toFixed(3)),
    paired_cpu_interval_95_rpc: medianInterval([pairedRpc]).map((r) => Number(r.toFixed(3))),
  };
}

const result = {
  date: new Date().toISOString(),
  machine: `${execFileSync('nproc').toString().trim()} cores`,
  peers: PEERS,
  connections: CONNECTIONS,
  seconds: SECONDS,
  goal: GOAL,
};
for (const name of PAIRS) {
  log(`pair "${name}"`);
  const p = await pair(name === 'router');
  p.met = p.ratio >= GOAL;
  result[name] = p;
  log(`${name}: floor ${p.floor_rps} req/s, tracker ${p.tracker_rps} req/s, ratio ${p.ratio} (goal >= ${GOAL}); CPU ms per request floor ${p.floor_cpu_ms} / tracker ${p.tracker_cpu_ms} = ${p.cpu_ratio}; round by round ${p.paired_cpu_ratios.join(' ')} (median ${p.median_paired_cpu_ratio}, 95% interval ${p.paired_cpu_interval_95.join('-')}); against the floor asking by RPC (${p.floor_rpc_rps} req/s): ratio ${p.ratio_rpc}, CPU round by round median ${p.median_paired_cpu_ratio_rpc} (${p.paired_cpu_interval_95_rpc.join('-')})`);
}
mkdirSync(OUT, { recursive: true });
writeFileSync(join(OUT, OUT_FILE), JSON.stringify(result, null, 2) + '\n');
