// A hostile member with curl and their own account against private mode's
// edge: sessions, passkeys, torrent attributes, uploads, lookups, web seeds
// (issue 14, items 6-10 and 12). Each test is an attack that must fail.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import bencode from 'bencode';
import { peerId, eventually } from './helpers.mjs';
import { makeTorrentFromData, makeHybridTorrent } from './torrent.mjs';
import { PRIVATE_VARS, fileTracker, privateApi, failure } from './private-api.mjs';

const run = fileTracker(PRIVATE_VARS, 'hostile-api');
let t;
let p;
before(async () => {
  t = await run.start();
  p = privateApi(t);
});
after(() => run.close());

const privateTorrent = (tag, extra) => makeTorrentFromData(`${tag}.bin`, randomBytes(32 * 1024), 'http://x/announce', { private: true, ...extra });

test('a token is useless after logout', async () => {
  const mallory = await p.account('mallory-logout');
  const other = await p.api('POST', '/login', { json: { username: mallory.username, password: mallory.password } });
  assert.equal((await p.api('POST', '/logout', { token: mallory.token })).status, 204);
  for (const [method, path] of [['GET', '/me'], ['POST', '/me/passkey'], ['GET', '/torrents'], ['POST', '/logout']]) {
    const r = await p.api(method, path, { token: mallory.token });
    assert.equal(r.status, 401, `${method} ${path} with a logged-out token`);
  }
  // Only that session ended.
  assert.equal((await p.api('GET', '/me', { token: other.data.token })).status, 200);
});

test('a stolen token dies when the owner changes the password', async () => {
  const victim = await p.account('victim-pw');
  const stolen = victim.token;
  const own = (await p.api('POST', '/login', { json: { username: victim.username, password: victim.password } })).data.token;
  // The thief cannot change the password without the old one.
  const guess = await p.api('POST', '/me/password', { token: stolen, json: { password: 'not-the-password', new_password: 'thief-owns-this-now' } });
  assert.equal(guess.status, 401);
  assert.match(guess.data.error, /wrong password/);
  const change = await p.api('POST', '/me/password', { token: own, json: { password: victim.password, new_password: 'a-brand-new-secret' } });
  assert.equal(change.status, 204);
  assert.equal((await p.api('GET', '/me', { token: stolen })).status, 401);
  assert.equal((await p.api('GET', '/me', { token: own })).status, 401);
  assert.equal((await p.api('POST', '/login', { json: { username: victim.username, password: victim.password } })).status, 401);
  assert.equal((await p.api('POST', '/login', { json: { username: victim.username, password: 'a-brand-new-secret' } })).status, 200);
});

test('an expired token is refused and forgotten', async () => {
  const mallory = await p.account('mallory-expired');
  const db = await t.mf.getD1Database('DB');
  // 30 days and a second ago (TOKEN_TTL's default).
  await db.prepare('UPDATE tokens SET created_at = created_at - 2592001 WHERE user_id = (SELECT id FROM users WHERE username = ?)').bind(mallory.username).run();
  const r = await p.api('GET', '/me', { token: mallory.token });
  assert.equal(r.status, 401);
  assert.match(r.data.error, /expired/);
  const left = await db.prepare('SELECT COUNT(*) AS n FROM tokens WHERE user_id = (SELECT id FROM users WHERE username = ?)').bind(mallory.username).first();
  assert.equal(left.n, 0);
  assert.equal((await p.api('GET', '/me', { token: mallory.token })).status, 401);
});

test('a reset passkey never comes back: not from a cold isolate, a cache write-back, or a refresh', async () => {
  const kv = await t.mf.getKVNamespace('TRACKER_KV');
  const mallory = await p.account('mallory-passkey');
  const { torrent, infoHash } = privateTorrent('passkey-race');
  assert.equal((await p.upload(mallory.token, torrent)).status, 201);
  const old = mallory.passkey;
  // This passkey was never announced, so KV has no entry: every announce
  // below misses KV and reads D1, racing the reset.
  const racing = Array.from({ length: 12 }, (_, i) => p.announceTo(old, infoHash, peerId(`race${i}`), { event: 'started' }));
  const reset = p.api('POST', '/me/passkey', { token: mallory.token });
  const [resetReply] = await Promise.all([reset, ...racing]);
  assert.equal(resetReply.status, 200);
  // Whatever the interleaving, no entry for the old key survives...
  assert.equal(await kv.get(`passkey:${old}`), null);
  // ...and a refresh of the user's entries (an admin adjustment, a ban and
  // unban: what credit flushes also trigger) writes only the new one.
  assert.equal((await p.admin('POST', `/users/${mallory.username}/adjust`, { uploaded: 1 })).status, 200);
  assert.equal((await p.admin('POST', `/users/${mallory.username}/ban`)).status, 200);
  assert.equal((await p.admin('POST', `/users/${mallory.username}/unban`)).status, 200);
  assert.equal(await kv.get(`passkey:${old}`), null);
  assert.notEqual(await kv.get(`passkey:${resetReply.data.passkey}`), null);
  assert.equal(failure(await p.announceTo(old, infoHash, peerId('late'), { event: 'started' })), 'unknown or revoked passkey');
  // A cold isolate (restarted runtime, same storage) refuses it too.
  t = await run.restart();
  p = privateApi(t);
  for (let i = 0; i < 3; i++) {
    assert.equal(failure(await p.announceTo(old, infoHash, peerId(`cold${i}`), { event: 'started' })), 'unknown or revoked passkey');
  }
  assert.equal(failure(await p.announceTo(resetReply.data.passkey, infoHash, peerId('fresh'), { event: 'started' })), null);
});

test('freeleech cannot be dodged or kept through the v2 hash of a hybrid torrent', async () => {
  const uploader = await p.account('hybrid-uploader');
  const mallory = await p.account('mallory-hybrid');
  const h = makeHybridTorrent('hybrid.bin', 'http://x/announce');
  const up = await p.upload(uploader.token, h.torrent);
  assert.equal(up.status, 201, JSON.stringify(up.data));
  assert.equal(up.data.v2_hash, h.v2Hash.toString('hex'));
  const me = async () => (await p.api('GET', '/me', { token: mallory.token })).data;
  // Freeleech, set by either hash, covers announces on the v2 hash.
  const set = await p.admin('POST', `/torrents/${h.v2Hash.toString('hex')}/freeleech`, { freeleech: true });
  assert.equal(set.status, 200);
  assert.equal(set.data.info_hash, h.infoHash.toString('hex'));
  const id = peerId('mallory-v2');
  assert.equal(failure(await p.announceTo(mallory.passkey, h.v2Hash, id, { event: 'started' })), null);
  assert.equal(failure(await p.announceTo(mallory.passkey, h.v2Hash, id, { uploaded: 1000, downloaded: 500000 })), null);
  await eventually(async () => (await me()).uploaded === 1000);
  assert.equal((await me()).downloaded, 0);
  // Freeleech ends: the cached "free" state of the v2 hash must not outlive it.
  assert.equal((await p.admin('POST', `/torrents/${h.infoHash.toString('hex')}/freeleech`, { freeleech: false })).status, 200);
  assert.equal(failure(await p.announceTo(mallory.passkey, h.v2Hash, id, { uploaded: 2000, downloaded: 800000 })), null);
  await eventually(async () => (await me()).uploaded === 2000);
  assert.equal((await me()).downloaded, 300000);
});

test('a deleted or blocked hybrid torrent cannot be used through its other hash', async () => {
  const uploader = await p.account('hybrid-uploader-2');
  const h = makeHybridTorrent('hybrid2.bin', 'http://x/announce');
  assert.equal((await p.upload(uploader.token, h.torrent)).status, 201);
  const both = [h.infoHash, h.v2Hash];
  for (const hash of both) assert.equal(failure(await p.announceTo(uploader.passkey, hash, peerId('seed'), { event: 'started', left: 0 })), null);
  // Block by the v1 hash: the v2 swarm is blocked as well, and both are listed.
  const block = await p.admin('POST', '/blocked', { info_hash: h.infoHash.toString('hex') });
  assert.equal(block.status, 200);
  assert.deepEqual(block.data.hashes.sort(), both.map((x) => x.toString('hex')).sort());
  assert.deepEqual((await p.admin('GET', '/blocked')).data.blocked.sort(), both.map((x) => x.toString('hex')).sort());
  for (const hash of both) assert.notEqual(failure(await p.announceTo(uploader.passkey, hash, peerId('seed2'), { event: 'started', left: 0 })), null);
  // Unblock by the v2 hash: both swarms open again.
  assert.equal((await p.admin('DELETE', '/blocked', { info_hash: h.v2Hash.toString('hex') })).status, 200);
  assert.deepEqual((await p.admin('GET', '/blocked')).data.blocked, []);
  for (const hash of both) assert.equal(failure(await p.announceTo(uploader.passkey, hash, peerId('seed3'), { event: 'started', left: 0 })), null);
  // Delete by the v2 hash: neither hash is registered any more.
  const del = await p.admin('DELETE', `/torrents/${h.v2Hash.toString('hex')}`);
  assert.equal(del.status, 200);
  assert.equal(del.data.deleted, h.infoHash.toString('hex'));
  for (const hash of both) {
    assert.equal(failure(await p.announceTo(uploader.passkey, hash, peerId('late'), { event: 'started' })), 'torrent not registered on this tracker');
  }
  assert.equal((await p.api('GET', `/torrents/${h.infoHash.toString('hex')}.torrent`, { token: uploader.token })).status, 404);
});

test('an oversize upload gets 413 with a clear error, never a 5xx', async () => {
  const mallory = await p.account('mallory-upload');
  const big = Buffer.alloc(10 * 1024 * 1024 + 1, 'x');
  const r = await p.upload(mallory.token, big);
  assert.equal(r.status, 413);
  assert.match(r.data.error, /torrent too large: at most 10485760 bytes/);
  // Chunked (no content-length): cut off as soon as it is too large.
  const chunked = await fetch(`${t.base}/api/torrents`, {
    method: 'POST',
    headers: { authorization: `Bearer ${mallory.token}` },
    body: new ReadableStream({
      start(c) {
        for (let i = 0; i < 11; i++) c.enqueue(new Uint8Array(1024 * 1024));
        c.close();
      },
    }),
    duplex: 'half',
  });
  assert.equal(chunked.status, 413);
  const db = await t.mf.getD1Database('DB');
  assert.equal((await db.prepare('SELECT COUNT(*) AS n FROM torrents WHERE uploader = (SELECT id FROM users WHERE username = ?)').bind(mallory.username).first()).n, 0);
});

test('a flood of bogus passkeys and hashes costs no KV read after the first', async () => {
  const mallory = await p.account('mallory-flood');
  const bogusKey = randomBytes(16).toString('hex');
  const hash = randomBytes(20);
  const first = await p.announceTo(bogusKey, hash, peerId('flood'), { event: 'started' });
  assert.equal(failure(first), 'unknown or revoked passkey');
  assert.ok(first.kvReads >= 1, `first: ${first.kvReads}`);
  for (let i = 0; i < 5; i++) {
    const again = await p.announceTo(bogusKey, hash, peerId('flood'), { event: 'started' });
    assert.equal(failure(again), 'unknown or revoked passkey');
    assert.equal(again.kvReads, 0);
  }
  // Unregistered hashes with a real passkey: the same.
  const unregistered = randomBytes(20);
  const warm = await p.announceTo(mallory.passkey, unregistered, peerId('flood'), { event: 'started' });
  assert.equal(failure(warm), 'torrent not registered on this tracker');
  const repeat = await p.announceTo(mallory.passkey, unregistered, peerId('flood'), { event: 'started' });
  assert.equal(failure(repeat), 'torrent not registered on this tracker');
  assert.equal(repeat.kvReads, 0);
});

test('web seeds in an upload never reach members (their addresses stay private)', async () => {
  const mallory = await p.account('mallory-webseed');
  const victim = await p.account('victim-webseed');
  const extra = { 'url-list': [Buffer.from('http://mallory.example/collect/')], httpseeds: [Buffer.from('http://mallory.example/seed')] };
  const h = makeHybridTorrent('webseed.bin', 'http://x/announce', { extra });
  assert.equal((await p.upload(mallory.token, h.torrent)).status, 201);
  const dl = await p.api('GET', `/torrents/${h.infoHash.toString('hex')}.torrent`, { token: victim.token });
  assert.equal(dl.status, 200);
  const served = bencode.decode(dl.buf);
  assert.equal(served['url-list'], undefined);
  assert.equal(served.httpseeds, undefined);
  assert.ok(!dl.buf.includes(Buffer.from('mallory.example')));
  // The info dictionary (and so both hashes) is untouched.
  assert.ok(dl.buf.includes(bencode.encode(h.info)));
});

// The ledger shards take credit batches only from swarms (object to
// object); a member who guesses their paths gets nothing credited.
test('a member cannot post a credit batch to a ledger shard', async () => {
  const m = await p.account('forger');
  const before = (await p.api('GET', '/me', { token: m.token })).data;
  const db = await t.mf.getD1Database('DB');
  const { id } = await db.prepare("SELECT id FROM users WHERE username = 'forger'").first();
  const body = JSON.stringify({ id: 'forged', hash: 'ab'.repeat(20), batch: { credits: [[id, 1e12, 0]], flags: [] } });
  for (const path of ['/ledger', '/stats/ledger', '/api/ledger', `/announce/${m.passkey}/ledger`]) {
    const res = await fetch(`${t.base}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
    await res.arrayBuffer();
    assert.notEqual(res.status, 200, `${path} took a credit batch`);
  }
  // Two flush windows later, still nothing credited.
  await new Promise((r) => setTimeout(r, 2500));
  const after = (await p.api('GET', '/me', { token: m.token })).data;
  assert.equal(after.uploaded, before.uploaded);
});
