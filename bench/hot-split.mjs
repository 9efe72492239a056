// One hot swarm, the object's own time: the limit of a deployed hot
// torrent. The other hot benches run the Worker and its objects in one
// workerd process, so their figure is the two together. Here each target
// runs as two processes, as deployed: the Worker in one, its objects in
// another (Miniflare's dev registry: the Worker's calls reach the objects'
// process over workerd's debug port, capnp RPC, as a deployed object takes
// calls from the Worker's machine). Each process's CPU time per request
// (/proc) is read apart; the objects' process's is the object's own time,
// whose inverse bounds the rate into one object.
//
// Traffic as bench/hot-swarm.mjs sends it (one info hash, SPLIT_PEERS
// peers, no scrapes). Per epoch (SPLIT_EPOCHS, fresh processes each) the
// floor pair and the tracker pair start side by side; every peer joins;
// then SPLIT_ROUNDS rounds a target of SPLIT_SECONDS, after
// SPLIT_WARM_SECONDS uncounted, alternating, the order reversed every
// other round. The figure: the median over rounds of the floor's object
// time over the tracker's (the tracker's share of the floor's rate into
// one object), with a 95% interval (`medianInterval`). The tracker's
// Worker asks its objects by JS RPC; the floor asks by `fetch`, as it
// always has. A third target, "floor (RPC)", is the floor asking by RPC
// too: the same ratio against it is reported beside the goal's.
//
// Locally the Worker's process costs 4-5 times its object's, so it is the
// one that saturates: the objects' process is busy a fifth of the time and
// each request finds its caches cold, which a saturated hot object would
// not. Writes bench-results/hot-split.json (SPLIT_OUT).
//
// Two more targets bound the reading against the RPC floor (SPLIT_EXTRA,
// comma-separated; both by default, '' for none): "floor-rpc-sized", the
// RPC floor with the tracker's message and answer sizes; "tracker-canned",
// the tracker whose object answers every announce with a copy of its
// first answer instead of calling into Rust; "tracker-single", the tracker
// with SWARM_BATCH=1, each announce its own call to the object, as before
// coalescing (README: design notes, "Coalesced announces"). About 16
// minutes with all three. One more, not by default: "floor-rpc-batched",
// the RPC floor coalescing its calls as the tracker does.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, startTracker } from '../tests/helpers.mjs';
import { CANNED_OBJECT, envNumbers, median, medianInterval, runWrk, startFloor, variantBuild, workerdCpu, workerdPids } from './lib.mjs';

const { PEERS, EPOCHS, ROUNDS, SECONDS, WARM_SECONDS, JOIN_SECONDS, CONNECTIONS } = envNumbers('SPLIT',
  { PEERS: 20_000, EPOCHS: 2, ROUNDS: 4, SECONDS: 10, WARM_SECONDS: 3, JOIN_SECONDS: 40, CONNECTIONS: 64 });
const OUT = join(ROOT, 'bench-results');
const OUT_FILE = process.env.SPLIT_OUT ?? 'hot-split.json';
const GOAL = 0.9;
const log = (...a) => console.log('[hot-split]', ...a);
const mix = (mode) => ['0', mode, String(PEERS), '1'];
const TRACKER_VARS = { ENFORCE_MIN_INTERVAL: 'false', EXPOSE_COSTS: 'false' };
const EXTRA = (process.env.SPLIT_EXTRA ?? 'floor-rpc-sized,tracker-canned,tracker-single').split(',').map((n) => n.trim()).filter(Boolean);
const TARGETS = ['floor', 'tracker', 'floor-rpc', ...EXTRA];

let canned;

/** The pid of the workerd process `start()` adds. */
async function withPid(start) {
  const before = new Set(workerdPids());
  const target = await start();
  const pid = workerdPids().find((p) => !before.has(p));
  if (pid === undefined) throw new Error('hot-split: no new workerd process');
  return { ...target, pid };
}

/** A target as two processes: its objects (`objects`) and its Worker. */
async function startPair(name, registry, state) {
  const objectsName = `${name}-objects`;
  const shared = (role) => ({ unsafeDevRegistryPath: registry, name: role === 'objects' ? objectsName : `${name}-worker` });
  if (!name.startsWith('tracker')) {
    const rpc = { 'floor-rpc-sized': 'sized', 'floor-rpc-batched': 'batched' }[name] ?? name === 'floor-rpc';
    const objects = await withPid(() => startFloor({ rpc, miniflare: shared('objects') }));
    const worker = await withPid(() => startFloor({ rpc, miniflare: shared('worker'), objectsIn: objectsName }));
    return { name, objects, worker };
  }
  const dir = (role) => mkdtempSync(join(state, `${role}-`));
  const build = name === 'tracker-canned' ? (canned ??= variantBuild(mkdtempSync(join(ROOT, 'bench-results', 'hot-split-')), 'canned', [CANNED_OBJECT])) : join(ROOT, 'build');
  const objects = await withPid(() => startTracker({ assets: false, build, persistDir: dir('objects'), vars: TRACKER_VARS, miniflare: shared('objects') }));
  // The Worker's swarm objects, shards and stats are the other process's.
  const external = (className) => ({ className, scriptName: objectsName, useSQLite: true });
  const durableObjects = { SWARMS: external('SwarmObject'), SHARDS: external('ShardObject'), STATS: external('StatsObject') };
  const vars = name === 'tracker-single' ? { ...TRACKER_VARS, SWARM_BATCH: '1' } : TRACKER_VARS;
  const worker = await withPid(() => startTracker({ assets: false, persistDir: dir('worker'), vars, durableObjects, miniflare: shared('worker') }));
  return { name, objects, worker };
}

/** One measured round: each process's CPU us per request. */
function round(pair) {
  runWrk({ base: pair.worker.base, seconds: WARM_SECONDS, connections: CONNECTIONS, args: mix('random') });
  const [w0, o0] = [workerdCpu([pair.worker.pid]), workerdCpu([pair.objects.pid])];
  const r = runWrk({ base: pair.worker.base, seconds: SECONDS, connections: CONNECTIONS, args: mix('random') });
  const [w1, o1] = [workerdCpu([pair.worker.pid]), workerdCpu([pair.objects.pid])];
  const perRequest = (cpu) => +((cpu * 1e6) / r.requests).toFixed(1);
  return { rps: r.rps, requests: r.requests, failures: r.failures, non2xx: r.non2xx, errors: r.errors,
    worker_us: perRequest(w1 - w0), object_us: perRequest(o1 - o0) };
}

async function epoch(e, registry, state) {
  const pairs = [];
  try {
    for (const name of TARGETS) pairs.push(await startPair(name, registry, state));
    for (const pair of pairs) {
      const r = runWrk({ base: pair.worker.base, seconds: pair.name.startsWith('tracker') ? JOIN_SECONDS : 5, connections: CONNECTIONS, args: mix('populate') });
      log(`epoch ${e + 1}: ${pair.name} joined (${r.rps} req/s, failures ${r.failures}, non-2xx ${r.non2xx})`);
    }
    const rounds = Object.fromEntries(TARGETS.map((name) => [name, []]));
    for (let i = 0; i < ROUNDS; i++) {
      for (const pair of i % 2 === 0 ? pairs : [...pairs].reverse()) {
        const r = round(pair);
        log(`epoch ${e + 1} round ${i + 1}: ${pair.name} ${r.rps} req/s, object ${r.object_us} us, Worker ${r.worker_us} us a request, failures ${r.failures}, non-2xx ${r.non2xx}, socket errors ${r.errors}`);
        rounds[pair.name].push(r);
      }
    }
    return rounds;
  } finally {
    for (const pair of pairs) {
      await pair.worker.close();
      await pair.objects.close();
    }
  }
}

mkdirSync(OUT, { recursive: true });
const epochs = [];
for (let e = 0; e < EPOCHS; e++) {
  const registry = mkdtempSync('/tmp/hot-split-registry-');
  const state = mkdtempSync('/dev/shm/hot-split-');
  try {
    epochs.push(await epoch(e, registry, state));
  } finally {
    rmSync(registry, { recursive: true, force: true });
    rmSync(state, { recursive: true, force: true });
  }
}
if (canned !== undefined) rmSync(join(canned, '..'), { recursive: true, force: true });

// Each round's ratio: the floor's object time in the same round pair over
// the tracker's (above 1: the tracker's object is the cheaper).
// `ref`'s figure over `name`'s, round pair by round pair, an array an epoch.
const pairRatios = (ref, name, field = 'object_us') =>
  epochs.map((ep) => ep[name].map((r, i) => +(ep[ref][i][field] / r[field]).toFixed(3)));
const ratios = pairRatios('floor', 'tracker');
const rpcRatios = pairRatios('floor-rpc', 'tracker');
const workerRatios = pairRatios('floor', 'tracker', 'worker_us');
const all = ratios.flat();
const bad = epochs.flatMap((ep) => ep.tracker).filter((r) => r.failures > 0 || r.non2xx > 0).length;
// The median over every round of one target's figure (`object_us`, `worker_us`).
const medianOf = (name, field) => median(epochs.flatMap((ep) => ep[name].map((r) => r[field])));
const summary = {
  object_ratio: median(all),
  object_ratio_interval: medianInterval(ratios),
  object_ratio_by_epoch: ratios.map(median),
  worker_ratio: median(workerRatios.flat()),
  object_ratio_to_rpc_floor: median(rpcRatios.flat()),
  object_ratio_to_rpc_floor_interval: medianInterval(rpcRatios),
  rpc_floor_object_us: medianOf('floor-rpc', 'object_us'),
  rpc_floor_worker_us: medianOf('floor-rpc', 'worker_us'),
  floor_object_us: medianOf('floor', 'object_us'),
  tracker_object_us: medianOf('tracker', 'object_us'),
  floor_worker_us: medianOf('floor', 'worker_us'),
  tracker_worker_us: medianOf('tracker', 'worker_us'),
  tracker_rounds_with_failures: bad,
  // Each extra target: its object's time, and the floor (RPC)'s over it.
  extra: Object.fromEntries(EXTRA.map((name) => [name, {
    object_us: medianOf(name, 'object_us'),
    rpc_floor_over_it: median(pairRatios('floor-rpc', name).flat()),
  }])),
  goal: GOAL,
  met: median(all) >= GOAL,
};
writeFileSync(join(OUT, OUT_FILE), JSON.stringify({
  when: new Date().toISOString(),
  method: 'Worker and objects in two workerd processes (dev registry); CPU per request of each from /proc; ratio = floor object us / tracker object us per round pair; the tracker asks its objects by RPC, the floor by fetch, floor-rpc by RPC',
  settings: { PEERS, EPOCHS, ROUNDS, SECONDS, WARM_SECONDS, JOIN_SECONDS, CONNECTIONS },
  summary, ratios, rpcRatios, epochs,
}, null, 2));
log(`object's own time: floor ${summary.floor_object_us} us, tracker ${summary.tracker_object_us} us a request; ratio ${summary.object_ratio} (95% ${summary.object_ratio_interval.join('-')}; by epoch ${summary.object_ratio_by_epoch.join(', ')}); goal ${GOAL}: ${summary.met ? 'met' : 'not met'}`);
log(`against the floor asking by RPC too: its object ${summary.rpc_floor_object_us} us; ratio ${summary.object_ratio_to_rpc_floor} (95% ${summary.object_ratio_to_rpc_floor_interval.join('-')})`);
for (const [name, x] of Object.entries(summary.extra)) log(`${name}: its object ${x.object_us} us; the floor (RPC) over it ${x.rpc_floor_over_it}`);
log(`the Worker's process: floor-rpc ${summary.rpc_floor_worker_us} us; floor ${summary.floor_worker_us} us, tracker ${summary.tracker_worker_us} us a request (ratio ${summary.worker_ratio})`);
