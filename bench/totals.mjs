// Swarm totals at 1M torrents (src/swarm_totals.rs): seeds the totals
// shards with BENCH_TORRENTS (default 1,000,000) simulated swarms through
// their own update path (report lines, 5,000 per request, as a swarm's
// report is one line), times single reports as swarms send them, and
// times /stats with the shards warm and after a restart (cold: each shard
// sums its rows once when it loads). Prices a refresh and a dashboard left
// open all day. Writes bench-results/totals.json.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, startTracker } from '../tests/helpers.mjs';

const TORRENTS = Number(process.env.BENCH_TORRENTS ?? 1_000_000);
const SHARDS = 32; // swarm_totals::SHARDS
const LINES = 5000; // totals_shard::MAX_LINES
const SINGLE_REPORTS = Number(process.env.BENCH_SINGLE_REPORTS ?? 5000);
const PRICE = { workerRequest: 0.30, doRequest: 0.15, rowWritten: 1.0, rowRead: 0.001, kvList: 5.0 };
// The dashboard polls /stats every 30 s; STATS_REFRESH (30 s) bounds how often the shards are asked.
const POLL_SECONDS = 30;
const log = (...a) => console.log('[totals]', ...a);
const OUT = join(ROOT, 'bench-results');

/** A swarm's counters: most torrents have a few peers, a few have many. */
function counters(i) {
  const r = (i * 2654435761) >>> 0;
  const peers = r % 100 === 0 ? 100 + (r % 5000) : r % 10;
  const seeders = peers ? r % (peers + 1) : 0;
  return [seeders, peers - seeders, r % 50];
}

async function timed(fn) {
  const started = performance.now();
  const value = await fn();
  return [performance.now() - started, value];
}

const dir = mkdtempSync(join(tmpdir(), 'edge-tracker-totals-'));
const vars = { STATS_REFRESH: '0' };
const result = { date: new Date().toISOString(), torrents: TORRENTS, shards: SHARDS };
try {
  let t = await startTracker({ vars, persistDir: dir });
  let ns = await t.mf.getDurableObjectNamespace('STATS');
  const shard = (n) => ns.get(ns.idFromName(`totals-${n}`));
  const post = async (n, body) => {
    const res = await shard(n).fetch('https://stats/swarms', { method: 'POST', body });
    await res.text();
    if (res.status !== 200) throw new Error(`shard ${n}: ${res.status}`);
    return { read: Number(res.headers.get('x-rows-read')), written: Number(res.headers.get('x-rows-written')) };
  };

  // Seed: the shards' update path, a line per swarm.
  const pending = Array.from({ length: SHARDS }, () => []);
  const expect = { torrents: 0, seeders: 0, leechers: 0, completed: 0 };
  let rows = { read: 0, written: 0 };
  const flush = async (n) => {
    const r = await post(n, pending[n].join('\n'));
    rows = { read: rows.read + r.read, written: rows.written + r.written };
    pending[n] = [];
  };
  const [seedMs] = await timed(async () => {
    for (let i = 0; i < TORRENTS; i++) {
      const hash = randomBytes(20);
      const [c, l, d] = counters(i);
      expect.torrents += c + l > 0 ? 1 : 0;
      expect.seeders += c;
      expect.leechers += l;
      expect.completed += d;
      const n = hash[0] % SHARDS;
      pending[n].push(`${hash.toString('hex')} ${c} ${l} ${d}`);
      if (pending[n].length === LINES) await flush(n);
    }
    for (let n = 0; n < SHARDS; n++) if (pending[n].length) await flush(n);
  });
  result.seed = { seconds: Number((seedMs / 1000).toFixed(1)), reports_per_second: Math.round(TORRENTS / (seedMs / 1000)), rows_written: rows.written };
  log('seeded', JSON.stringify(result.seed));

  // Single reports, as swarms send them: one request, one line each.
  const hashes = Array.from({ length: SINGLE_REPORTS }, () => randomBytes(20));
  let single = { read: 0, written: 0 };
  let next = 0;
  const [singleMs] = await timed(() => Promise.all(Array.from({ length: 16 }, async () => {
    while (next < hashes.length) {
      const h = hashes[next++];
      const r = await post(h[0] % SHARDS, `${h.toString('hex')} 1 2 3`);
      single = { read: single.read + r.read, written: single.written + r.written };
    }
  })));
  // The same reports again: a duplicate moves nothing and writes nothing.
  let dup = { read: 0, written: 0 };
  for (const h of hashes.slice(0, 500)) {
    const r = await post(h[0] % SHARDS, `${h.toString('hex')} 1 2 3`);
    dup = { read: dup.read + r.read, written: dup.written + r.written };
  }
  expect.torrents += SINGLE_REPORTS;
  expect.seeders += SINGLE_REPORTS;
  expect.leechers += 2 * SINGLE_REPORTS;
  expect.completed += 3 * SINGLE_REPORTS;
  result.single_report = {
    reports: SINGLE_REPORTS,
    per_second: Math.round(SINGLE_REPORTS / (singleMs / 1000)),
    ms_each: Number((singleMs / SINGLE_REPORTS).toFixed(3)),
    rows_read_each: single.read / SINGLE_REPORTS,
    rows_written_each: single.written / SINGLE_REPORTS,
    duplicate_rows_written_each: dup.written / 500,
    dollars_per_million_reports: Number((PRICE.doRequest + (single.written / SINGLE_REPORTS) * PRICE.rowWritten).toFixed(3)),
  };
  log('single reports', JSON.stringify(result.single_report));

  const stats = async () => {
    const [ms, s] = await timed(async () => (await fetch(`${t.base}/stats`)).json());
    return [ms, s];
  };
  const [warmFirstMs, s1] = await stats();
  const warm = [];
  for (let i = 0; i < 10; i++) warm.push((await stats())[0]);
  const correct = s1.torrents === expect.torrents && s1.seeders === expect.seeders && s1.leechers === expect.leechers && s1.completed === expect.completed;
  log('stats', JSON.stringify({ torrents: s1.torrents, peers: s1.peers, busiest: s1.busiest[0], correct }));
  if (!correct) throw new Error(`totals differ: got ${JSON.stringify(s1)}, expected ${JSON.stringify(expect)}`);

  // Cold: a new runtime on the same state; each shard sums its rows on load.
  await t.stop();
  t = await startTracker({ vars, persistDir: dir });
  ns = await t.mf.getDurableObjectNamespace('STATS');
  const [coldMs, s2] = await stats();
  const [afterColdMs] = await stats();
  if (s2.torrents !== expect.torrents) throw new Error('totals differ after a restart');
  await t.close();

  warm.sort((a, b) => a - b);
  const perRefreshWarm = PRICE.workerRequest + (1 + SHARDS) * PRICE.doRequest; // $ per million refreshes
  const perRefreshCold = perRefreshWarm + TORRENTS * PRICE.rowRead; // every shard reloads its rows
  const refreshesPerDay = 86400 / POLL_SECONDS;
  const listCallsOld = Math.ceil(TORRENTS / 1000);
  result.stats = {
    first_read_ms: Number(warmFirstMs.toFixed(1)),
    warm_read_ms_p50: Number(warm[5].toFixed(1)),
    cold_read_ms: Number(coldMs.toFixed(0)),
    read_after_cold_ms: Number(afterColdMs.toFixed(1)),
    correct,
    dollars_per_refresh_warm: perRefreshWarm / 1e6,
    dollars_per_refresh_cold: perRefreshCold / 1e6,
    dashboard_all_day_warm: Number(((perRefreshWarm / 1e6) * refreshesPerDay).toFixed(4)),
    dashboard_all_day_cold: Number(((perRefreshCold / 1e6) * refreshesPerDay).toFixed(4)),
    before_kv_list_calls_per_refresh: listCallsOld,
    before_dashboard_all_day: Number(((PRICE.workerRequest + PRICE.doRequest + listCallsOld * PRICE.kvList) / 1e6 * refreshesPerDay).toFixed(2)),
  };
  log('refresh', JSON.stringify(result.stats));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
mkdirSync(OUT, { recursive: true });
writeFileSync(join(OUT, 'totals.json'), JSON.stringify(result, null, 2) + '\n');
