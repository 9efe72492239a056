// One big swarm in the real runtime (workerd through Miniflare): load one
// torrent with BIG_SWARM_PEERS peers (default 200,000) by HTTP announces,
// then measure the join rate, the steady re-announce rate and answer time
// into that one object, its memory (workerd's RSS, and the isolate's wasm
// memory, which holds the swarm), and the reload after a restart (a new
// runtime on the same persisted state: the first announce loads every
// peer from SQLite). Extrapolates to 1M peers in a 128 MB isolate.
// Writes bench-results/big-swarm.json. Bounded: about 2-4 minutes.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, startTracker } from '../tests/helpers.mjs';

const PEERS = Number(process.env.BIG_SWARM_PEERS ?? 200_000);
// A bound on the loading time: on a machine too busy to load PEERS within
// it, the rest of the bench runs with the peers loaded so far (reported).
const MAX_LOAD_SECONDS = Number(process.env.BIG_SWARM_MAX_LOAD_SECONDS ?? 1200);
const CONCURRENCY = Number(process.env.BIG_SWARM_CONCURRENCY ?? 32);
// The lead's change keeps the peer id beside a new entry key: 20 B more
// per peer than the 61 B the native bench measures today.
const PLANNED_EXTRA_BYTES = 20;
const ISOLATE_BYTES = 128 * 1024 * 1024;
// A reload reads every peer row at once (`to_array`): the rows live as JS
// objects ({id, rec} with two ArrayBuffers) while they become Rust rows.
// Measured in Node's V8 for that shape: 227 B of heap + 88 B of buffers.
const JS_ROW_BYTES = 315;
const OUT = join(ROOT, 'bench-results');

const log = (...a) => console.log('[big-swarm]', ...a);
const MB = (b) => Number((b / 1024 / 1024).toFixed(1));
const HASH = Buffer.alloc(20, 0xb5);
const hashQ = [...HASH].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');

function workerdRss() {
  // Miniflare runs one workerd process, a child of this one.
  const out = execFileSync('ps', ['--ppid', String(process.pid), '-o', 'pid=,comm='], { encoding: 'utf8' });
  let total = 0;
  for (const line of out.trim().split('\n')) {
    const [pid, comm] = line.trim().split(/\s+/);
    if (!comm?.includes('workerd')) continue;
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
    total += Number(m?.[1] ?? 0) * 1024;
  }
  return total;
}

const ip = (i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
const peerId = (i) => `-BS0001-${String(i).padStart(12, '0')}`;

async function announce(base, i, event) {
  const url = `${base}/announce?info_hash=${hashQ}&peer_id=${peerId(i)}&port=${10000 + (i % 50000)}`
    + `&uploaded=0&downloaded=0&left=${i % 2 ? 1000 : 0}&compact=1&numwant=50${event ? `&event=${event}` : ''}`;
  const started = performance.now();
  const res = await fetch(url, { headers: { 'cf-connecting-ip': ip(i) } });
  const body = Buffer.from(await res.arrayBuffer());
  const ms = performance.now() - started;
  if (res.status !== 200 || body.subarray(0, 18).toString() === 'd14:failure reason') {
    throw new Error(`announce ${i} failed: ${res.status} ${body.toString('latin1').slice(0, 120)}`);
  }
  return { ms, wasm: Number(res.headers.get('x-wasm-memory') ?? 0), doMs: Number(res.headers.get('x-do-ms') ?? 0) };
}

function percentile(sorted, p) {
  return Number(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))].toFixed(2));
}

/** Runs `next()` for work items with `CONCURRENCY` in flight; returns latencies and elapsed seconds. */
async function drive(count, fn) {
  const latencies = [];
  let next = 0;
  let last;
  const started = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < count) {
      const r = await fn(next++);
      latencies.push(r.ms);
      last = r;
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { seconds, rate: Math.round(count / seconds), p50_ms: percentile(latencies, 0.5), p99_ms: percentile(latencies, 0.99), last };
}

const dir = mkdtempSync(join(tmpdir(), 'edge-tracker-big-'));
const vars = { ENFORCE_MIN_INTERVAL: 'false', EXPOSE_COSTS: 'true', MAX_PEERS: String(Math.max(PEERS, 500_000)) };
const result = { date: new Date().toISOString(), peers: PEERS, concurrency: CONCURRENCY };
try {
  let t = await startTracker({ vars, persistDir: dir });
  // One announce into another torrent loads the module: the baseline.
  await fetch(`${t.base}/announce?info_hash=${'%01'.repeat(20)}&peer_id=${peerId(0)}&port=1`, { headers: { 'cf-connecting-ip': '10.255.0.1' } }).then((r) => r.arrayBuffer());
  const rssBefore = workerdRss();
  const first = await announce(t.base, 0, 'started');
  const wasmBefore = first.wasm;
  log(`workerd RSS ${MB(rssBefore)} MB, wasm memory ${MB(wasmBefore)} MB before loading`);

  // Joins, in batches so memory can be read along the way.
  const batches = [];
  const batch = PEERS / 4;
  const loadDeadline = performance.now() + MAX_LOAD_SECONDS * 1000;
  for (let b = 0; b < 4 && performance.now() < loadDeadline; b++) {
    const r = await drive(batch - (b === 0 ? 1 : 0), (k) => announce(t.base, b * batch + k + (b === 0 ? 1 : 0), 'started'));
    batches.push({ peers: (b + 1) * batch, rate: r.rate, p50_ms: r.p50_ms, p99_ms: r.p99_ms, wasm_mb: MB(r.last.wasm), rss_mb: MB(workerdRss()) });
    log(`joined ${(b + 1) * batch}: ${r.rate}/s, p50 ${r.p50_ms} ms, p99 ${r.p99_ms} ms, wasm ${MB(r.last.wasm)} MB, RSS ${batches.at(-1).rss_mb} MB`);
  }
  const loaded = batches.at(-1).peers;
  const joinSeconds = batches.reduce((s, b) => s + batch / b.rate, 0);
  result.loaded = loaded;
  result.join = { rate: Math.round(loaded / joinSeconds), seconds: Number(joinSeconds.toFixed(1)), batches };

  // Steady re-announces of random listed peers (numwant 50).
  const reannounces = Number(process.env.BIG_SWARM_REANNOUNCES ?? 20_000);
  const s = await drive(reannounces, () => announce(t.base, Math.floor(Math.random() * loaded), ''));
  result.steady = { announces: reannounces, rate: s.rate, p50_ms: s.p50_ms, p99_ms: s.p99_ms, do_ms_last: s.last.doMs };
  log(`steady re-announces: ${s.rate}/s, p50 ${s.p50_ms} ms, p99 ${s.p99_ms} ms`);
  const wasmLoaded = s.last.wasm;
  const rssLoaded = workerdRss();
  result.memory = {
    workerd_rss_before_mb: MB(rssBefore),
    workerd_rss_loaded_mb: MB(rssLoaded),
    wasm_before_mb: MB(wasmBefore),
    wasm_loaded_mb: MB(wasmLoaded),
    wasm_bytes_per_peer: Number(((wasmLoaded - wasmBefore) / loaded).toFixed(1)),
    rss_bytes_per_peer: Number(((rssLoaded - rssBefore) / loaded).toFixed(1)),
  };
  log('memory', JSON.stringify(result.memory));

  // Restart: a new runtime on the same state; the first announce reloads every peer.
  await t.stop();
  t = await startTracker({ vars, persistDir: dir });
  await fetch(`${t.base}/announce?info_hash=${'%01'.repeat(20)}&peer_id=${peerId(1)}&port=1`, { headers: { 'cf-connecting-ip': '10.255.0.2' } }).then((r) => r.arrayBuffer());
  const rssRestarted = workerdRss();
  const reload = await announce(t.base, 1, '');
  const again = await announce(t.base, 2, '');
  result.reload = {
    first_announce_ms: Number(reload.ms.toFixed(1)),
    second_announce_ms: Number(again.ms.toFixed(2)),
    wasm_after_reload_mb: MB(again.wasm),
    wasm_reload_bytes_per_peer: Number(((again.wasm - wasmBefore) / loaded).toFixed(1)),
    workerd_rss_restarted_mb: MB(rssRestarted),
    workerd_rss_after_reload_mb: MB(workerdRss()),
  };
  log('reload', JSON.stringify(result.reload));
  await t.close();

  // 1M peers. Steady: the wasm high-water per peer (the peer vectors and
  // index grow by doubling, and wasm memory never shrinks). Reload: the
  // wasm high-water after a reload plus the rows' JS objects, alive at once.
  const native = JSON.parse(readFileSync(join(OUT, 'native-memory.json'), 'utf8'));
  const steadyPerPeer = result.memory.wasm_bytes_per_peer + PLANNED_EXTRA_BYTES;
  const reloadPerPeer = result.reload.wasm_reload_bytes_per_peer + JS_ROW_BYTES + PLANNED_EXTRA_BYTES;
  result.extrapolation_1m = {
    native_bytes_per_peer: native.bytes_per_peer,
    planned_bytes_per_peer: Number((native.bytes_per_peer + PLANNED_EXTRA_BYTES).toFixed(1)),
    planned_swarm_mb: MB((native.bytes_per_peer + PLANNED_EXTRA_BYTES) * 1_000_000),
    steady_bytes_per_peer: steadyPerPeer,
    steady_mb: MB(wasmBefore + steadyPerPeer * 1_000_000),
    reload_peak_bytes_per_peer: reloadPerPeer,
    reload_peak_mb: MB(wasmBefore + reloadPerPeer * 1_000_000),
    isolate_mb: MB(ISOLATE_BYTES),
    peers_that_fit_steady: Math.floor((ISOLATE_BYTES - wasmBefore) / steadyPerPeer),
    peers_that_fit_reload: Math.floor((ISOLATE_BYTES - wasmBefore) / reloadPerPeer),
    reload_ms: Math.round(result.reload.first_announce_ms * (1_000_000 / loaded)),
  };
  log('1M peers', JSON.stringify(result.extrapolation_1m));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
mkdirSync(OUT, { recursive: true });
writeFileSync(join(OUT, 'big-swarm.json'), JSON.stringify(result, null, 2) + '\n');
