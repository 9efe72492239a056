// Swarm behaviour that needs the runtime: concurrency, persistence across
// a runtime restart, expiry by alarm, and storage cost per announce.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ROOT, startTracker, announce, scrape, scrapeEntry, peerId, randomHash, compactPeers, eventually,
} from './helpers.mjs';

test('100 parallel announces on one torrent are all counted', async () => {
  const t = await startTracker({ vars: { ENFORCE_MIN_INTERVAL: 'false' } });
  try {
    const infoHash = randomHash();
    const replies = await Promise.all(Array.from({ length: 100 }, (_, i) =>
      announce(t.base, { infoHash, peerId: peerId(`c${i}`), port: 20000 + i, left: i % 2 ? 0 : 10, event: 'started' },
        { ip: '10.9.0.1' })));
    assert.ok(replies.every((r) => r.status === 200 && r.body.complete !== undefined));
    const last = await announce(t.base, { infoHash, peerId: peerId('c0'), port: 20000, left: 10, numwant: 200 }, { ip: '10.9.0.1' });
    assert.equal(last.body.complete, 50);
    assert.equal(last.body.incomplete, 50);
    assert.equal(compactPeers(last.body.peers).length, 99);
    // And 100 parallel completions count 50 downloads, once each.
    await Promise.all(Array.from({ length: 100 }, (_, i) =>
      announce(t.base, { infoHash, peerId: peerId(`c${i - (i % 2)}`), port: 20000 + i - (i % 2), left: 0, event: 'completed' },
        { ip: '10.9.0.1' })));
    const after = await announce(t.base, { infoHash, peerId: peerId('c1'), port: 20001, left: 0 }, { ip: '10.9.0.1' });
    assert.equal(after.body.downloaded, 50);
    assert.equal(after.body.complete, 100);
  } finally {
    await t.close();
  }
});

test('peers and completed counts survive a runtime restart on the same state', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edge-tracker-restart-'));
  let t;
  try {
    const infoHash = randomHash();
    // A torrent's own object writes through; a shard writes behind (tests/shards.test.mjs).
    t = await startTracker({ vars: { SWARM_SHARDS: '0' }, persistDir: dir });
    await announce(t.base, { infoHash, peerId: peerId('s'), port: 1, left: 0, event: 'started' }, { ip: '10.5.0.1' });
    await announce(t.base, { infoHash, peerId: peerId('l'), port: 2, left: 5, event: 'started' }, { ip: '10.5.0.2' });
    await announce(t.base, { infoHash, peerId: peerId('l'), port: 2, left: 0, event: 'completed' }, { ip: '10.5.0.2' });
    await announce(t.base, { infoHash, peerId: peerId('v6'), port: 3, left: 5, event: 'started' }, { ip: '2001:db8::5' });
    // A steady re-announce right before the crash: only its timestamp is batched.
    await announce(t.base, { infoHash, peerId: peerId('s'), port: 1, left: 0 }, { ip: '10.5.0.1' });
    await t.stop();

    t = await startTracker({ vars: { SWARM_SHARDS: '0' }, persistDir: dir });
    const r = await announce(t.base, { infoHash, peerId: peerId('new'), port: 4, left: 5, compact: 0 }, { ip: '10.5.0.4' });
    assert.equal(r.body.complete, 2);
    assert.equal(r.body.incomplete, 2);
    assert.equal(r.body.downloaded, 1);
    const seen = r.body.peers.map((p) => `${Buffer.from(p.ip)}:${p.port}`).sort();
    assert.deepEqual(seen, ['10.5.0.1:1', '10.5.0.2:2', '2001:db8::5:3']);
    // The completed peer is still known as completed: no double count.
    const again = await announce(t.base, { infoHash, peerId: peerId('l'), port: 2, left: 0, event: 'completed' }, { ip: '10.5.0.2' });
    assert.equal(again.body.downloaded, 1);
  } finally {
    // On a failure too: a runtime left running keeps the test file open.
    await t?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a silent peer expires after interval plus grace (alarm)', async () => {
  const t = await startTracker({ vars: { INTERVAL: '10', MIN_INTERVAL: '5', PEER_GRACE: '1', PUBLISH_WINDOW: '1' } });
  try {
    const infoHash = randomHash();
    await announce(t.base, { infoHash, peerId: peerId('gone'), port: 1, event: 'started' }, { ip: '10.6.0.1' });
    const started = Date.now();
    // The other peer keeps announcing; the silent one must disappear.
    const r = await eventually(async () => {
      const x = await announce(t.base, { infoHash, peerId: peerId('here'), port: 2 }, { ip: '10.6.0.2' });
      return x.body.incomplete === 1 ? x : null;
    }, { ms: 30000, every: 1000 });
    assert.deepEqual(compactPeers(r.body.peers), []);
    assert.ok(Date.now() - started >= 10000, 'not before the timeout');
    const s = await eventually(async () => {
      const e = scrapeEntry((await scrape(t.base, [infoHash])).body, infoHash);
      return e?.incomplete === 1 ? e : null;
    });
    assert.equal(s.incomplete, 1);
  } finally {
    await t.close();
  }
});

test('storage rows per announce: membership written through, steady re-announces free', async () => {
  // A torrent's own object (a shard writes behind, in packed rows).
  const t = await startTracker({ vars: { REFRESH_AFTER: '5', ENFORCE_MIN_INTERVAL: 'false', SWARM_SHARDS: '0' } });
  try {
    const infoHash = randomHash();
    const n = 200;
    const phase = async (fields) => {
      const rs = [];
      for (let i = 0; i < n; i++) {
        rs.push(await announce(t.base, { infoHash, peerId: peerId(`k${i}`), port: 30000 + i, ...fields(i) }, { ip: '10.7.0.1' }));
      }
      return rs;
    };
    const avg = (rs, key) => rs.reduce((a, r) => a + r[key], 0) / rs.length;
    const started = await phase(() => ({ event: 'started', left: 10 }));
    const steady = await phase(() => ({ left: 5 }));
    // Once storage's copy of a peer's time is REFRESH_AFTER old, a re-announce
    // writes it (a small swarm writes the row itself; large ones batch).
    await new Promise((r) => setTimeout(r, 5100));
    const refresh = await phase(() => ({ left: 5 }));
    const completed = await phase(() => ({ event: 'completed', left: 0 }));
    const stopped = await phase(() => ({ event: 'stopped', left: 0 }));
    const report = {
      peers: n,
      new_peer: { rows_written: avg(started, 'rowsWritten'), rows_read: avg(started, 'rowsRead') },
      steady_reannounce: { rows_written: avg(steady, 'rowsWritten'), rows_read: avg(steady, 'rowsRead') },
      refresh_due: { rows_written: avg(refresh, 'rowsWritten') },
      completed: { rows_written: avg(completed, 'rowsWritten') },
      stopped: { rows_written: avg(stopped, 'rowsWritten') },
    };
    mkdirSync(join(ROOT, 'test-results'), { recursive: true });
    writeFileSync(join(ROOT, 'test-results', 'storage-rows.json'), JSON.stringify(report, null, 2) + '\n');
    console.log('storage rows per announce', JSON.stringify(report));
    assert.ok(report.new_peer.rows_written <= 1.05, 'a new peer costs its row (the first also the swarm row and alarm)');
    assert.equal(report.steady_reannounce.rows_written, 0, 'a steady re-announce writes nothing');
    assert.ok(report.refresh_due.rows_written >= 1 && report.refresh_due.rows_written <= 1.05, JSON.stringify(report.refresh_due));
    assert.ok(report.completed.rows_written <= 2.05, 'completion: the peer row and the swarm counter');
    assert.ok(report.stopped.rows_written <= 1.05, 'stop: delete the peer row');
  } finally {
    await t.close();
  }
});
