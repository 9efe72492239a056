// Shared by the bench scripts (run.mjs, hot-swarm.mjs, churn.mjs): the floor
// Worker, wrk, the list prices, the sums of the swarms' cost counters and
// the scripts' numeric settings from the environment.
import { spawnSync } from 'node:child_process';
import { cpSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Miniflare } from 'miniflare';
import { ROOT, assetsOptions } from '../tests/helpers.mjs';

// Workers Paid list prices, $ per million.
export const PRICE = { workerRequest: 0.30, doRequest: 0.15, rowWritten: 1.0, rowRead: 0.001, kvRead: 0.50, kvWrite: 5.0, d1RowRead: 0.001, d1RowWritten: 1.0 };
// Durable Object duration: $12.50 per million GB-s, an object billed at 128 MB.
export const DURATION_PER_MS = (0.128 * 12.50) / 1000; // $ per million announces per ms of active time each

/**
 * A script's numeric settings, each `<prefix>_<NAME>` from the environment
 * or its default: `envNumbers('HOT', { PEERS: 20_000 })` reads HOT_PEERS.
 */
export function envNumbers(prefix, defaults) {
  return Object.fromEntries(Object.entries(defaults).map(([name, fallback]) => [name, Number(process.env[`${prefix}_${name}`] ?? fallback)]));
}

/**
 * The floor Worker (bench/floor/worker.js) in its own Miniflare. With
 * `assets`, behind the same static-assets router as the tracker
 * (wrangler.toml [assets]; locally Miniflare runs that router as Workers in
 * the same process).
 */
/** The floor Worker; `shards` > 0 forwards to that many objects (bench/floor/worker.js);
 * `rpc` asks them by JS RPC instead of `fetch` (`'sized'`: with the
 * tracker's message and answer sizes).
 * `miniflare` adds options; `objectsIn` names the Worker (in another
 * process, through the dev registry) whose objects it calls. */
export async function startFloor({ assets = false, shards = 0, miniflare = {}, objectsIn, rpc = false } = {}) {
  const mf = new Miniflare({
    bindings: { SHARDS: String(shards), RPC: rpc === 'sized' || rpc === 'batched' ? rpc : rpc ? '1' : '0' },
    ...(assets ? { assets: assetsOptions() } : {}),
    modules: true,
    scriptPath: join(ROOT, 'bench/floor/worker.js'),
    // It imports the tracker's coalescing (src/worker/coalesce.mjs).
    modulesRoot: ROOT,
    modulesRules: [{ type: 'ESModule', include: ['**/*.js', '**/*.mjs'] }],
    compatibilityDate: '2026-04-20',
    durableObjects: { FLOOR: { className: rpc ? 'FloorSwarmRpc' : 'FloorSwarm', useSQLite: true, scriptName: objectsIn } },
    kvNamespaces: ['KV'],
    cf: false,
    host: '127.0.0.1',
    port: 0,
    ...miniflare,
  });
  const url = await mf.ready;
  return { base: url.href.replace(/\/$/, ''), close: () => mf.dispose() };
}

// Seconds of uncounted traffic before each measured round (BENCH_WARM_SECONDS).
export const { WARM_SECONDS } = envNumbers('BENCH', { WARM_SECONDS: 8 });

/** The pids of this process's workerd children (one per Miniflare). */
export function workerdPids() {
  return readdirSync('/proc').filter((pid) => /^\d+$/.test(pid)).filter((pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return stat.includes('(workerd)') && Number(stat.split(') ')[1].split(' ')[1]) === process.pid;
    } catch {
      return false;
    }
  });
}

/** The middle value of `values` (the upper one of an even count). */
export function median(values) {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
}

/**
 * A 95% interval for the median of `groups`' values (a group a process
 * pair, a value a round): the 2.5th and 97.5th percentiles of the medians
 * of 2,000 resamples, each drawing the groups with replacement, then the
 * values within each drawn group. A process's own bias (identical targets
 * in two processes read several percent apart) is then in the interval,
 * not hidden by many rounds of one pair. Seeded: the same rounds always
 * give the same interval.
 */
export function medianInterval(groups, resamples = 2000) {
  let seed = 0x9e3779b9;
  const pick = (array) => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    return array[Math.floor((seed / 2 ** 32) * array.length)];
  };
  const medians = [];
  for (let r = 0; r < resamples; r++) {
    medians.push(median(groups.flatMap(() => {
      const group = pick(groups);
      return group.map(() => pick(group));
    })));
  }
  medians.sort((a, b) => a - b);
  return [medians[Math.floor(resamples * 0.025)], medians[Math.floor(resamples * 0.975)]];
}

/** CPU seconds (user + system) used so far by the workerd processes `pids`. */
export function workerdCpu(pids = workerdPids()) {
  let total = 0;
  for (const pid of pids) {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    total += (Number(fields[11]) + Number(fields[12])) / 100;
  }
  return total;
}

/**
 * A measured round of steady traffic (`runWrk`), after WARM_SECONDS of the
 * same traffic that are not counted. Targets are measured in turn, so each
 * sits idle through the other's round, and the runtime evicts an object
 * idle for about 10 s: without the warm-up, every tracker round began with
 * each of its swarms reloading from storage (1,000 swarms, 100k rows: about
 * 5 s of a 20 s round), which steady traffic never does (a swarm announced
 * into every few seconds is not evicted); the floor has nothing to reload.
 * Reloading is measured on its own (bench/big-swarm.mjs). `before` runs
 * between the warm-up and the round (to read a CPU counter); `warm` sets
 * the warm-up's seconds for short rounds.
 */
export function steadyRound({ before = () => {}, warm = WARM_SECONDS, ...options }) {
  if (warm > 0) runWrk({ ...options, seconds: warm });
  before();
  return runWrk(options);
}

/** One wrk run (one thread) of bench/announce.lua; `args` go to the script. */
export function runWrk({ base, seconds, connections, args = [] }) {
  const r = spawnSync('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-s', join(ROOT, 'bench/announce.lua'), base, '--', ...args],
    { encoding: 'utf8' });
  const out = r.stdout + r.stderr;
  const rps = Number(out.match(/Requests\/sec:\s+([\d.]+)/)?.[1] ?? NaN);
  const requests = Number(out.match(/(\d+) requests in/)?.[1] ?? NaN);
  const p50 = out.match(/50%\s+([\d.]+\w+)/)?.[1];
  const p99 = out.match(/99%\s+([\d.]+\w+)/)?.[1];
  const failures = Number(out.match(/FAILURES (\d+)/)?.[1] ?? NaN);
  const errors = out.match(/Socket errors: (.*)/)?.[1] ?? 'none';
  const non2xx = Number(out.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0);
  return { rps, requests, p50, p99, failures, errors, non2xx, raw: out };
}

export async function pool(items, concurrency, fn) {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

// Each swarm reports its instance's running totals; an evicted or
// restarted object starts again from zero, so totals are kept per
// instance (a random number: one shard of small swarms answers for many
// torrents, so not per torrent); replies may arrive out of order, so each
// instance's latest totals are those with the most requests.
export function observe(usage, u) {
  const key = u.instance;
  const last = usage.get(key);
  if (!last || u.requests >= last.requests) usage.set(key, u);
}

export function sumUsage(usage) {
  const total = {};
  for (const u of usage.values()) {
    for (const [k, v] of Object.entries(u)) if (k !== 'instance') total[k] = (total[k] ?? 0) + v;
  }
  return total;
}

export function diff(a, b) {
  const d = {};
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) d[k] = (b[k] ?? 0) - (a[k] ?? 0);
  return d;
}

/** Billable work per announce, priced: $ per million and its breakdown. */
export function dollars(perAnnounce) {
  const p = perAnnounce;
  const items = {
    worker_requests: 1 * PRICE.workerRequest,
    // The swarm's requests and alarms, its deliveries to a ledger shard
    // (private mode; the shard's alarms are counted in `alarms`) and a
    // swarm shard's requests to torrents' own objects (SWARM_SHARDS).
    do_requests: (p.requests + p.alarms + (p.ledger_requests ?? 0) + (p.object_requests ?? 0)) * PRICE.doRequest,
    rows_written: p.written * PRICE.rowWritten,
    rows_read: p.read * PRICE.rowRead,
    kv_reads: (p.kv_reads + (p.worker_kv_reads ?? 0)) * PRICE.kvRead,
    kv_writes: p.kv_writes * PRICE.kvWrite,
    // A report to a totals shard with each publish: a DO request and its
    // row (bench/totals.mjs measures 1 row written per changed report).
    stats_reports: (p.stats_reports ?? 0) * (PRICE.doRequest + PRICE.rowWritten),
    d1_rows_read: p.d1_rows_read * PRICE.d1RowRead,
    d1_rows_written: p.d1_rows_written * PRICE.d1RowWritten,
    // Wall-clock time of each request (as the Worker saw it) and of the
    // alarms (README: what keeps an object from hibernating).
    do_duration: ((p.do_ms ?? 0) + (p.alarm_ms ?? 0)) * DURATION_PER_MS,
  };
  const total = Object.values(items).reduce((a, b) => a + b, 0);
  return { per_million: Number(total.toFixed(4)), breakdown: Object.fromEntries(Object.entries(items).map(([k, v]) => [k, Number(v.toFixed(5))])) };
}

// The edit that makes the "canned object" variant of build/entry.mjs
// ([what, with what]): the swarm object answers every announce with a copy
// of its first answer instead of calling `announceNow` (hot-bound,
// hot-split).
export const CANNED_OBJECT = [
  '    const outcome = this.rust.announceNow(url);',
  '    let outcome;\n    if (this.canned) outcome = this.canned.slice();\n    else { outcome = this.rust.announceNow(url); if (outcome instanceof Uint8Array) this.canned = outcome; }',
];

/** A copy of build/ in `parent`/`name` with `edits` made to its entry (under
 * ROOT: Miniflare refuses module paths outside its working directory). */
export function variantBuild(parent, name, edits) {
  const dir = join(parent, name);
  cpSync(join(ROOT, 'build'), dir, { recursive: true });
  let entry = readFileSync(join(dir, 'entry.mjs'), 'utf8');
  for (const [from, to] of edits) {
    if (!entry.includes(from)) throw new Error(`bench: build/entry.mjs no longer has ${JSON.stringify(from)}; update the variant`);
    entry = entry.replace(from, to);
  }
  writeFileSync(join(dir, 'entry.mjs'), entry);
  return dir;
}
