// npm run soak: minutes of sustained, paced load on the tracker, with
// churn: peers join, re-announce, complete, stop, and time out and rejoin
// all the time (INTERVAL 60 s, PEER_GRACE 30 s, while each peer comes back
// about every 70 s). Every reply is checked. The local runtime's memory
// (RSS of workerd) is sampled every 10 s. The run passes with zero errors
// and flat memory. Writes bench-results/soak.json.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import bencode from 'bencode';
import { ROOT, startTracker, escapeBytes } from '../tests/helpers.mjs';

const SECONDS = Number(process.env.SOAK_SECONDS ?? 300);
const RATE = Number(process.env.SOAK_RATE ?? 300); // requests per second
const TORRENTS = 200;
const PEERS = 20_000;
const OUT = join(ROOT, 'bench-results');
mkdirSync(OUT, { recursive: true });

/** Resident memory (MiB) of the workerd processes this run started. */
function workerdRss() {
  const out = execFileSync('ps', ['-eo', 'pid,ppid,rss,comm'], { encoding: 'utf8' });
  let kib = 0;
  for (const line of out.split('\n').slice(1)) {
    const [, ppid, rss, comm] = line.trim().split(/\s+/);
    if (comm === 'workerd' && Number(ppid) === process.pid) kib += Number(rss);
  }
  return Math.round(kib / 1024);
}

const hashes = Array.from({ length: TORRENTS }, (_, i) => {
  const b = Buffer.alloc(20);
  for (let j = 0; j < 20; j++) b[j] = (i * 131 + j * 251 + 7) & 255;
  b.writeUInt16BE(i, 0);
  return escapeBytes(b);
});
const peers = Array.from({ length: PEERS }, (_, n) => ({
  hash: hashes[n % TORRENTS],
  id: escapeBytes(Buffer.from(`-SK0001-${String(n).padStart(12, '0')}`)),
  ip: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`,
  port: 10000 + (n % 50000),
  left: n % 2 ? 1_000_000 : 0,
  joined: false,
  up: 0,
}));

const stats = { requests: 0, errors: 0, failures: {}, latencies: [] };
async function one() {
  let path;
  let ip = '10.255.0.1';
  if (Math.random() < 0.1) {
    path = `/scrape?info_hash=${hashes[Math.floor(Math.random() * TORRENTS)]}`;
  } else {
    const p = peers[Math.floor(Math.random() * PEERS)];
    ip = p.ip;
    let event = p.joined ? '' : 'started';
    const r = Math.random();
    if (p.joined && r < 0.05) event = 'stopped';
    else if (p.joined && p.left > 0 && r < 0.15) { event = 'completed'; p.left = 0; }
    p.up += 16384;
    path = `/announce?info_hash=${p.hash}&peer_id=${p.id}&port=${p.port}&uploaded=${p.up}&downloaded=0` +
      `&left=${p.left}&compact=1&numwant=50${event ? `&event=${event}` : ''}`;
    p.joined = event !== 'stopped';
  }
  const t0 = performance.now();
  try {
    const res = await fetch(`${base}${path}`, { headers: { 'cf-connecting-ip': ip }, signal: AbortSignal.timeout(10_000) });
    const body = Buffer.from(await res.arrayBuffer());
    const reason = res.status === 200 ? bencode.decode(body)['failure reason'] : `HTTP ${res.status}`;
    if (reason) {
      const key = Buffer.from(reason).toString();
      stats.failures[key] = (stats.failures[key] ?? 0) + 1;
      stats.errors++;
    }
  } catch (e) {
    stats.failures[e.name] = (stats.failures[e.name] ?? 0) + 1;
    stats.errors++;
  }
  stats.latencies.push(performance.now() - t0);
  stats.requests++;
}

// Peers time out after 90 s; the vars keep the alarms busy too.
const tracker = await startTracker({
  vars: { ENFORCE_MIN_INTERVAL: 'false', INTERVAL: '60', PEER_GRACE: '30', PUBLISH_WINDOW: '10' },
});
const base = tracker.base;
const samples = [];
const inflight = new Set();
try {
  const start = Date.now();
  let sent = 0;
  let nextSample = 0;
  while (Date.now() - start < SECONDS * 1000) {
    const elapsed = (Date.now() - start) / 1000;
    while (sent < elapsed * RATE) {
      const p = one().finally(() => inflight.delete(p));
      inflight.add(p);
      sent++;
    }
    if (elapsed >= nextSample) {
      const lat = stats.latencies.splice(0).sort((a, b) => a - b);
      const sample = { at_s: Math.round(elapsed), rss_mib: workerdRss(), requests: stats.requests, errors: stats.errors,
        inflight: inflight.size, p50_ms: Math.round(lat[Math.floor(lat.length / 2)] ?? 0), p99_ms: Math.round(lat[Math.floor(lat.length * 0.99)] ?? 0) };
      samples.push(sample);
      console.log('[soak]', JSON.stringify(sample));
      nextSample += 10;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  await Promise.all(inflight);
  const rss = samples.slice(3).map((s) => s.rss_mib); // after 30 s of warm-up
  const half = Math.ceil(rss.length / 2);
  const result = {
    date: new Date().toISOString(),
    seconds: SECONDS,
    rate: RATE,
    torrents: TORRENTS,
    peers: PEERS,
    requests: stats.requests,
    achieved_rps: Math.round(stats.requests / SECONDS),
    errors: stats.errors,
    failures: stats.failures,
    rss_mib: { min: Math.min(...rss), max: Math.max(...rss), first_half_max: Math.max(...rss.slice(0, half)), second_half_max: Math.max(...rss.slice(half)) },
    samples,
  };
  result.flat = result.rss_mib.second_half_max <= result.rss_mib.first_half_max * 1.05 + 8;
  writeFileSync(join(OUT, 'soak.json'), JSON.stringify(result, null, 2));
  console.log(`[soak] ${result.requests} requests in ${SECONDS} s (${result.achieved_rps}/s), ${result.errors} errors, ` +
    `rss ${result.rss_mib.min}-${result.rss_mib.max} MiB, flat: ${result.flat}`);
  process.exitCode = result.errors === 0 && result.flat ? 0 : 1;
} finally {
  await tracker.close();
}
