// Small public swarms sharing objects (SWARM_SHARDS): what a client and an
// operator see is what one object per torrent gives them, across restarts,
// a swarm growing out of its shard, torrents that already had their own
// object, scrapes, /stats and operator blocks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import {
  ADMIN_TOKEN, startTracker, announce, scrape, scrapeEntry, peerId, randomHash, compactPeers, eventually, get, text, shardsWritten,
} from './helpers.mjs';

const SHARED = { SWARM_SHARDS: '2', FLUSH_DELAY: '1', ENFORCE_MIN_INTERVAL: 'false' };

/** Peer `n` of a test: its own address and port. */
function join_(t, infoHash, n, fields = {}) {
  return announce(t.base, { infoHash, peerId: peerId(`p${n}`), port: 1000 + n, left: 5, event: 'started', ...fields }, { ip: `10.7.0.${n}` });
}

const listed = (r) => compactPeers(r.body.peers).sort();
const addr = (n) => `10.7.0.${n}:${1000 + n}`;

/** Runs `fn(start)`: `start(vars)` starts the tracker on one state
 * directory (again: a restart); every runtime stops at the end, on a
 * failure too (one left running keeps the test file open). */
async function withDir(fn) {
  const dir = mkdtempSync(join(tmpdir(), 'edge-tracker-shards-'));
  const running = [];
  try {
    await fn(async (vars) => {
      const t = await startTracker({ vars, persistDir: dir });
      const stop = t.stop;
      let stopped;
      t.stop = () => (stopped ??= stop());
      running.push(t);
      return t;
    });
  } finally {
    for (const t of running) await t.stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

test('small swarms in one shard: each lists its own peers, scrape and /stats count them', async () => {
  const t = await startTracker({ vars: SHARED });
  try {
    const [a, b] = [randomHash(), randomHash()];
    await join_(t, a, 1, { left: 0 });
    await join_(t, b, 2);
    const r = await join_(t, a, 3);
    assert.equal(r.status, 200);
    assert.deepEqual(listed(r), [addr(1)], 'only torrent a\'s peer');
    assert.deepEqual([r.body.complete, r.body.incomplete], [1, 1]);
    // A scrape reads through to the shard each time (nothing is cached in KV).
    for (const expected of [{ complete: 1, incomplete: 1 }, { complete: 1, incomplete: 2 }]) {
      const s = await scrape(t.base, [a, b]);
      assert.deepEqual(scrapeEntry(s.body, a), { ...expected, downloaded: 0 });
      assert.deepEqual(scrapeEntry(s.body, b), { complete: 0, incomplete: 1, downloaded: 0 });
      await join_(t, a, 4);
    }
    const stats = JSON.parse((await get(`${t.base}/stats`)).raw.toString());
    assert.deepEqual([stats.torrents, stats.seeders, stats.leechers], [2, 1, 3]);
  } finally {
    await t.close();
  }
});

test('a shard writes behind: peers and completed counts survive a restart once written', async () => {
  await withDir(async (start) => {
    const infoHash = randomHash();
    let t = await start(SHARED);
    await join_(t, infoHash, 1, { left: 0 });
    await join_(t, infoHash, 2);
    await join_(t, infoHash, 2, { left: 0, event: 'completed' });
    await join_(t, infoHash, 3);
    // Written within FLUSH_DELAY, by the alarm.
    await shardsWritten(t, 2);
    await t.stop();

    t = await start(SHARED);
    const r = await join_(t, infoHash, 4);
    assert.deepEqual(listed(r), [addr(1), addr(2), addr(3)]);
    assert.deepEqual([r.body.complete, r.body.incomplete, r.body.downloaded], [2, 2, 1]);
    // The completion is still known: no second count.
    const again = await join_(t, infoHash, 2, { left: 0, event: 'completed' });
    assert.equal(again.body.downloaded, 1);
  });
});

test('a shard loaded again keeps its scheduled alarm: a steady announce after a restart writes nothing', async () => {
  await withDir(async (start) => {
    const infoHash = randomHash();
    let t = await start(SHARED);
    await join_(t, infoHash, 1, { left: 0 });
    await join_(t, infoHash, 2);
    // Written by the alarm, which then waits for the next sweep.
    await shardsWritten(t, 2);
    await t.stop();

    t = await start(SHARED);
    const r = await join_(t, infoHash, 1, { left: 0, event: undefined });
    assert.deepEqual(listed(r), [addr(2)]);
    assert.equal(r.rowsWritten, 0, 'no row and no alarm: the sweep\'s alarm is still scheduled');
    // The next one is answered at once, and writes nothing either.
    assert.equal((await join_(t, infoHash, 2, { event: undefined })).rowsWritten, 0);
  });
});

test('a crash before the shard wrote a join: the peer is listed again at its next announce', async () => {
  await withDir(async (start) => {
    // FLUSH_DELAY 5: the runtime stops well before the shard writes.
    const vars = { ...SHARED, FLUSH_DELAY: '5' };
    const infoHash = randomHash();
    let t = await start(vars);
    await join_(t, infoHash, 1, { left: 0 });
    assert.deepEqual(listed(await join_(t, infoHash, 2)), [addr(1)]);
    await t.stop();

    t = await start(vars);
    assert.deepEqual(listed(await join_(t, infoHash, 3)), [], 'the unwritten joins are gone');
    // Peer 1's next announce (no event) puts it back, for everyone.
    await join_(t, infoHash, 1, { left: 0, event: undefined });
    const r = await join_(t, infoHash, 4);
    assert.deepEqual(listed(r), [addr(1), addr(3)]);
    assert.deepEqual([r.body.complete, r.body.incomplete], [1, 2]);
  });
});

test('a shard writes 200 joins into 50 small swarms as a few rows, not 200', async () => {
  // FLUSH_DELAY 5 (the most a shard waits): the joins span one or two
  // flush windows however slow the machine, so the count does not depend
  // on how many seconds 200 announces take.
  const t = await startTracker({ vars: { ...SHARED, SWARM_SHARDS: '1', FLUSH_DELAY: '5' } });
  try {
    const hashes = Array.from({ length: 50 }, randomHash);
    let last;
    for (let n = 1; n <= 200; n++) last = await join_(t, hashes[n % 50], n);
    assert.equal(compactPeers(last.body.peers).length, 3, 'each swarm lists its other peers');
    // Once written (FLUSH_DELAY), a re-announce reads the shard's total.
    await shardsWritten(t, 1);
    const total = (await join_(t, hashes[0], 50, { event: undefined })).rowsWrittenTotal;
    // Per flush, the alarm set and one bucket row; then the sweep's alarm.
    assert.ok(total <= 8, `${total} rows written for 200 joins`);
  } finally {
    await t.close();
  }
});

test('a swarm that reaches SHARD_PROMOTE moves to its own object with its peers, for good', async () => {
  await withDir(async (start) => {
    const vars = { ...SHARED, SHARD_PROMOTE: '4' };
    const infoHash = randomHash();
    let t = await start(vars);
    await join_(t, infoHash, 1, { left: 0 });
    await join_(t, infoHash, 2);
    await join_(t, infoHash, 2, { left: 0, event: 'completed' });
    await join_(t, infoHash, 3);
    await join_(t, infoHash, 4);
    // The move runs beside the answer that found the swarm grown; the
    // torrent's announces then come back from its own object (`x-moved`).
    const moved = await eventually(async () => {
      const res = await fetch(`${t.base}/announce?info_hash=${escape(infoHash)}&peer_id=${escape(peerId('p5'))}&port=1005&uploaded=0&downloaded=0&left=5&compact=1&event=started`,
        { headers: { 'cf-connecting-ip': '10.7.0.5' } });
      await res.arrayBuffer();
      return res.headers.get('x-moved') === '1';
    });
    assert.ok(moved);
    let r = await join_(t, infoHash, 6);
    assert.deepEqual(listed(r), [1, 2, 3, 4, 5].map(addr).sort());
    assert.deepEqual([r.body.complete, r.body.incomplete, r.body.downloaded], [2, 4, 1]);
    await t.stop();

    // After a restart the shard still sends it there, and it has them all.
    t = await start(vars);
    r = await join_(t, infoHash, 7);
    assert.deepEqual(listed(r), [1, 2, 3, 4, 5, 6].map(addr).sort());
    assert.equal(r.body.downloaded, 1);
    const s = await scrape(t.base, [infoHash]);
    assert.deepEqual(scrapeEntry(s.body, infoHash), { complete: 2, incomplete: 5, downloaded: 1 });
  });
});

test('turning SWARM_SHARDS on keeps torrents that already have their own object there', async () => {
  await withDir(async (start) => {
    const infoHash = randomHash();
    let t = await start({ ENFORCE_MIN_INTERVAL: 'false', SWARM_SHARDS: '0' });
    await join_(t, infoHash, 1, { left: 0 });
    await join_(t, infoHash, 2);
    await join_(t, infoHash, 2, { left: 0, event: 'completed' });
    await t.stop();

    t = await start(SHARED);
    const r = await join_(t, infoHash, 3);
    assert.deepEqual(listed(r), [addr(1), addr(2)]);
    assert.deepEqual([r.body.complete, r.body.downloaded], [2, 1]);
    const fresh = randomHash();
    await join_(t, fresh, 1);
    assert.deepEqual(listed(await join_(t, fresh, 2)), [addr(1)], 'a new torrent is shared');
  });
});

test('an operator block on a shared torrent moves it out: peers dropped, announces refused', async () => {
  const t = await startTracker({ vars: SHARED });
  try {
    const infoHash = randomHash();
    const hex = infoHash.toString('hex');
    await join_(t, infoHash, 1);
    await join_(t, infoHash, 2);
    const res = await fetch(`${t.base}/api/admin/blocked`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ info_hash: hex }),
    });
    assert.equal(res.status, 200);
    const r = await join_(t, infoHash, 3);
    assert.equal(text(r.body['failure reason']), 'this torrent is blocked on this tracker');
    const s = await scrape(t.base, [infoHash]);
    assert.equal(scrapeEntry(s.body, infoHash)?.incomplete ?? 0, 0);
    const unblock = await fetch(`${t.base}/api/admin/blocked`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ info_hash: hex }),
    });
    assert.equal(unblock.status, 200);
    const back = await join_(t, infoHash, 4);
    assert.equal(back.body['failure reason'], undefined);
    assert.equal(back.body.incomplete, 1, 'the peers dropped by the block are gone');
  } finally {
    await t.close();
  }
});

function escape(buf) {
  return [...buf].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
}

test('HTTP and WebSocket scrapes of a shared torrent agree: both ask its shard, not a stale KV entry', async () => {
  const t = await startTracker({ vars: SHARED });
  try {
    const infoHash = randomHash();
    await join_(t, infoHash, 1, { left: 0 });
    await join_(t, infoHash, 2);
    // What its own object cached before SWARM_SHARDS was on, still live.
    await (await t.mf.getKVNamespace('TRACKER_KV')).put(`cached:${infoHash.toString('hex')}`, '7 7 7');
    const live = { complete: 1, incomplete: 1, downloaded: 0 };
    assert.deepEqual(scrapeEntry((await scrape(t.base, [infoHash])).body, infoHash), live, 'HTTP');
    const ws = new WebSocket(`${t.base.replace(/^http/, 'ws')}/announce`);
    try {
      await once(ws, 'open');
      ws.send(JSON.stringify({ action: 'scrape', info_hash: infoHash.toString('latin1') }));
      const [data] = await once(ws, 'message');
      assert.deepEqual(JSON.parse(data.toString()).files[infoHash.toString('latin1')], live, 'WebSocket');
    } finally {
      ws.close();
    }
  } finally {
    await t.close();
  }
});

test('a burst of announces past SHARD_PROMOTE moves the swarm once, with every peer', async () => {
  const logs = [];
  const t = await startTracker({ vars: { ...SHARED, SHARD_PROMOTE: '4' }, logs });
  try {
    const infoHash = randomHash();
    const N = 30;
    // At once: the Worker sends them to the shard together (entry.mjs
    // `ask`), and every one after the fourth finds the swarm due to move.
    const burst = await Promise.all(Array.from({ length: N }, (_, i) => join_(t, infoHash, i + 1)));
    assert.ok(burst.every((r) => r.status === 200 && r.body['failure reason'] === undefined));
    assert.ok(burst.some((r) => r.batch > 1), 'some went together');
    const r = await eventually(async () => {
      const again = await join_(t, infoHash, N + 1);
      return listed(again).length === N ? again : undefined;
    });
    assert.deepEqual(listed(r), Array.from({ length: N }, (_, i) => addr(i + 1)).sort());
    assert.equal(r.body.incomplete, N + 1);
    assert.equal(logs.filter((line) => line.includes('"swarm_moved"')).length, 1, logs.filter((l) => l.includes('swarm_')).join('\n'));
  } finally {
    await t.close();
  }
});
