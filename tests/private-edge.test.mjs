// Private mode's edge behaviours from issue 14: the flags listing and the
// ledger's retention, sessions (logout, password change, TOKEN_TTL),
// .torrent files in R2 (up to 10 MiB, byte-exact, older D1 rows still
// served), web seeds, and the negative lookup cache.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import bencode from 'bencode';
import { startTracker, peerId } from './helpers.mjs';
import { makeTorrentFromData, makeLargeTorrent } from './torrent.mjs';
import { privateApi, failure } from './private-api.mjs';

const VARS = { TRACKER_MODE: 'private', PASSWORD_ROUNDS: '1000', ENFORCE_MIN_INTERVAL: 'false' };
const DAY = 86400;
const now = () => Math.floor(Date.now() / 1000);

const dir = mkdtempSync(join(tmpdir(), 'edge-tracker-private-edge-'));
let t;
let p;
let db;
before(async () => {
  t = await startTracker({ vars: VARS, persistDir: dir });
  p = privateApi(t);
  db = await t.mf.getD1Database('DB');
  // Before any request: this isolate's first prune is the flags listing's.
  await db.prepare("INSERT INTO users (id, username, password_hash, passkey, created_at) VALUES (900, 'flagged', 'x', ?, 0)").bind('9'.repeat(32)).run();
  const rows = [
    [900, 'a'.repeat(40), 'rate', 5e12, 0, now() - 91 * DAY],
    [900, 'b'.repeat(40), 'rate', 7e12, 0, now() - 10],
    [900, 'c'.repeat(40), 'balance', 3000, 3000, now() - 5],
    [901, 'd'.repeat(40), 'rate', 9e12, 0, now() - 20],
  ];
  for (const r of rows) {
    await db.prepare('INSERT INTO flags (user_id, info_hash, reason, reported, credited, at) VALUES (?, ?, ?, ?, ?, ?)').bind(...r).run();
  }
  await db.prepare('INSERT INTO credit_batches (id, applied_at) VALUES (?, ?), (?, ?)').bind('old-batch', now() - 91 * DAY, 'new-batch', now() - 60).run();
});
after(async () => { await t.close(); rmSync(dir, { recursive: true, force: true }); });

test('GET /api/admin/flags: newest first, bounded, admin only; old flags and batch ids are pruned', async () => {
  const r = await p.admin('GET', '/flags');
  assert.equal(r.status, 200);
  assert.deepEqual(r.data.flags.map((f) => f.info_hash), ['c'.repeat(40), 'b'.repeat(40), 'd'.repeat(40)]);
  assert.deepEqual(r.data.flags[0], { username: 'flagged', info_hash: 'c'.repeat(40), reason: 'balance', reported: 3000, credited: 3000, at: r.data.flags[0].at });
  assert.equal(r.data.flags[1].reported, 7e12);
  // A flag whose user is gone still shows, without a name.
  assert.equal(r.data.flags[2].username, null);
  // FLAG_RETENTION (90 days): the 91-day-old flag and batch id are gone, the rest stay.
  assert.equal((await db.prepare('SELECT COUNT(*) AS n FROM flags').first()).n, 3);
  assert.deepEqual((await db.prepare('SELECT id FROM credit_batches ORDER BY id').all()).results.map((x) => x.id), ['new-batch']);
  assert.equal((await p.admin('GET', '/flags?limit=1')).data.flags.length, 1);
  assert.equal((await p.admin('GET', '/flags?limit=1000')).data.flags.length, 3);
  for (const q of ['limit=0', 'limit=1001', 'limit=abc', 'limit=-1', 'limit=', 'limit=1&limit=2', 'other=1']) {
    const bad = await p.admin('GET', `/flags?${q}`);
    assert.equal(bad.status, 400, q);
    assert.match(bad.data.error, /limit/);
  }
  const member = await p.account('flag-reader');
  assert.equal((await p.api('GET', '/admin/flags', { token: member.token })).status, 401);
});

test('sessions: logout, password change rules, expired tokens cleared at sign-in', async () => {
  const u = await p.account('session-user');
  assert.equal((await p.api('POST', '/logout')).status, 401);
  const weak = await p.api('POST', '/me/password', { token: u.token, json: { password: u.password, new_password: 'short' } });
  assert.equal(weak.status, 400);
  const extra = await p.api('POST', '/me/password', { token: u.token, json: { password: u.password, new_password: 'long-enough-pw', x: 1 } });
  assert.equal(extra.status, 400);
  assert.equal((await p.api('GET', '/me', { token: u.token })).status, 200, 'a refused change keeps the session');
  // An old token is deleted when its user next signs in.
  const idOf = `(SELECT id FROM users WHERE username = '${u.username}')`;
  await db.prepare(`UPDATE tokens SET created_at = created_at - 2592000 WHERE user_id = ${idOf}`).run();
  const again = await p.api('POST', '/login', { json: { username: u.username, password: u.password } });
  assert.equal(again.status, 200);
  assert.equal((await db.prepare(`SELECT COUNT(*) AS n FROM tokens WHERE user_id = ${idOf}`).first()).n, 1);
  assert.equal((await p.api('GET', '/me', { token: again.data.token })).status, 200);
  const out = await p.api('POST', '/logout', { token: again.data.token });
  assert.equal(out.status, 204);
  assert.equal(out.buf.length, 0);
  assert.equal((await db.prepare(`SELECT COUNT(*) AS n FROM tokens WHERE user_id = ${idOf}`).first()).n, 0);
});

test('a ~3 MiB multi-file torrent is stored in R2 and served back byte-exact', async () => {
  const u = await p.account('big-uploader');
  const big = makeLargeTorrent(3 * 1024 * 1024, 'http://x/announce');
  assert.ok(big.torrent.length > 3 * 1024 * 1024, `${big.torrent.length}`);
  const up = await p.upload(u.token, big.torrent);
  assert.equal(up.status, 201, JSON.stringify(up.data));
  const hex = big.infoHash.toString('hex');
  assert.equal(up.data.info_hash, hex);
  const bucket = await t.mf.getR2Bucket('TORRENT_FILES');
  const object = await bucket.get(`torrents/${hex}.torrent`);
  assert.ok(Buffer.from(await object.arrayBuffer()).equals(big.torrent));
  const row = await db.prepare('SELECT length(torrent) AS n FROM torrents WHERE info_hash = ?').bind(hex).first();
  assert.equal(row.n, 0, 'the D1 row keeps no bytes');
  const dl = await p.api('GET', `/torrents/${hex}.torrent`, { token: u.token });
  assert.equal(dl.status, 200);
  const url = `${t.base}/announce/${u.passkey}`;
  const expected = bencode.encode({ announce: Buffer.from(url), 'announce-list': [[Buffer.from(url)]], comment: Buffer.from('large'), info: big.info });
  assert.ok(dl.buf.equals(Buffer.from(expected)), 'only the announce URL differs');
  // Deleting the torrent deletes its file.
  assert.equal((await p.admin('DELETE', `/torrents/${hex}`)).status, 200);
  assert.equal(await bucket.get(`torrents/${hex}.torrent`), null);
});

test('a torrent stored in its D1 row before R2 is still served', async () => {
  const u = await p.account('legacy-reader');
  const legacy = makeTorrentFromData('legacy.bin', randomBytes(40 * 1024), 'http://old/announce', { private: true });
  const hex = legacy.infoHash.toString('hex');
  await db.prepare('INSERT INTO torrents (info_hash, name, size, freeleech, torrent, created_at) VALUES (?, ?, ?, 0, ?, ?)')
    .bind(hex, 'legacy.bin', 40 * 1024, new Uint8Array(legacy.torrent), now()).run();
  const dl = await p.api('GET', `/torrents/${hex}.torrent`, { token: u.token });
  assert.equal(dl.status, 200);
  const served = bencode.decode(dl.buf);
  assert.equal(Buffer.from(served.announce).toString(), `${t.base}/announce/${u.passkey}`);
  assert.ok(dl.buf.includes(bencode.encode(bencode.decode(legacy.torrent).info)));
  assert.equal(failure(await p.announceTo(u.passkey, legacy.infoHash, peerId('legacy'), { event: 'started' })), null);
});

test('registering a torrent drops this isolate\'s negative entry for it at once', async () => {
  const u = await p.account('negative-user');
  const made = makeTorrentFromData('soon.bin', randomBytes(20 * 1024), 'http://x/announce', { private: true });
  const before = await p.announceTo(u.passkey, made.infoHash, peerId('neg'), { event: 'started' });
  assert.equal(failure(before), 'torrent not registered on this tracker');
  assert.equal((await p.announceTo(u.passkey, made.infoHash, peerId('neg'), { event: 'started' })).kvReads, 0, 'remembered as unknown');
  assert.equal((await p.upload(u.token, made.torrent)).status, 201);
  assert.equal(failure(await p.announceTo(u.passkey, made.infoHash, peerId('neg'), { event: 'started' })), null);
});

test('KEEP_WEB_SEEDS=true serves web seeds; NEGATIVE_CACHE=0 remembers nothing', async () => {
  const other = await startTracker({ vars: { ...VARS, KEEP_WEB_SEEDS: 'true', NEGATIVE_CACHE: '0' } });
  try {
    const q = privateApi(other);
    const u = await q.account('webseed-keeper');
    const made = makeTorrentFromData('ws.bin', randomBytes(20 * 1024), 'http://x/announce', { private: true });
    const withSeeds = bencode.encode({ ...bencode.decode(made.torrent), 'url-list': [Buffer.from('http://mirror.example/')] });
    assert.equal((await q.upload(u.token, Buffer.from(withSeeds))).status, 201);
    const dl = await q.api('GET', `/torrents/${made.infoHash.toString('hex')}.torrent`, { token: u.token });
    assert.equal(Buffer.from(bencode.decode(dl.buf)['url-list'][0]).toString(), 'http://mirror.example/');
    const bogus = randomBytes(16).toString('hex');
    await q.announceTo(bogus, made.infoHash, peerId('x'), { event: 'started' });
    assert.equal((await q.announceTo(bogus, made.infoHash, peerId('x'), { event: 'started' })).kvReads, 1);
  } finally {
    await other.close();
  }
});
