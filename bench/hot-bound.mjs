// How close to the floor can the hot path get? One hot swarm (as
// bench/hot-swarm.mjs sends: one info hash, HOT_PEERS peers, no scrapes)
// into the floor, the tracker, and three variants of the tracker's build
// that skip a Rust call once they have its answer:
// - "canned object": the swarm object answers every announce with a copy
//   of its first answer, without calling `announceNow`;
// - "canned Worker": the Worker forwards each announce with the plan it
//   made for the same URL before (every peer joins first), without calling
//   `Front.announce`; the object still sees every peer;
// - "canned both": both; the tracker's JS and the platform's work are
//   left, and no Rust runs on the hot path.
// The variants are not trackers (every client gets the same answer); they
// bound what any change to the Rust code or its calls can win: with none
// of it, the tracker still pays its JS and its message to the object.
// A second floor shows the noise: two identical targets read this far apart
// (in runs here, up to 7%, the floor started first reading slower); each
// round's reference is the mean of the two floors' rounds.
//
// Targets take turns in short rounds (BOUND_ROUNDS of BOUND_SECONDS each,
// after BOUND_WARM_SECONDS uncounted), the order reversed every other
// round; each round's workerd CPU time per request comes from /proc, and
// the figure is the median over the rounds of each round's ratio to that
// round's reference, with a 95% interval for that median. BOUND_EPOCHS
// (default 2, each of BOUND_ROUNDS, default 8) repeats it all with fresh
// processes: a process has its own bias (two identical floors have read
// up to 9% apart), which more rounds of the same processes cannot average
// away; the interval resamples epochs, then rounds (`medianInterval`).
// BOUND_TARGETS (names, comma-separated) keeps some of the tracker's
// targets, for a long run of a few (the floors always run); BOUND_OUT
// names the file in bench-results/ (default hot-bound.json). About 9
// minutes with the defaults.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, startTracker } from '../tests/helpers.mjs';
import { CANNED_OBJECT, envNumbers, median, medianInterval, runWrk, startFloor, steadyRound, variantBuild, workerdCpu, workerdPids } from './lib.mjs';

const { PEERS, EPOCHS, ROUNDS, SECONDS, WARM_SECONDS, JOIN_SECONDS } = envNumbers('BOUND', { PEERS: 20_000, EPOCHS: 2, ROUNDS: 8, SECONDS: 2, WARM_SECONDS: 1, JOIN_SECONDS: 20 });
const OUT = join(ROOT, 'bench-results');
const OUT_FILE = process.env.BOUND_OUT ?? 'hot-bound.json';
const WANTED = process.env.BOUND_TARGETS?.split(',').map((name) => name.trim());
const wanted = (name) => WANTED === undefined || WANTED.includes(name);
const log = (...a) => console.log('[hot-bound]', ...a);

// The edit that makes the "canned Worker" variant of build/entry.mjs.
// Plans by URL: a peer's URL is the same at every announce (announce.lua),
// so the object still sees each peer, as in traffic (a single canned plan
// made it see one peer, warm in every cache).
const CANNED_WORKER = [
  '  let plan = Front.announce(env, url, ip, over);',
  "  globalThis.plans ??= new Map();\n  let plan = globalThis.plans.get(url) ?? Front.announce(env, url, ip, over);\n  if (typeof plan === 'string') globalThis.plans.set(url, plan);",
];

const mix = (mode) => ['0', mode, String(PEERS), '1'];

mkdirSync(OUT, { recursive: true });
const builds = mkdtempSync(join(OUT, 'hot-bound-'));
const trackerVars = { ENFORCE_MIN_INTERVAL: 'false', EXPOSE_COSTS: 'false' };
const stateDirs = [];
const tracker = (build) => () => {
  stateDirs.push(mkdtempSync('/dev/shm/hot-bound-'));
  return startTracker({ assets: false, build, persistDir: stateDirs.at(-1), vars: trackerVars });
};
// The kinds of target, each with how to start one (a variant's build is
// made on its first start). The floors always run: they are the reference.
const lazy = (make) => {
  let start;
  return () => (start ??= tracker(make()))();
};
const kinds = [
  ['floor', () => startFloor()],
  ['floor again', () => startFloor()],
  ['tracker', tracker(join(ROOT, 'build'))],
  ['canned object', lazy(() => variantBuild(builds, 'object', [CANNED_OBJECT]))],
  ['canned Worker', lazy(() => variantBuild(builds, 'worker', [CANNED_WORKER]))],
  ['canned both', lazy(() => variantBuild(builds, 'both', [CANNED_OBJECT, CANNED_WORKER]))],
].filter(([name]) => name.startsWith('floor') || wanted(name));
// Per kind, its rounds' CPU per request and rates, an array an epoch.
const measured = new Map(kinds.map(([name]) => [name, { cpu: [], rps: [] }]));

// One epoch: every kind started afresh (its own workerd process), joined,
// then the rounds, then stopped.
async function epoch() {
  const targets = [];
  try {
    for (const [name, start] of kinds) {
      const before = new Set(workerdPids());
      const target = await start();
      const x = { name, target, pid: workerdPids().find((p) => !before.has(p)), cpu: [], rps: [] };
      measured.get(name).cpu.push(x.cpu);
      measured.get(name).rps.push(x.rps);
      targets.push(x);
    }
    for (const x of targets) {
      const r = runWrk({ base: x.target.base, seconds: JOIN_SECONDS, connections: 64, args: mix('populate') });
      log(`${x.name}: joins, ${r.requests} requests`);
    }
    for (let i = 0; i < ROUNDS; i++) {
      for (const x of i % 2 ? [...targets].reverse() : targets) {
        let before;
        const r = steadyRound({ base: x.target.base, seconds: SECONDS, warm: WARM_SECONDS, connections: 64, args: mix('steady'), before: () => { before = workerdCpu([x.pid]); } });
        if (r.failures || r.non2xx) throw new Error(`${x.name}: ${r.failures} failures, ${r.non2xx} non-2xx`);
        x.cpu.push(((workerdCpu([x.pid]) - before) * 1e6) / r.requests);
        x.rps.push(r.rps);
      }
    }
  } finally {
    for (const x of targets) await x.target.close();
    for (const dir of stateDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  }
}

try {
  for (let e = 0; e < EPOCHS; e++) {
    if (EPOCHS > 1) log(`epoch ${e + 1} of ${EPOCHS}`);
    await epoch();
  }
} finally {
  rmSync(builds, { recursive: true, force: true });
}

// Each round's reference: the mean of the two floors' rounds.
const floors = [measured.get('floor').cpu, measured.get('floor again').cpu];
const reference = floors[0].map((rounds, e) => rounds.map((c, i) => (c + floors[1][e][i]) / 2));
const result = { date: new Date().toISOString(), peers: PEERS, epochs: EPOCHS, rounds: ROUNDS, seconds: SECONDS, targets: {} };
for (const [name, { cpu, rps }] of measured) {
  const ratios = cpu.map((rounds, e) => rounds.map((c, i) => reference[e][i] / c));
  const ratio = median(ratios.flat());
  const [low, high] = medianInterval(ratios);
  const all = cpu.flat();
  result.targets[name] = {
    median_cpu_us_per_request: Number(median(all).toFixed(1)),
    best_cpu_us_per_request: Number(Math.min(...all).toFixed(1)),
    median_rps: Math.round(median(rps.flat())),
    median_paired_ratio_to_floors: Number(ratio.toFixed(3)),
    median_interval_95: [Number(low.toFixed(3)), Number(high.toFixed(3))],
    median_ratio_by_epoch: ratios.map((r) => Number(median(r).toFixed(3))),
    // An array an epoch.
    cpu_us_per_round: cpu.map((rounds) => rounds.map((c) => Number(c.toFixed(1)))),
  };
  const epochs = EPOCHS > 1 ? `; by epoch ${result.targets[name].median_ratio_by_epoch.join(' ')}` : '';
  log(`${name.padEnd(14)} CPU per request median ${median(all).toFixed(1)} us, best ${Math.min(...all).toFixed(1)} us; ${Math.round(median(rps.flat()))} req/s; median paired ratio to the floors ${ratio.toFixed(3)} (95% interval ${low.toFixed(3)}-${high.toFixed(3)})${epochs}`);
}
writeFileSync(join(OUT, OUT_FILE), JSON.stringify(result, null, 2) + '\n');
