// Private mode end to end over HTTP: accounts, torrents, passkey announces,
// exact accounting into D1, the ratio rule, and the admin API.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import bencode from 'bencode';
import { startTracker, ADMIN_TOKEN, get, escapeBytes, peerId, compactPeers, eventually, text } from './helpers.mjs';
import { makeTorrentFromData } from './torrent.mjs';
import { PRIVATE_VARS, fileTracker, failure } from './private-api.mjs';

const VARS = { ...PRIVATE_VARS, MIN_RATIO: '0.5', RATIO_ALLOWANCE: '1000000' };

const run = fileTracker(VARS, 'private');
const { api, account } = run.p;
let t;
before(async () => { t = await run.start(); });
after(() => run.close());

/** Announce through a passkey URL, the way a client uses a downloaded .torrent. */
async function announceTo(url, infoHash, id, fields = {}, ip = '10.8.0.1') {
  const q = { port: 6881, uploaded: 0, downloaded: 0, left: 1000, compact: 1, ...fields };
  const qs = Object.entries(q).map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
  const sep = url.includes('?') ? '&' : '?';
  return get(`${url}${sep}info_hash=${escapeBytes(infoHash)}&peer_id=${escapeBytes(id)}&${qs}`, { ip });
}

let alice;
let bob;
let torrent;

test('register, log in, see yourself; errors are clear', async () => {
  alice = await account('alice');
  bob = await account('bob');
  assert.match(alice.passkey, /^[0-9a-f]{32}$/);
  assert.notEqual(alice.passkey, bob.passkey);
  const me = await api('GET', '/me', { token: alice.token });
  assert.equal(me.status, 200);
  assert.equal(me.data.username, 'alice');
  assert.equal(me.data.uploaded, 0);
  assert.equal(me.data.passkey, alice.passkey);
  assert.equal(me.data.announce_url, `${t.base}/announce/${alice.passkey}`);
  assert.equal((await api('POST', '/users', { json: { username: 'alice', password: 'another-password' } })).status, 409);
  assert.equal((await api('POST', '/users', { json: { username: 'x', password: 'another-password' } })).status, 400);
  assert.equal((await api('POST', '/users', { body: '{not json' })).status, 400);
  assert.equal((await api('POST', '/login', { json: { username: 'alice', password: 'wrong-password' } })).status, 401);
  assert.equal((await api('POST', '/login', { json: { username: 'nobody', password: 'wrong-password' } })).status, 401);
  assert.equal((await api('GET', '/me')).status, 401);
  assert.equal((await api('GET', '/me', { token: 'f'.repeat(64) })).status, 401);
  assert.match((await api('GET', '/me')).data.error, /bearer/);
});

test('upload a .torrent; download it with your own passkey inside', async () => {
  const data = randomBytes(300 * 1024);
  const made = makeTorrentFromData('private-test.bin', data, 'http://elsewhere/announce', { private: true });
  const notPrivate = makeTorrentFromData('public.bin', data, 'http://elsewhere/announce');
  const refused = await api('POST', '/torrents', { token: alice.token, body: notPrivate.torrent });
  assert.equal(refused.status, 400);
  assert.match(refused.data.error, /private/);
  assert.equal((await api('POST', '/torrents', { token: alice.token, body: Buffer.from('d4:infoi1ee') })).status, 400);
  assert.equal((await api('POST', '/torrents', { body: made.torrent })).status, 401);
  const up = await api('POST', '/torrents', { token: alice.token, body: made.torrent });
  assert.equal(up.status, 201, JSON.stringify(up.data));
  assert.equal(up.data.info_hash, made.infoHash.toString('hex'));
  assert.match(up.data.magnet, new RegExp(`^magnet:\\?xt=urn:btih:${made.infoHash.toString('hex')}`));
  assert.equal((await api('POST', '/torrents', { token: alice.token, body: made.torrent })).status, 409);

  const file = await api('GET', `/torrents/${made.infoHash.toString('hex')}.torrent`, { token: bob.token });
  assert.equal(file.status, 200);
  assert.equal(file.type, 'application/x-bittorrent');
  const meta = bencode.decode(file.buf);
  assert.equal(text(meta.announce), `${t.base}/announce/${bob.passkey}`, 'the caller\'s passkey, not the uploader\'s');
  assert.ok(!file.buf.toString('latin1').includes(alice.passkey), 'no other user\'s passkey');
  const { createHash } = await import('node:crypto');
  assert.equal(createHash('sha1').update(bencode.encode(meta.info)).digest('hex'), made.infoHash.toString('hex'));
  assert.equal((await api('GET', `/torrents/${'0'.repeat(40)}.torrent`, { token: bob.token })).status, 404);
  torrent = { infoHash: made.infoHash, size: data.length };

  const list = await api('GET', '/torrents', { token: bob.token });
  assert.equal(list.status, 200);
  assert.equal(list.data.torrents[0].name, 'private-test.bin');
  assert.equal(list.data.torrents[0].size, data.length);
  assert.match(list.data.torrents[0].magnet, new RegExp(bob.passkey));
});

test('announces need a valid passkey and a registered torrent', async () => {
  const id = peerId('nokey');
  assert.match(failure(await announceTo(`${t.base}/announce`, torrent.infoHash, id)), /missing passkey/);
  assert.match(failure(await announceTo(`${t.base}/announce/${'0'.repeat(32)}`, torrent.infoHash, id)), /unknown or revoked passkey/);
  assert.match(failure(await announceTo(`${t.base}/announce/not-a-passkey`, torrent.infoHash, id)), /unknown or revoked passkey/);
  assert.match(failure(await announceTo(`${t.base}/announce/${alice.passkey}`, randomBytes(20), id)), /not registered/);
  const ok = await announceTo(`${t.base}/announce?passkey=${alice.passkey}`, torrent.infoHash, peerId('qs'), { event: 'stopped' });
  assert.equal(failure(ok), null, '?passkey= works too');
});

test('two peers exchange data: totals exact to the byte, across a restart mid-session', async () => {
  const A = `${t.base}/announce/${alice.passkey}`;
  const B = `${t.base}/announce/${bob.passkey}`;
  const seed = peerId('alice-seed');
  const leech = peerId('bob-leech');
  const { infoHash, size } = torrent;
  const r1 = await announceTo(A, infoHash, seed, { left: 0, event: 'started' }, '10.8.0.1');
  assert.equal(failure(r1), null);
  const r2 = await announceTo(B, infoHash, leech, { left: size, event: 'started' }, '10.8.0.2');
  assert.deepEqual(compactPeers(r2.body.peers), ['10.8.0.1:6881']);
  // Halfway: both report their session counters. A retry of the same announce counts nothing.
  await announceTo(A, infoHash, seed, { left: 0, uploaded: 150000 }, '10.8.0.1');
  await announceTo(A, infoHash, seed, { left: 0, uploaded: 150000 }, '10.8.0.1');
  await announceTo(B, infoHash, leech, { left: size - 150000, downloaded: 150000, uploaded: 1000 }, '10.8.0.2');

  // The runtime dies mid-session; the deltas were durable before each answer.
  t = await run.restart();
  const A2 = `${t.base}/announce/${alice.passkey}`;
  const B2 = `${t.base}/announce/${bob.passkey}`;
  await announceTo(A2, infoHash, seed, { left: 0, uploaded: size }, '10.8.0.1');
  await announceTo(B2, infoHash, leech, { left: 0, downloaded: size, uploaded: 1000, event: 'completed' }, '10.8.0.2');
  await announceTo(B2, infoHash, leech, { left: 0, downloaded: size, uploaded: 1000, event: 'completed' }, '10.8.0.2');
  await announceTo(A2, infoHash, seed, { left: 0, uploaded: size + 500, event: 'stopped' }, '10.8.0.1');

  const totals = async (who) => (await api('GET', '/me', { token: who.token })).data;
  const a = await eventually(async () => { const m = await totals(alice); return m.uploaded === size + 500 ? m : null; });
  assert.equal(a.uploaded, size + 500);
  assert.equal(a.downloaded, 0);
  const b = await eventually(async () => { const m = await totals(bob); return m.downloaded === size ? m : null; });
  assert.equal(b.downloaded, size);
  assert.equal(b.uploaded, 1000);
  assert.equal(b.ratio, 1000 / size);
});

test('ratio rule: below the minimum a user may seed but not start leeching', async () => {
  const carol = await account('carol');
  // An admin puts carol past the allowance with a ratio of 0.1.
  const adj = await api('POST', '/admin/users/carol/adjust', { token: ADMIN_TOKEN, json: { downloaded: 2000000, uploaded: 200000 } });
  assert.equal(adj.status, 200, JSON.stringify(adj.data));
  const C = `${t.base}/announce/${carol.passkey}`;
  const refused = await announceTo(C, torrent.infoHash, peerId('carol-l'), { left: 5, event: 'started' });
  assert.match(failure(refused), /ratio is below the minimum/);
  const seeding = await announceTo(C, torrent.infoHash, peerId('carol-s'), { left: 0, event: 'started' });
  assert.equal(failure(seeding), null);
  assert.equal((await api('GET', '/me', { token: carol.token })).data.may_leech, false);
  // Uploading brings the ratio back: seeding credit reaches D1, then leeching is allowed again.
  await announceTo(C, torrent.infoHash, peerId('carol-s'), { left: 0, uploaded: 900000 });
  await eventually(async () => failure(await announceTo(C, torrent.infoHash, peerId('carol-l'), { left: 5 })) === null);
});

test('passkey reset revokes the old one at once; bans stop announces and logins', async () => {
  const old = alice.passkey;
  const reset = await api('POST', '/me/passkey', { token: alice.token });
  assert.equal(reset.status, 200);
  assert.notEqual(reset.data.passkey, old);
  assert.match(failure(await announceTo(`${t.base}/announce/${old}`, torrent.infoHash, peerId('after-reset'))), /unknown or revoked/);
  assert.equal(failure(await announceTo(`${t.base}/announce/${reset.data.passkey}`, torrent.infoHash, peerId('after-reset'), { left: 0 })), null);
  alice.passkey = reset.data.passkey;

  assert.equal((await api('POST', '/admin/users/bob/ban', { token: ADMIN_TOKEN })).status, 200);
  assert.match(failure(await announceTo(`${t.base}/announce/${bob.passkey}`, torrent.infoHash, peerId('banned'))), /banned/);
  assert.equal((await api('GET', '/me', { token: bob.token })).status, 401, 'tokens of a banned user are revoked');
  assert.equal((await api('POST', '/login', { json: { username: 'bob', password: 'pw-bob-secret' } })).status, 403);
  assert.equal((await api('POST', '/admin/users/bob/unban', { token: ADMIN_TOKEN })).status, 200);
  assert.equal(failure(await announceTo(`${t.base}/announce/${bob.passkey}`, torrent.infoHash, peerId('unbanned'), { left: 0 })), null);
});

test('an isolate reads a passkey from KV once per PASSKEY_CACHE; changes made through it apply at once', async () => {
  const erin = await account('erin');
  const url = `${t.base}/announce/${erin.passkey}`;
  const first = await announceTo(url, torrent.infoHash, peerId('erin-1'), { left: 0 });
  assert.equal(failure(first), null);
  assert.ok(first.kvReads >= 1, `the first announce reads the passkey from KV (${first.kvReads} reads)`);
  const again = await announceTo(url, torrent.infoHash, peerId('erin-1'), { left: 0, uploaded: 10 });
  assert.equal(failure(again), null);
  assert.equal(again.kvReads, 0, 'the next one is answered from the isolate\'s copy');
  // A ban made through this isolate replaces its copy: it bites at once.
  assert.equal((await api('POST', '/admin/users/erin/ban', { token: ADMIN_TOKEN })).status, 200);
  assert.match(failure(await announceTo(url, torrent.infoHash, peerId('erin-1'), { left: 0 })), /banned/);
  assert.equal((await api('POST', '/admin/users/erin/unban', { token: ADMIN_TOKEN })).status, 200);
  assert.equal(failure(await announceTo(url, torrent.infoHash, peerId('erin-1'), { left: 0, event: 'stopped' })), null);
});

test('no user reaches another user\'s data or the admin API', async () => {
  for (const [method, path] of [['GET', '/admin/users'], ['POST', '/admin/invites'], ['POST', '/admin/users/alice/adjust']]) {
    const r = await api(method, path, { token: bob.token, json: method === 'GET' ? undefined : {} });
    assert.equal(r.status, 401, `${method} ${path}`);
  }
  const me = await api('GET', '/me', { token: bob.token });
  assert.equal(me.status, 401, 'bob\'s old token was revoked by the ban');
  const bobAgain = await api('POST', '/login', { json: { username: 'bob', password: 'pw-bob-secret' } });
  const mine = await api('GET', '/me', { token: bobAgain.data.token });
  assert.equal(mine.data.username, 'bob');
  assert.ok(!JSON.stringify(mine.data).includes(alice.passkey));
  const users = await api('GET', '/admin/users', { token: ADMIN_TOKEN });
  assert.equal(users.status, 200);
  assert.ok(users.data.users.every((u) => u.passkey === undefined && u.password_hash === undefined));
});

test('admin: invites, client bans, freeleech, torrent deletion', async () => {
  const inv = await api('POST', '/admin/invites', { token: ADMIN_TOKEN });
  assert.equal(inv.status, 201);
  assert.match(inv.data.invite, /^[0-9a-f]{32}$/);

  const ban = await api('POST', '/admin/client-bans', { token: ADMIN_TOKEN, json: { prefix: '-XX0001-' } });
  assert.deepEqual(ban.data.prefixes, ['-XX0001-']);
  const banned = await announceTo(`${t.base}/announce/${alice.passkey}`, torrent.infoHash, Buffer.from('-XX0001-abcdefghijkl'));
  assert.match(failure(banned), /client is banned/);
  await api('DELETE', '/admin/client-bans', { token: ADMIN_TOKEN, json: { prefix: '-XX0001-' } });

  const hex = torrent.infoHash.toString('hex');
  const fl = await api('POST', `/admin/torrents/${hex}/freeleech`, { token: ADMIN_TOKEN, json: { freeleech: true } });
  assert.equal(fl.status, 200);
  const dave = await account('dave');
  const D = `${t.base}/announce/${dave.passkey}`;
  await announceTo(D, torrent.infoHash, peerId('dave'), { left: 100, event: 'started' });
  await announceTo(D, torrent.infoHash, peerId('dave'), { left: 0, downloaded: 777, uploaded: 5, event: 'completed' });
  const m = await eventually(async () => { const x = (await api('GET', '/me', { token: dave.token })).data; return x.uploaded === 5 ? x : null; });
  assert.equal(m.downloaded, 0, 'freeleech: download not counted');

  const del = await api('DELETE', `/admin/torrents/${hex}`, { token: ADMIN_TOKEN });
  assert.equal(del.status, 200);
  assert.match(failure(await announceTo(D, torrent.infoHash, peerId('dave'), { left: 0 })), /not registered/);
  assert.equal((await api('GET', '/admin/users', { token: 'wrong-token-but-long-enough' })).status, 401);
});

test('invite-only registration', async () => {
  const inviteOnly = await startTracker({ vars: { ...VARS, INVITE_ONLY: 'true' } });
  try {
    const call = (method, path, json, token) => fetch(`${inviteOnly.base}/api${path}`, {
      method, headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: json ? JSON.stringify(json) : undefined,
    }).then(async (r) => ({ status: r.status, data: await r.json() }));
    const none = await call('POST', '/users', { username: 'erin', password: 'erin-password' });
    assert.equal(none.status, 403);
    const { data: { invite } } = await call('POST', '/admin/invites', null, ADMIN_TOKEN);

    assert.equal((await call('POST', '/users', { username: 'erin', password: 'erin-password', invite })).status, 201);
    assert.equal((await call('POST', '/users', { username: 'frank', password: 'frank-password', invite })).status, 403, 'an invite works once');
    const { data: { invite: second } } = await call('POST', '/admin/invites', null, ADMIN_TOKEN);
    assert.equal((await call('POST', '/users', { username: 'erin', password: 'erin-password', invite: second })).status, 409);
    assert.equal((await call('POST', '/users', { username: 'grace', password: 'grace-password', invite: second })).status, 201,
      'a failed registration does not use up the invite');
  } finally {
    await inviteOnly.close();
  }
});
