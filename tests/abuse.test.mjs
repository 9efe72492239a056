// Abuse controls a tracker operator relies on: min interval, per-address
// rate limits, client bans, blocked torrents and the per-swarm peer cap.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  startTracker, ADMIN_TOKEN, announce, scrape, scrapeEntry, randomHash, peerId, text, eventually, compactPeers,
} from './helpers.mjs';

const failure = (r) => text(r.body?.['failure reason']) ?? null;

async function admin(base, method, path, json) {
  const res = await fetch(`${base}/api/admin${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: json ? JSON.stringify(json) : undefined,
  });
  return { status: res.status, data: await res.json() };
}

test('min interval: a plain re-announce too soon gets a normal answer and writes nothing; events apply', async () => {
  const t = await startTracker({ vars: { MIN_INTERVAL: '600' } });
  try {
    const infoHash = randomHash();
    const id = peerId('eager');
    assert.equal(failure(await announce(t.base, { infoHash, peerId: id, event: 'started' })), null);
    await announce(t.base, { infoHash, peerId: peerId('other'), event: 'started', left: 0 }, { ip: '10.9.0.2' });
    // "Ask for more peers" in a client: counts, a fresh list, the interval; no row written.
    const again = await announce(t.base, { infoHash, peerId: id });
    assert.equal(failure(again), null);
    assert.equal(again.status, 200);
    assert.equal(again.body.interval, 1800);
    assert.equal(again.body['min interval'], 600);
    assert.equal(again.body.complete, 1);
    assert.deepEqual(compactPeers(again.body.peers), ['10.9.0.2:6881']);
    assert.equal(again.rowsWritten, 0, 'an early re-announce writes nothing');
    // Completion and stop are events: they apply and count at once.
    const done = await announce(t.base, { infoHash, peerId: id, left: 0, event: 'completed' });
    assert.equal(failure(done), null);
    assert.equal(done.body.downloaded, 1);
    assert.equal(failure(await announce(t.base, { infoHash, peerId: id, left: 0, event: 'stopped' })), null);
  } finally {
    await t.close();
  }
});

test('rate limits: an address over its budget gets a failure (tracker) or 429 (API); others do not', async () => {
  const t = await startTracker({
    ratelimits: {
      ANNOUNCE_LIMITER: { simple: { limit: 5, period: 60 } },
      API_LIMITER: { simple: { limit: 3, period: 60 } },
    },
    vars: { ENFORCE_MIN_INTERVAL: 'false' },
  });
  try {
    const infoHash = randomHash();
    const results = [];
    for (let i = 0; i < 8; i++) {
      results.push(await announce(t.base, { infoHash, peerId: peerId(`rl${i}`) }, { ip: '198.51.100.7' }));
    }
    const refused = results.filter((r) => failure(r)?.startsWith('too many requests from your address'));
    assert.ok(refused.length >= 3, `expected refusals after 5, got ${results.map(failure).join(', ')}`);
    assert.ok(refused.every((r) => r.status === 200 && r.body['retry in'] >= 1));
    // Scrape shares the tracker budget.
    const s = await fetch(`${t.base}/scrape?info_hash=${'%00'.repeat(20)}`, { headers: { 'cf-connecting-ip': '198.51.100.7' } });
    assert.match(Buffer.from(await s.arrayBuffer()).toString(), /too many requests/);
    // A different address has its own budget.
    const other = await announce(t.base, { infoHash, peerId: peerId('other') }, { ip: '198.51.100.8' });
    assert.equal(failure(other), null);

    const statuses = [];
    for (let i = 0; i < 5; i++) {
      const r = await fetch(`${t.base}/api/admin/client-bans`, { headers: { 'cf-connecting-ip': '203.0.113.9' } });
      statuses.push(r.status);
      if (r.status === 429) {
        assert.ok(Number(r.headers.get('retry-after')) > 0);
        assert.match((await r.json()).error, /too many API requests/);
      } else {
        await r.arrayBuffer();
      }
    }
    assert.deepEqual(statuses.slice(0, 3), [401, 401, 401]);
    assert.ok(statuses.slice(3).every((s) => s === 429), statuses.join());
  } finally {
    await t.close();
  }
});

test('client ban list works in public mode: banned prefixes are refused, others pass', async () => {
  const t = await startTracker();
  try {
    const infoHash = randomHash();
    const bad = Buffer.from('-XX0001-abcdefghijkl');
    assert.equal(failure(await announce(t.base, { infoHash, peerId: bad })), null);
    const add = await admin(t.base, 'POST', '/client-bans', { prefix: '-XX' });
    assert.equal(add.status, 200, JSON.stringify(add.data));
    assert.deepEqual(add.data.prefixes, ['-XX']);
    assert.equal(failure(await announce(t.base, { infoHash, peerId: bad, event: 'started' })), 'this BitTorrent client is banned on this tracker');
    assert.equal(failure(await announce(t.base, { infoHash, peerId: peerId('good') })), null);
    const del = await admin(t.base, 'DELETE', '/client-bans', { prefix: '-XX' });
    assert.deepEqual(del.data.prefixes, []);
    assert.equal(failure(await announce(t.base, { infoHash, peerId: bad, event: 'started' })), null);
    // Without the token nothing changes.
    const res = await fetch(`${t.base}/api/admin/client-bans`, { method: 'POST', body: '{"prefix":"-TR"}' });
    assert.equal(res.status, 401);
  } finally {
    await t.close();
  }
});

test('blocked torrents: peers dropped, announces refused, scrape empty, the block survives a restart', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edge-tracker-block-'));
  const vars = { PUBLISH_WINDOW: '1' };
  let t = await startTracker({ vars, persistDir: dir });
  try {
    const infoHash = randomHash();
    for (let i = 0; i < 3; i++) await announce(t.base, { infoHash, peerId: peerId(`b${i}`), port: 7000 + i, event: 'started' });
    await eventually(async () => scrapeEntry((await scrape(t.base, [infoHash])).body, infoHash)?.incomplete === 3);
    const hex = infoHash.toString('hex');
    const blocked = await admin(t.base, 'POST', '/blocked', { info_hash: hex });
    assert.deepEqual(blocked, { status: 200, data: { info_hash: hex, blocked: true, hashes: [hex] } });
    assert.equal(failure(await announce(t.base, { infoHash, peerId: peerId('b9'), event: 'started' })), 'this torrent is blocked on this tracker');
    assert.equal(scrapeEntry((await scrape(t.base, [infoHash])).body, infoHash)?.incomplete ?? 0, 0);
    assert.deepEqual((await admin(t.base, 'GET', '/blocked')).data, { blocked: [hex] });
    assert.equal((await admin(t.base, 'POST', '/blocked', { info_hash: 'nothex' })).status, 400);

    await t.stop();
    t = await startTracker({ vars, persistDir: dir });
    assert.equal(failure(await announce(t.base, { infoHash, peerId: peerId('b1'), event: 'started' })), 'this torrent is blocked on this tracker');

    assert.equal((await admin(t.base, 'DELETE', '/blocked', { info_hash: hex })).status, 200);
    const back = await announce(t.base, { infoHash, peerId: peerId('b1'), event: 'started' });
    assert.equal(failure(back), null);
    assert.equal(back.body.incomplete, 1, 'the peers dropped by the block are gone');
    assert.deepEqual((await admin(t.base, 'GET', '/blocked')).data, { blocked: [] });
  } finally {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('swarm cap: a full swarm answers a newcomer with peers and a warning, without listing it', async () => {
  const t = await startTracker({ vars: { MAX_PEERS: '3' } });
  try {
    const infoHash = randomHash();
    for (let i = 0; i < 3; i++) {
      await announce(t.base, { infoHash, peerId: peerId(`m${i}`), port: 8000 + i, event: 'started' }, { ip: '10.1.0.1' });
    }
    const late = await announce(t.base, { infoHash, peerId: peerId('late'), port: 8100, left: 0, event: 'started' }, { ip: '10.1.0.2' });
    assert.equal(failure(late), null);
    assert.match(text(late.body['warning message']), /swarm is full/);
    assert.equal(compactPeers(late.body.peers).length, 3);
    assert.equal(late.body.complete + late.body.incomplete, 3, 'the newcomer is not counted');
    const member = await announce(t.base, { infoHash, peerId: peerId('m0'), port: 8000, left: 0, event: 'completed' }, { ip: '10.1.0.1' });
    assert.equal(member.body['warning message'], undefined);
    assert.ok(!compactPeers(member.body.peers).includes('10.1.0.2:8100'));
  } finally {
    await t.close();
  }
});

test('private mode: error messages never echo the passkey', async () => {
  const t = await startTracker({ vars: { TRACKER_MODE: 'private', PASSWORD_ROUNDS: '1000' } });
  try {
    const passkey = 'f00dfeedcafebabe0123456789abcdef';
    const r = await announce(t.base, { infoHash: randomHash(), peerId: peerId('x') }, { path: `/announce/${passkey}` });
    assert.equal(failure(r), 'unknown or revoked passkey');
    const q = await announce(t.base, { infoHash: randomHash(), peerId: peerId('x'), passkey });
    assert.ok(!q.raw.toString().includes(passkey));
  } finally {
    await t.close();
  }
});
