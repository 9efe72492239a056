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
// round's reference. Writes bench-results/hot-bound.json. About 6 minutes.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, startTracker } from '../tests/helpers.mjs';
import { envNumbers, median, runWrk, startFloor, steadyRound, workerdCpu, workerdPids } from './lib.mjs';

const { PEERS, ROUNDS, SECONDS, WARM_SECONDS, JOIN_SECONDS } = envNumbers('BOUND', { PEERS: 20_000, ROUNDS: 16, SECONDS: 2, WARM_SECONDS: 1, JOIN_SECONDS: 20 });
const OUT = join(ROOT, 'bench-results');
const log = (...a) => console.log('[hot-bound]', ...a);

// The edits that make a variant of build/entry.mjs: [what, with what].
const CANNED_OBJECT = [
  '    const outcome = this.rust.announceNow(url);',
  '    let outcome;\n    if (this.canned) outcome = this.canned.slice();\n    else { outcome = this.rust.announceNow(url); if (outcome instanceof Uint8Array) this.canned = outcome; }',
];
// Plans by URL: a peer's URL is the same at every announce (announce.lua),
// so the object still sees each peer, as in traffic (a single canned plan
// made it see one peer, warm in every cache).
const CANNED_WORKER = [
  '  let plan = Front.announce(env, url, ip, over);',
  "  globalThis.plans ??= new Map();\n  let plan = globalThis.plans.get(url) ?? Front.announce(env, url, ip, over);\n  if (typeof plan === 'string') globalThis.plans.set(url, plan);",
];

// A copy of build/ with `edits` made to its entry (under ROOT: Miniflare
// refuses module paths outside its working directory).
function variant(parent, name, edits) {
  const dir = join(parent, name);
  cpSync(join(ROOT, 'build'), dir, { recursive: true });
  let entry = readFileSync(join(dir, 'entry.mjs'), 'utf8');
  for (const [from, to] of edits) {
    if (!entry.includes(from)) throw new Error(`hot-bound: build/entry.mjs no longer has ${JSON.stringify(from)}; update the variant`);
    entry = entry.replace(from, to);
  }
  writeFileSync(join(dir, 'entry.mjs'), entry);
  return dir;
}

const mix = (mode) => ['0', mode, String(PEERS), '1'];
const targets = [];
async function add(name, start) {
  const before = new Set(workerdPids());
  const target = await start();
  const pid = workerdPids().find((p) => !before.has(p));
  targets.push({ name, target, pid, cpu: [], rps: [] });
}

mkdirSync(OUT, { recursive: true });
const builds = mkdtempSync(join(OUT, 'hot-bound-'));
const trackerVars = { ENFORCE_MIN_INTERVAL: 'false', EXPOSE_COSTS: 'false' };
const stateDirs = [];
const tracker = (build) => () => {
  stateDirs.push(mkdtempSync('/dev/shm/hot-bound-'));
  return startTracker({ assets: false, build, persistDir: stateDirs.at(-1), vars: trackerVars });
};
try {
  await add('floor', () => startFloor());
  await add('floor again', () => startFloor());
  await add('tracker', tracker(join(ROOT, 'build')));
  await add('canned object', tracker(variant(builds, 'object', [CANNED_OBJECT])));
  await add('canned Worker', tracker(variant(builds, 'worker', [CANNED_WORKER])));
  await add('canned both', tracker(variant(builds, 'both', [CANNED_OBJECT, CANNED_WORKER])));
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
  rmSync(builds, { recursive: true, force: true });
  for (const dir of stateDirs) rmSync(dir, { recursive: true, force: true });
}

const reference = targets[0].cpu.map((c, i) => (c + targets[1].cpu[i]) / 2);
const result = { date: new Date().toISOString(), peers: PEERS, rounds: ROUNDS, seconds: SECONDS, targets: {} };
for (const x of targets) {
  const ratio = median(x.cpu.map((c, i) => reference[i] / c));
  result.targets[x.name] = {
    median_cpu_us_per_request: Number(median(x.cpu).toFixed(1)),
    best_cpu_us_per_request: Number(Math.min(...x.cpu).toFixed(1)),
    median_rps: Math.round(median(x.rps)),
    median_paired_ratio_to_floors: Number(ratio.toFixed(3)),
    cpu_us_per_round: x.cpu.map((c) => Number(c.toFixed(1))),
  };
  log(`${x.name.padEnd(14)} CPU per request median ${median(x.cpu).toFixed(1)} us, best ${Math.min(...x.cpu).toFixed(1)} us; ${Math.round(median(x.rps))} req/s; median paired ratio to the floors ${ratio.toFixed(3)}`);
}
writeFileSync(join(OUT, 'hot-bound.json'), JSON.stringify(result, null, 2) + '\n');
