// Operations: /stats (JSON) and /metrics (Prometheus) agree with the
// traffic served, counts reach storage in batches rather than per request,
// and the structured logs are JSON lines that never carry a secret.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  startTracker, announce, scrape, get, peerId, randomHash, eventually, escapeBytes, text, ADMIN_TOKEN,
} from './helpers.mjs';
import { makeTorrentFromData } from './torrent.mjs';

const stats = async (base) => {
  const res = await fetch(`${base}/stats`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /application\/json/);
  return res.json();
};

/**
 * Parses the Prometheus text exposition format strictly enough to catch a
 * malformed line: returns { samples: Map("name{labels}" -> value), types, helps }.
 */
function parsePrometheus(text) {
  const samples = new Map();
  const types = new Map();
  const helps = new Map();
  assert.ok(text.endsWith('\n'), 'ends with a newline');
  for (const line of text.split('\n').filter(Boolean)) {
    let m;
    if ((m = line.match(/^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/))) {
      assert.ok(!helps.has(m[1]), `HELP for ${m[1]} twice`);
      helps.set(m[1], m[2]);
    } else if ((m = line.match(/^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/))) {
      assert.ok(!types.has(m[1]), `TYPE for ${m[1]} twice`);
      assert.ok(![...samples.keys()].some((k) => k.split('{')[0] === m[1]), `TYPE for ${m[1]} after its samples`);
      types.set(m[1], m[2]);
    } else if ((m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.eE+]+|NaN|[+-]Inf)$/))) {
      assert.ok(types.has(m[1]), `sample ${m[1]} without a TYPE line`);
      const key = m[1] + (m[2] ?? '');
      assert.ok(!samples.has(key), `sample ${key} twice`);
      samples.set(key, Number(m[3]));
    } else {
      assert.fail(`not a valid exposition line: ${JSON.stringify(line)}`);
    }
  }
  for (const [name, type] of types) {
    assert.ok(helps.has(name), `${name} has no HELP`);
    if (type === 'counter') assert.match(name, /_total$/, `counter ${name} ends in _total`);
  }
  return { samples, types };
}

test('/stats and /metrics count announces, scrapes, failures by reason and the swarms', async () => {
  const t = await startTracker({ vars: { PUBLISH_WINDOW: '1', STATS_REFRESH: '0' } });
  try {
    const one = randomHash();
    const two = randomHash();
    await announce(t.base, { infoHash: one, peerId: peerId('s1'), event: 'started', left: 0 });
    await announce(t.base, { infoHash: one, peerId: peerId('l1'), event: 'started' });
    await announce(t.base, { infoHash: one, peerId: peerId('l1'), event: 'completed', left: 0 });
    await announce(t.base, { infoHash: two, peerId: peerId('l2'), event: 'started' });
    await announce(t.base, { infoHash: two, peerId: peerId('l3'), event: 'started' });
    await scrape(t.base, [one, two]);
    // Refused: no info_hash; an info_hash of the wrong length; a POST; a scrape of too many.
    await get(`${t.base}/announce?peer_id=${escapeBytes(peerId('x'))}&port=1&left=0`);
    await get(`${t.base}/scrape?info_hash=abc`);
    await get(`${t.base}/announce`, { method: 'POST' });
    await get(`${t.base}/scrape?${Array.from({ length: 65 }, () => `info_hash=${escapeBytes(randomHash())}`).join('&')}`);

    // Swarm totals come from the counters each swarm publishes after PUBLISH_WINDOW.
    const s = await eventually(async () => {
      const s = await stats(t.base);
      return s.torrents === 2 && s.seeders === 2 && s.leechers === 2 ? s : null;
    });
    assert.equal(s.mode, 'public');
    assert.equal(s.announces, 7, 'every announce answered, refusals included');
    assert.equal(s.scrapes, 3);
    assert.deepEqual(s.failures, { invalid_announce: 1, invalid_scrape: 2, method_not_allowed: 1 });
    assert.equal(s.peers, 4);
    assert.equal(s.completed, 1);
    assert.deepEqual(s.busiest.map((x) => [x.info_hash, x.seeders, x.leechers, x.completed]).sort(), [
      [one.toString('hex'), 2, 0, 1],
      [two.toString('hex'), 0, 2, 0],
    ].sort());
    assert.equal(s.private, undefined);
    // The chart's series: the last 60 minutes, adding up to the totals.
    assert.equal(s.history.length, 60);
    assert.equal(s.history.reduce((n, p) => n + p.announces, 0), 7);
    assert.equal(s.history.reduce((n, p) => n + p.failures, 0), 4);
    assert.ok(s.history.every((p, i) => i === 0 || p.minute === s.history[i - 1].minute + 1));
    const longer = await (await fetch(`${t.base}/stats?minutes=180`)).json();
    assert.equal(longer.history.length, 180);

    const res = await fetch(`${t.base}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
    const { samples, types } = parsePrometheus(await res.text());
    const again = await stats(t.base);
    assert.equal(samples.get('edge_tracker_announces_total'), again.announces);
    assert.equal(samples.get('edge_tracker_scrapes_total'), again.scrapes);
    assert.equal(samples.get('edge_tracker_completed_total'), again.completed);
    for (const name of ['torrents', 'peers', 'seeders', 'leechers']) {
      assert.equal(types.get(`edge_tracker_${name}`), 'gauge');
      assert.equal(samples.get(`edge_tracker_${name}`), again[name], name);
    }
    assert.equal(types.get('edge_tracker_failures_total'), 'counter');
    for (const [reason, n] of Object.entries(again.failures)) {
      assert.equal(samples.get(`edge_tracker_failures_total{reason="${reason}"}`), n, reason);
    }
    assert.equal(samples.get('edge_tracker_failures_total{reason="swarm_unavailable"}'), 0, 'every reason is listed');
    assert.equal(samples.has('edge_tracker_users'), false, 'no private-mode gauges in public mode');
    // Reading /stats or /metrics is not traffic.
    assert.equal((await stats(t.base)).announces, 7);
  } finally {
    await t.close();
  }
});

/** What the stats object itself holds, leaving the Worker isolate's unsent counts where they are. */
async function statsObjectHolds(t) {
  const ns = await t.mf.getDurableObjectNamespace('STATS');
  const stub = ns.get(ns.idFromName('global'));
  const body = JSON.stringify({ delta: { announces: 0, scrapes: 0, failures: {} }, minutes: 1, prometheus: false });
  const res = await stub.fetch('https://stats/read', { method: 'POST', body });
  return res.json();
}

test('isolates send counts in batches: no stats write per request', async () => {
  // A flush interval longer than the test: only a /stats read sends the counts.
  const t = await startTracker({ vars: { STATS_FLUSH: '3600' } });
  try {
    const infoHash = randomHash();
    for (let i = 0; i < 3; i++) await announce(t.base, { infoHash, peerId: peerId(`b${i}`), event: 'started' });
    assert.equal((await statsObjectHolds(t)).announces, 0, 'nothing sent yet');
    assert.equal((await stats(t.base)).announces, 3, '/stats sends its isolate\'s counts first');
    for (let i = 0; i < 5; i++) await announce(t.base, { infoHash, peerId: peerId(`b${i}`) });
    assert.equal((await statsObjectHolds(t)).announces, 3, 'later announces wait in the isolate');
    assert.equal((await stats(t.base)).announces, 8);
  } finally {
    await t.close();
  }
});

test('the totals and the per-minute series survive a runtime restart', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edge-tracker-ops-'));
  try {
    let t = await startTracker({ persistDir: dir });
    const infoHash = randomHash();
    await announce(t.base, { infoHash, peerId: peerId('r1'), event: 'started' });
    await scrape(t.base, [infoHash]);
    const before = await stats(t.base);
    assert.deepEqual([before.announces, before.scrapes], [1, 1]);
    await t.stop();
    t = await startTracker({ persistDir: dir });
    try {
      const s = await stats(t.base);
      assert.deepEqual([s.announces, s.scrapes], [1, 1]);
      assert.equal(s.history.reduce((n, p) => n + p.announces, 0), 1);
    } finally {
      await t.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('counts are sent on their own once STATS_FLUSH has passed', async () => {
  const t = await startTracker({ vars: { STATS_FLUSH: '1' } });
  try {
    const infoHash = randomHash();
    await announce(t.base, { infoHash, peerId: peerId('f1'), event: 'started' });
    assert.equal((await statsObjectHolds(t)).announces, 0);
    // A request made after the interval carries the delta along (ctx.waitUntil).
    const due = Date.now() + 1000;
    await eventually(async () => {
      await announce(t.base, { infoHash, peerId: peerId('f1') });
      return Date.now() > due && (await statsObjectHolds(t)).announces > 0;
    }, { every: 250 });
  } finally {
    await t.close();
  }
});

test('logs are JSON lines at LOG_LEVEL and never carry a passkey, token or password', async () => {
  const logs = [];
  const t = await startTracker({
    vars: { TRACKER_MODE: 'private', PASSWORD_ROUNDS: '1000', PUBLISH_WINDOW: '1', STATS_REFRESH: '0', LOG_LEVEL: 'debug', ENFORCE_MIN_INTERVAL: 'false' },
    logs,
  });
  try {
    const api = async (method, path, { token, json, body } = {}) => {
      const headers = {};
      if (token) headers.authorization = `Bearer ${token}`;
      if (json) headers['content-type'] = 'application/json';
      const res = await fetch(`${t.base}/api${path}`, { method, headers, body: json ? JSON.stringify(json) : body });
      return { status: res.status, data: await res.json().catch(() => null) };
    };
    const password = 'pw-dora-very-secret';
    assert.equal((await api('POST', '/users', { json: { username: 'dora', password } })).status, 201);
    const { data: { token } } = await api('POST', '/login', { json: { username: 'dora', password } });
    const { data: me } = await api('GET', '/me', { token });
    const passkey = me.passkey;
    const made = makeTorrentFromData('ops.bin', randomBytes(1000), 'http://x/announce', { private: true });
    assert.equal((await api('POST', '/torrents', { token, body: made.torrent })).status, 201);
    const q = `info_hash=${escapeBytes(made.infoHash)}&peer_id=${escapeBytes(peerId('dora'))}&port=6881&uploaded=0&downloaded=0&left=0&compact=1`;
    await get(`${t.base}/announce/${passkey}?${q}&event=started`);
    await get(`${t.base}/announce?passkey=${passkey}&${q}`);
    await get(`${t.base}/announce/${passkey}x?${q}`);
    await get(`${t.base}/scrape/${passkey}?info_hash=${escapeBytes(made.infoHash)}`);
    await get(`${t.base}/announce/${passkey}?info_hash=short`);
    assert.equal((await api('POST', '/admin/users/dora/adjust', { token: ADMIN_TOKEN, json: { uploaded: 5 } })).status, 200);

    // Private mode shows accounts and registered torrents, and no info hashes.
    const s = await eventually(async () => {
      const s = await stats(t.base);
      return s.torrents === 1 ? s : null;
    });
    assert.deepEqual(s.private, { users: 1, registered_torrents: 1 });
    assert.deepEqual(s.busiest, []);
    assert.deepEqual(s.failures, { invalid_announce: 1, unknown_passkey: 1 });

    const lines = logs.filter((l) => l.startsWith('{'));
    const events = lines.map((l) => JSON.parse(l));
    for (const e of events) {
      assert.match(e.level, /^(error|warn|info|debug)$/);
      assert.equal(typeof e.event, 'string');
      assert.equal(typeof e.ts, 'number');
    }
    const names = new Set(events.map((e) => e.event));
    for (const name of ['swarm_start', 'admin_action', 'request_refused', 'stats_flush']) assert.ok(names.has(name), `${name} in ${[...names]}`);
    const admin = events.find((e) => e.event === 'admin_action');
    assert.deepEqual([admin.method, admin.path, admin.status], ['POST', '/api/admin/users/dora/adjust', 200]);
    for (const secret of [passkey, token, password, ADMIN_TOKEN, 'info_hash=']) {
      assert.ok(!logs.some((l) => l.includes(secret)), `a log line carries ${secret}`);
    }
  } finally {
    await t.close();
  }
});

test('LOG_LEVEL=error keeps info lines out; an invalid LOG_LEVEL is a configuration error', async () => {
  const logs = [];
  const t = await startTracker({ vars: { LOG_LEVEL: 'error' }, logs });
  try {
    await announce(t.base, { infoHash: randomHash(), peerId: peerId('q'), event: 'started' });
    await stats(t.base);
    assert.deepEqual(logs.filter((l) => l.startsWith('{')), []);
  } finally {
    await t.close();
  }
  const bad = await startTracker({ vars: { LOG_LEVEL: 'chatty' } });
  try {
    const r = await announce(bad.base, { infoHash: randomHash(), peerId: peerId('q'), event: 'started' });
    assert.match(text(r.body['failure reason']), /LOG_LEVEL/);
  } finally {
    await bad.close();
  }
});
