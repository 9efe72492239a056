// npm run soak: a sustained, bounded load on the tracker (default 5
// minutes after every peer joined) with churn: peers time out and rejoin
// all the time. Every slice records throughput, failures and the local
// runtime's memory (RSS of workerd); the run passes when there are no
// errors and memory is flat. Writes bench-results/soak.json.
import { spawnSync, execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, startTracker } from '../tests/helpers.mjs';

const SECONDS = Number(process.env.SOAK_SECONDS ?? 300);
const SLICE = Number(process.env.SOAK_SLICE_SECONDS ?? 30);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64);
const OUT = join(ROOT, 'bench-results');
mkdirSync(OUT, { recursive: true });

/** Resident memory (MiB) of the workerd processes this run started. */
function workerdRss() {
  const out = execFileSync('ps', ['-eo', 'pid,ppid,rss,comm'], { encoding: 'utf8' });
  let kib = 0;
  for (const line of out.split('\n').slice(1)) {
    const [pid, ppid, rss, comm] = line.trim().split(/\s+/);
    if (comm === 'workerd' && Number(ppid) === process.pid) kib += Number(rss);
  }
  return Math.round(kib / 1024);
}

function wrk(base, seconds, ...args) {
  const r = spawnSync('wrk', ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', '-s', join(ROOT, 'bench/announce.lua'), base, '--', ...args],
    { encoding: 'utf8' });
  const out = r.stdout + r.stderr;
  return {
    requests: Number(out.match(/(\d+) requests in/)?.[1] ?? NaN),
    rps: Number(out.match(/Requests\/sec:\s+([\d.]+)/)?.[1] ?? NaN),
    p99: out.match(/99%\s+([\d.]+\w+)/)?.[1],
    failures: Number(out.match(/FAILURES (\d+)/)?.[1] ?? NaN),
    socket_errors: out.match(/Socket errors: (.*)/)?.[1] ?? 'none',
    non2xx: Number(out.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0),
  };
}

// Peers time out after 90 s but each is drawn about every 100 s: a
// constant stream of joins, expiries and rejoins, not just re-announces.
const tracker = await startTracker({
  vars: { ENFORCE_MIN_INTERVAL: 'false', INTERVAL: '60', PEER_GRACE: '30', PUBLISH_WINDOW: '10' },
});
const slices = [];
try {
  const start = workerdRss();
  const joined = wrk(tracker.base, 150, '0.1', 'populate');
  console.log(`[soak] joined: ${joined.rps} req/s, rss ${workerdRss()} MiB (${start} MiB at start)`);
  for (let t = 0; t < SECONDS; t += SLICE) {
    const r = wrk(tracker.base, SLICE);
    const slice = { at_s: t + SLICE, ...r, rss_mib: workerdRss() };
    slices.push(slice);
    console.log('[soak]', JSON.stringify(slice));
  }
  const errors = slices.reduce((n, s) => n + s.failures + s.non2xx + (s.socket_errors === 'none' ? 0 : 1), 0);
  const rss = slices.map((s) => s.rss_mib);
  const firstHalf = rss.slice(0, Math.ceil(rss.length / 2));
  const secondHalf = rss.slice(Math.ceil(rss.length / 2));
  const result = {
    date: new Date().toISOString(),
    seconds: SECONDS,
    requests: slices.reduce((n, s) => n + s.requests, 0),
    mean_rps: Math.round(slices.reduce((n, s) => n + s.rps, 0) / slices.length),
    errors,
    rss_mib: { at_start: start, after_join: joined && rss[0], min: Math.min(...rss), max: Math.max(...rss),
      first_half_max: Math.max(...firstHalf), second_half_max: Math.max(...secondHalf) },
    flat: Math.max(...secondHalf) <= Math.max(...firstHalf) * 1.1,
    slices,
  };
  writeFileSync(join(OUT, 'soak.json'), JSON.stringify(result, null, 2));
  console.log(`[soak] ${result.requests} requests, ${result.mean_rps} req/s, ${errors} errors, rss ${result.rss_mib.min}-${result.rss_mib.max} MiB, flat: ${result.flat}`);
  process.exitCode = errors === 0 && result.flat ? 0 : 1;
} finally {
  await tracker.close();
}
