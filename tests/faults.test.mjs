// Faults: the runtime killed with SIGKILL in the middle of a sustained
// announce load, and D1 failing while credits are flushed. The test keeps
// its own ledger of what every client sent and what the tracker answered,
// and checks membership, completions and accounting against it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { startTracker, ADMIN_TOKEN, get, escapeBytes, compactPeers, eventually, text, ROOT, announce, peerId, randomHash } from './helpers.mjs';
import { makeTorrentFromData } from './torrent.mjs';

const VARS = {
  TRACKER_MODE: 'private',
  PASSWORD_ROUNDS: '1000',
  CREDIT_FLUSH: '1',
  PUBLISH_WINDOW: '1',
  RATIO_ALLOWANCE: String(1e15),
  // The load re-announces as fast as the tracker answers.
  ENFORCE_MIN_INTERVAL: 'false',
};

const failure = (r) => (r.body?.['failure reason'] ? text(r.body['failure reason']) : null);

/** The tracker in a child process group, so SIGKILL takes workerd with it. */
async function spawnRuntime(dir) {
  const child = spawn(process.execPath, [join(ROOT, 'tests/fault/runtime.mjs'), dir, JSON.stringify(VARS)], {
    detached: true,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  // The runtime's own log lines share stdout: wait for the one with the URL.
  const base = await new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout });
    rl.on('line', (line) => {
      try {
        const { base: url } = JSON.parse(line);
        if (url) resolve(url);
      } catch {}
    });
    child.once('exit', (code) => reject(new Error(`runtime exited with ${code}`)));
  });
  return { child, base };
}

function kill(child) {
  return new Promise((resolve) => {
    child.once('exit', resolve);
    process.kill(-child.pid, 'SIGKILL');
  });
}

function client(base) {
  async function api(method, path, { token, json, body } = {}) {
    const headers = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (json) headers['content-type'] = 'application/json';
    const res = await fetch(`${base}/api${path}`, { method, headers, body: json ? JSON.stringify(json) : body });
    return { status: res.status, data: await res.json() };
  }
  return {
    api,
    async account(name) {
      const reg = await api('POST', '/users', { json: { username: name, password: `pw-${name}-secret` } });
      assert.equal(reg.status, 201, JSON.stringify(reg.data));
      const login = await api('POST', '/login', { json: { username: name, password: `pw-${name}-secret` } });
      return { name, passkey: reg.data.passkey, token: login.data.token };
    },
    async torrent(token, tag) {
      const made = makeTorrentFromData(`${tag}.bin`, randomBytes(64 * 1024), 'http://x/announce', { private: true });
      const up = await api('POST', '/torrents', { token, body: made.torrent });
      assert.equal(up.status, 201, JSON.stringify(up.data));
      return made.infoHash;
    },
    async totals() {
      const r = await api('GET', '/admin/users', { token: ADMIN_TOKEN });
      return Object.fromEntries(r.data.users.map((u) => [u.username, { up: u.uploaded, down: u.downloaded }]));
    },
  };
}

/** One simulated client session: cumulative counters, as real clients send them. */
class Peer {
  constructor(user, infoHash, n) {
    this.user = user;
    this.infoHash = infoHash;
    this.id = Buffer.from(`-FT0001-${String(n).padStart(12, '0')}`);
    this.port = 20000 + n;
    this.ip = `10.9.${n >> 8}.${n & 255}`;
    this.size = 1_000_000_000;
    this.sent = { up: 0, down: 0 };
    this.joinedAcked = false;
    this.completedSent = false;
    this.completedAcked = false;
  }

  async announce(base, { event, finish = false } = {}) {
    // A session starts at zero (its first report is the tracker's baseline)
    // and says so again until the tracker answers it.
    const moved = this.joinedAcked ? 1 : 0;
    const up = this.sent.up + moved * (1 + Math.floor(Math.random() * 100_000));
    const down = this.completedSent ? this.sent.down : this.sent.down + moved * (1 + Math.floor(Math.random() * 100_000));
    const completes = finish && !this.completedSent;
    const ev = event ?? (completes ? 'completed' : this.joinedAcked ? undefined : 'started');
    this.sent = { up, down };
    if (completes) this.completedSent = true;
    const left = this.completedSent ? 0 : this.size - down;
    const q = `info_hash=${escapeBytes(this.infoHash)}&peer_id=${escapeBytes(this.id)}&port=${this.port}` +
      `&uploaded=${up}&downloaded=${down}&left=${left}&compact=1${ev ? `&event=${ev}` : ''}`;
    const r = await get(`${base}/announce/${this.user.passkey}?${q}`, { ip: this.ip });
    assert.equal(failure(r), null, `announce refused: ${failure(r)}`);
    this.joinedAcked = true;
    if (ev === 'completed') this.completedAcked = true;
    return r;
  }
}

test('SIGKILL mid-load: no peer lost, completions intact, accounting exact to the byte', { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edge-tracker-kill-'));
  let rt = await spawnRuntime(dir);
  try {
    let c = client(rt.base);
    const users = [];
    for (let i = 0; i < 4; i++) users.push(await c.account(`load${i}`));
    const hashes = [];
    for (let i = 0; i < 3; i++) hashes.push(await c.torrent(users[0].token, `kill${i}`));
    const peers = [];
    for (let n = 0; n < 36; n++) peers.push(new Peer(users[n % 4], hashes[n % 3], n));

    // Sustained load: every peer announces in a loop; a third complete.
    let running = true;
    let acked = 0;
    let lost = 0;
    const loops = peers.map(async (p, n) => {
      for (let round = 0; running; round++) {
        try {
          await p.announce(rt.base, { finish: n % 3 === 0 && round === 3 });
          acked++;
        } catch (e) {
          if (running) throw e;
          lost++; // in flight when the runtime died: outcome unknown to the client
          return;
        }
      }
    });
    await eventually(() => acked >= 400, { ms: 60_000, every: 20 });
    running = false;
    await kill(rt.child);
    await Promise.all(loops);

    rt = await spawnRuntime(dir);
    c = client(rt.base);
    // Membership: every peer whose join was answered is still listed.
    const watchers = [];
    for (const hash of hashes) {
      const watcher = new Peer(users[1], hash, 900 + hashes.indexOf(hash));
      watchers.push(watcher);
      const r = await watcher.announce(rt.base, {});
      const listed = new Set(compactPeers(r.body.peers));
      const expected = peers.filter((p) => p.infoHash === hash && p.joinedAcked);
      const missing = expected.filter((p) => !listed.has(`${p.ip}:${p.port}`));
      assert.deepEqual(missing.map((p) => p.ip), [], 'peers lost by the crash');
      // Completions: what was answered is counted; what was in flight may be.
      const done = peers.filter((p) => p.infoHash === hash && p.completedAcked).length;
      const sent = peers.filter((p) => p.infoHash === hash && p.completedSent).length;
      assert.ok(r.body.downloaded >= done && r.body.downloaded <= sent, `downloaded ${r.body.downloaded} not in [${done}, ${sent}]`);
      await watcher.announce(rt.base, { event: 'stopped' });
    }
    // The clients carry on (resending completions that got no answer), then stop.
    for (const p of peers) await p.announce(rt.base, { event: p.completedSent && !p.completedAcked ? 'completed' : undefined });
    for (const p of peers) await p.announce(rt.base, { event: 'stopped' });

    for (const hash of hashes) {
      const watcher = new Peer(users[2], hash, 950 + hashes.indexOf(hash));
      watchers.push(watcher);
      const r = await watcher.announce(rt.base, {});
      assert.equal(r.body.downloaded, peers.filter((p) => p.infoHash === hash && p.completedSent).length, 'each completion counted once');
      await watcher.announce(rt.base, { event: 'stopped' });
    }
    // Accounting: each user's totals equal the sum of the final counters
    // their clients reported (the watchers' bytes included).
    const ledger = {};
    for (const p of [...peers, ...watchers]) {
      const e = (ledger[p.user.name] ??= { up: 0, down: 0 });
      e.up += p.sent.up;
      e.down += p.sent.down;
    }
    const totals = await eventually(async () => {
      const t = await c.totals();
      return users.every((u) => t[u.name].up >= (ledger[u.name]?.up ?? 0)) ? t : null;
    }, { ms: 30_000 });
    for (const u of users) {
      assert.deepEqual(totals[u.name], ledger[u.name], `${u.name}: tracker vs ledger (in flight at the kill: ${lost})`);
    }
    console.log('sigkill', JSON.stringify({ acked, in_flight_at_kill: lost, peers: peers.length, ledger, totals }));
  } finally {
    if (rt.child.exitCode === null) await kill(rt.child);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a failing D1 flush is retried: no credit lost, none counted twice', { timeout: 120_000 }, async () => {
  const t = await startTracker({ vars: VARS });
  try {
    const c = client(t.base);
    const [seeder, leecher] = [await c.account('flush-s'), await c.account('flush-l')];
    const hash = await c.torrent(seeder.token, 'flush');
    const db = await t.mf.getD1Database('DB');
    await db.prepare("CREATE TRIGGER fail_flush BEFORE INSERT ON credit_batches BEGIN SELECT RAISE(ABORT, 'injected D1 failure'); END").run();
    const s = new Peer(seeder, hash, 1);
    const l = new Peer(leecher, hash, 2);
    await s.announce(t.base, { finish: true });
    await l.announce(t.base);
    // Several flush windows pass with D1 refusing every batch.
    for (let i = 0; i < 5; i++) {
      await s.announce(t.base);
      await l.announce(t.base);
      await new Promise((r) => setTimeout(r, 600));
    }
    const during = await c.totals();
    assert.deepEqual([during['flush-s'], during['flush-l']], [{ up: 0, down: 0 }, { up: 0, down: 0 }], 'nothing applied while D1 fails');
    await db.prepare('DROP TRIGGER fail_flush').run();
    await l.announce(t.base, { event: 'stopped' });
    await s.announce(t.base, { event: 'stopped' });
    const want = { 'flush-s': s.sent, 'flush-l': l.sent };
    const after = await eventually(async () => {
      const now = await c.totals();
      return now['flush-s'].up === want['flush-s'].up && now['flush-l'].up === want['flush-l'].up ? now : null;
    }, { ms: 40_000, every: 250 });
    assert.deepEqual({ 'flush-s': after['flush-s'], 'flush-l': after['flush-l'] }, {
      'flush-s': { up: s.sent.up, down: s.sent.down },
      'flush-l': { up: l.sent.up, down: l.sent.down },
    });
    // Every batch the swarm made reached D1 exactly once.
    const batches = await db.prepare('SELECT COUNT(*) AS n FROM credit_batches').first();
    assert.ok(batches.n >= 1);
    const again = await c.totals();
    assert.deepEqual(again['flush-s'], after['flush-s']);
  } finally {
    await t.close();
  }
});

// A swarm whose delivery reached its ledger shard but whose answer was lost
// sends the same batch again: the shard acknowledges it and adds nothing.
test('a credit batch delivered twice to its ledger shard counts once', { timeout: 60_000 }, async () => {
  const t = await startTracker({ vars: VARS });
  try {
    const c = client(t.base);
    await c.account('twice');
    const db = await t.mf.getD1Database('DB');
    const { id } = await db.prepare("SELECT id FROM users WHERE username = 'twice'").first();
    const stats = await t.mf.getDurableObjectNamespace('STATS');
    const hash = (b) => Buffer.alloc(20, b).toString('hex');
    // Hashes whose second byte picks shard 0 (LEDGER_SHARDS defaults to 8).
    const deliver = async (batchId, h, up) => {
      const body = JSON.stringify({ id: batchId, hash: hash(h), batch: { credits: [[id, up, 0]], flags: [] } });
      const res = await stats.get(stats.idFromName('ledger-0')).fetch('https://stats/ledger', { method: 'POST', body });
      assert.equal(res.status, 200);
      return res.text();
    };
    const uploaded = async () => (await db.prepare('SELECT uploaded FROM users WHERE id = ?').bind(id).first()).uploaded;
    assert.equal(await deliver('batch-a', 8, 1000), 'stored');
    assert.equal(await deliver('batch-a', 8, 1000), 'duplicate', 'the same batch again, before the flush');
    await eventually(async () => (await uploaded()) === 1000, { ms: 20_000 });
    assert.equal(await deliver('batch-a', 8, 1000), 'duplicate', 'and after it');
    // Another swarm's batch: once it is in, any flush after the duplicate has run.
    assert.equal(await deliver('batch-a', 16, 1), 'stored', 'the same id from another swarm is another batch');
    await eventually(async () => (await uploaded()) === 1001, { ms: 20_000 });
    assert.equal(await uploaded(), 1001);
    const malformed = await stats.get(stats.idFromName('ledger-0')).fetch('https://stats/ledger', { method: 'POST', body: '{"id":' });
    assert.equal(malformed.status, 400);
  } finally {
    await t.close();
  }
});

// A stand-in for the stats objects whose totals shards refuse the first
// two swarm reports: the swarm's publish (from the announce) fails, and so
// does the alarm's first retry; the next one lands. It keeps every report.
const FLAKY_STATS = `
export class FlakyStats {
  constructor(ctx) { this.storage = ctx.storage; }
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === '/reports') return Response.json((await this.storage.get('reports')) ?? []);
    if (url.pathname !== '/swarms') return new Response('ok');
    const reports = (await this.storage.get('reports')) ?? [];
    reports.push({ line: await request.text(), refused: reports.length < 2 });
    await this.storage.put('reports', reports);
    return new Response(reports.at(-1).refused ? 'refused' : 'ok', { status: reports.at(-1).refused ? 503 : 200 });
  }
}
export default { fetch: () => new Response('not used') };
`;

test('a publish that fails is retried by the alarm until the totals have the counters', { timeout: 90_000 }, async () => {
  const logs = [];
  const t = await startTracker({
    // A torrent's own object publishes to the totals shards (a shared
    // swarm's shard sums its swarms itself).
    vars: { PUBLISH_WINDOW: '1', SWARM_SHARDS: '0' },
    logs,
    durableObjects: { STATS: { className: 'FlakyStats', scriptName: 'flaky-stats', useSQLite: true } },
    workers: [{ name: 'flaky-stats', modules: true, script: FLAKY_STATS, compatibilityDate: '2026-04-20', durableObjects: { FLAKY: { className: 'FlakyStats', useSQLite: true } } }],
  });
  try {
    const hash = randomHash();
    const r = await announce(t.base, { infoHash: hash, peerId: peerId('flaky'), event: 'started', left: 0 });
    assert.equal(r.status, 200);
    assert.equal(r.body.complete, 1, 'the answer does not wait for, or fail with, the publish');
    const shards = await t.mf.getDurableObjectNamespace('STATS');
    // Every totals shard (swarm_totals.rs: 32, "totals-N"); one holds this swarm's reports.
    const reports = async () => {
      const all = [];
      for (let shard = 0; shard < 32; shard++) {
        const res = await shards.get(shards.idFromName(`totals-${shard}`)).fetch('https://stats/reports');
        all.push(...(await res.json()));
      }
      return all.filter((x) => x.line.startsWith(hash.toString('hex')));
    };
    const got = await eventually(async () => {
      const mine = await reports();
      return mine.some((x) => !x.refused) ? mine : null;
    }, { ms: 60_000, every: 500 });
    assert.deepEqual(got.map((x) => [x.line, x.refused]), [
      [`${hash.toString('hex')} 1 0 0`, true],
      [`${hash.toString('hex')} 1 0 0`, true],
      [`${hash.toString('hex')} 1 0 0`, false],
    ]);
    assert.ok(logs.filter((l) => l.includes('"publish_failed"')).length >= 2, 'each failure is logged');
  } finally {
    await t.close();
  }
});
