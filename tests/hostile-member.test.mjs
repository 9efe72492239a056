// A hostile member against the swarms and the ledger, over real HTTP: curl,
// their own passkey, other members' peer ids and a second account. Each
// attack from issue 14 is tried here and must fail, while the honest
// clients around it keep their entries and are credited to the byte.
// (Account-side attacks — tokens, passkey revival, oversized torrents,
// hybrid attributes — are in hostile-member-api.test.mjs.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startTracker, announce, get, escapeBytes, peerId, compactPeers, eventually, text, ADMIN_TOKEN } from './helpers.mjs';
import { makeTorrentFromData } from './torrent.mjs';
import { PRIVATE_VARS, fileTracker, failure } from './private-api.mjs';

const VARS = { ...PRIVATE_VARS, MIN_RATIO: '0.5', RATIO_ALLOWANCE: '1000000' };
const MAX = 2 ** 53 - 1;

const run = fileTracker(VARS, 'hostile');
const { api } = run.p;
let t;
before(async () => { t = await run.start(); });
after(() => run.close());

async function member(name) {
  const reg = await api('POST', '/users', { json: { username: name, password: `pw-${name}-secret` } });
  assert.equal(reg.status, 201, JSON.stringify(reg.data));
  const login = await api('POST', '/login', { json: { username: name, password: `pw-${name}-secret` } });
  return { name, passkey: reg.data.passkey, token: login.data.token };
}

async function torrent(owner) {
  const made = makeTorrentFromData(`hostile-${randomBytes(4).toString('hex')}.bin`, randomBytes(4096), 'http://x/announce', { private: true });
  const up = await api('POST', '/torrents', { token: owner.token, body: made.torrent });
  assert.equal(up.status, 201, JSON.stringify(up.data));
  return made.infoHash;
}

/** What a client (or curl) sends with `who`'s passkey. */
function send(who, infoHash, id, fields = {}, ip = '10.20.0.1') {
  const q = { port: 6881, uploaded: 0, downloaded: 0, left: 0, compact: 1, ...fields };
  const qs = Object.entries(q).map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
  return get(`${t.base}/announce/${who.passkey}?info_hash=${escapeBytes(infoHash)}&peer_id=${escapeBytes(id)}&${qs}`, { ip });
}

const totals = async (who) => (await api('GET', '/me', { token: who.token })).data;

/** Waits until the credit flushes have settled for `who` at `up`/`down`. */
async function settled(who, up, down) {
  return eventually(async () => {
    const m = await totals(who);
    return m.uploaded === up && m.downloaded === down ? m : null;
  }, { ms: 15000 });
}

/** What an admin sees: `GET /api/admin/flags`, this member's, oldest first. */
async function flags(name) {
  const r = await api('GET', '/admin/flags?limit=1000', { token: ADMIN_TOKEN });
  assert.equal(r.status, 200, JSON.stringify(r.data));
  return r.data.flags.filter((f) => f.username === name).reverse();
}

test('upload out of thin air: alternating started 0 / 2^53-1 credits nothing and is flagged', async () => {
  const mallory = await member('mallory1');
  const hash = await torrent(mallory);
  for (let i = 0; i < 6; i++) {
    const r = await send(mallory, hash, peerId('thin-air'), { event: 'started', uploaded: i % 2 ? MAX : 0 });
    assert.equal(failure(r), null);
  }
  // A real upload afterwards is credited to the byte.
  await send(mallory, hash, peerId('thin-air'), { uploaded: MAX });
  const f = await eventually(async () => { const x = await flags('mallory1'); return x.length >= 3 ? x : null; }, { ms: 15000 });
  assert.ok(f.every((x) => /uploaded grew faster than MAX_CREDIT_RATE/.test(x.reason) && x.credited === 0), JSON.stringify(f));
  assert.equal((await totals(mallory)).uploaded, 0, 'not a byte of the 24 PiB');
});

test('counters that jump past MAX_CREDIT_RATE credit nothing; honest deltas are exact', async () => {
  const mallory = await member('mallory2');
  const hash = await torrent(mallory);
  const id = peerId('too-fast');
  await send(mallory, hash, id, { event: 'started' });
  await send(mallory, hash, id, { uploaded: 1e15 }); // 1 PB within a second or two
  await send(mallory, hash, id, { uploaded: 1e15 + 123456 });
  await settled(mallory, 123456, 0);
  const f = await eventually(async () => { const x = await flags('mallory2'); return x.length ? x : null; });
  assert.equal(f[0].reported, 1e15);
});

test('peer-id takeover: another member\'s stop, start or counters never touch the victim', async () => {
  const victim = await member('victim3');
  const thief = await member('thief3');
  const watcher = await member('watcher3');
  const hash = await torrent(victim);
  const vid = peerId('victim-seed');
  assert.equal(failure(await send(victim, hash, vid, { event: 'started' }, '10.20.3.1')), null);
  await send(victim, hash, vid, { uploaded: 5000 }, '10.20.3.1');
  // The thief read the victim's peer id somewhere and uses it, from its own
  // address and from the victim's, with its own passkey and counters.
  for (const ip of ['10.20.3.66', '10.20.3.1']) {
    for (const fields of [{ event: 'stopped', uploaded: 7000 }, { event: 'started', left: 10 }, { uploaded: 9000, left: 10 }]) {
      const r = await send(thief, hash, vid, fields, ip);
      assert.equal(failure(r), null, 'no cross-member "peer id busy" or other refusal');
    }
  }
  // The victim is still listed where it announced from.
  const view = await send(watcher, hash, peerId('watcher3'), { left: 10, event: 'started' }, '10.20.3.9');
  assert.ok(compactPeers(view.body.peers).includes('10.20.3.1:6881'), JSON.stringify(compactPeers(view.body.peers)));
  // Its accounting is untouched: its next report is credited exactly.
  await send(victim, hash, vid, { uploaded: 12000 }, '10.20.3.1');
  await send(victim, hash, vid, { uploaded: 12000, event: 'stopped' }, '10.20.3.1');
  await settled(victim, 12000, 0);
  // The thief's reports are one session of its own (its user and that peer
  // id): each stop/start pair set a baseline, each 0 -> 9000 counted once.
  await settled(thief, 18000, 0);
});

test('ratio bypass: a member below the minimum cannot ride another\'s download in progress', async () => {
  const owner = await member('owner4');
  const leecher = await member('leecher4');
  const low = await member('low4');
  const hash = await torrent(owner);
  const adj = await api('POST', '/admin/users/low4/adjust', { token: ADMIN_TOKEN, json: { downloaded: 2000000, uploaded: 1000 } });
  assert.equal(adj.status, 200);
  const lid = peerId('leech-4');
  assert.equal(failure(await send(leecher, hash, lid, { event: 'started', left: 4096 }, '10.20.4.2')), null);
  const r = await send(low, hash, lid, { left: 4096 }, '10.20.4.2');
  assert.match(failure(r) ?? '', /ratio is below the minimum/);
  const r2 = await send(low, hash, lid, { left: 4096, event: 'started' }, '10.20.4.99');
  assert.match(failure(r2) ?? '', /ratio is below the minimum/);
  // Seeding stays allowed for that member.
  assert.equal(failure(await send(low, hash, peerId('low-seed'), { event: 'started', left: 0 }, '10.20.4.3')), null);
});

test('private peer lists never carry peer ids, whatever compact and no_peer_id ask', async () => {
  const a = await member('lista5');
  const b = await member('listb5');
  const hash = await torrent(a);
  await send(a, hash, peerId('list-a'), { event: 'started' }, '10.20.5.1');
  for (const fields of [{ compact: 0 }, { compact: 0, no_peer_id: 0 }]) {
    const r = await send(b, hash, peerId('list-b'), { event: 'started', left: 10, ...fields }, '10.20.5.2');
    assert.equal(r.body.peers.length, 1);
    assert.equal(text(r.body.peers[0].ip), '10.20.5.1');
    assert.equal(r.body.peers[0]['peer id'], undefined);
    assert.ok(!r.raw.includes(peerId('list-a')), 'the id appears nowhere in the answer');
  }
});

test('public swarms: a borrowed peer id from another address neither moves nor stops the victim; dual-stack is listed twice', async () => {
  const p = await startTracker({ vars: { ENFORCE_MIN_INTERVAL: 'false' } });
  try {
    const infoHash = randomBytes(20);
    const vid = peerId('pub-victim');
    await announce(p.base, { infoHash, peerId: vid, event: 'started', port: 7001 }, { ip: '10.30.0.1' });
    // compact=0 hands out the victim's id; the attacker uses it.
    const leak = await announce(p.base, { infoHash, peerId: peerId('pub-snoop'), compact: 0 }, { ip: '10.30.0.5' });
    assert.ok(Buffer.from(leak.body.peers[0]['peer id']).equals(vid));
    await announce(p.base, { infoHash, peerId: vid, port: 9999, left: 0 }, { ip: '10.30.0.66' });
    await announce(p.base, { infoHash, peerId: vid, port: 9999, event: 'stopped' }, { ip: '10.30.0.66' });
    const view = await announce(p.base, { infoHash, peerId: peerId('pub-view'), left: 0 }, { ip: '10.30.0.7' });
    const listed = compactPeers(view.body.peers);
    assert.ok(listed.includes('10.30.0.1:7001'), `the victim is where it was, still a leecher: ${listed}`);
    assert.ok(!listed.some((x) => x.startsWith('10.30.0.66')), `${listed}`);
    // A dual-stack client announces once per family, with its key: listed in both.
    const ds = peerId('pub-dual');
    await announce(p.base, { infoHash, peerId: ds, port: 7002, key: 'D5D5D5D5' }, { ip: '10.30.0.2' });
    await announce(p.base, { infoHash, peerId: ds, port: 7002, key: 'D5D5D5D5' }, { ip: '2001:db8::2' });
    const both = await announce(p.base, { infoHash, peerId: peerId('pub-view2') }, { ip: '10.30.0.8' });
    assert.ok(compactPeers(both.body.peers).includes('10.30.0.2:7002'));
    assert.deepEqual(compactPeers(both.body.peers6, true), ['2001:db8:0:0:0:0:0:2:7002']);
  } finally {
    await p.close();
  }
});

test('restarted sessions: a client restart (counters back to zero) loses no honest byte and gains none', async () => {
  const a = await member('restart6');
  const hash = await torrent(a);
  const id = peerId('restart-6');
  await send(a, hash, id, { event: 'started' });
  await send(a, hash, id, { uploaded: 1000 });
  // The client restarts with the same peer id: its counters start over.
  await send(a, hash, id, { event: 'started', uploaded: 0 });
  await send(a, hash, id, { uploaded: 400 });
  // A hostile "restart" straight to a high value only sets a baseline.
  await send(a, hash, id, { event: 'started', uploaded: 50 });
  await send(a, hash, id, { event: 'started', uploaded: 5e12 });
  await send(a, hash, id, { uploaded: 5e12 + 600 });
  await settled(a, 2000, 0);
});
