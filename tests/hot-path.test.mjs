// The JS entry's hot paths (src/worker/entry.mjs) answer exactly as
// worker-rs's full path does: a swarm's first announce after a (re)start
// goes through the full path, the ones after it through `announceNow`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTracker, announce, scrape, scrapeEntry, compactPeers, randomHash, peerId, text, shardsWritten } from './helpers.mjs';

const VARS = { ENFORCE_MIN_INTERVAL: 'false' };

// What a client sees in an answer, with the peer list as a set.
function seen(r) {
  assert.equal(r.status, 200);
  const { peers, ...rest } = r.body;
  return { ...rest, peers: compactPeers(peers).sort() };
}

for (const [mode, shards] of [['its own object', '0'], ['a shard of small swarms', '2']]) {
  test(`the hot path and the full path give the same answers, before and after a restart (${mode})`, async () => {
    const vars = { ...VARS, SWARM_SHARDS: shards };
    const dir = mkdtempSync(join(tmpdir(), 'edge-tracker-hot-'));
    const hash = randomHash();
    const ask = (base, n, extra = {}) =>
      announce(base, { infoHash: hash, peerId: peerId(`hot${n}`), port: 7000 + n, left: n % 2 ? 0 : 100, ...extra }, { ip: `10.9.0.${n}` });
    let t;
    try {
      t = await startTracker({ vars, persistDir: dir });
      const cold = seen(await ask(t.base, 1)); // loads the swarm: full path
      assert.deepEqual(cold.peers, []);
      for (let n = 2; n <= 6; n++) await ask(t.base, n); // hot path
      // Peer 6 is a leecher: it is given every other peer.
      const warm = seen(await ask(t.base, 6));
      assert.deepEqual(warm.peers, ['10.9.0.1:7001', '10.9.0.2:7002', '10.9.0.3:7003', '10.9.0.4:7004', '10.9.0.5:7005']);
      assert.equal(warm.complete, 3);
      assert.equal(warm.incomplete, 3);
      // A shard writes behind (FLUSH_DELAY).
      if (shards !== '0') await shardsWritten(t, Number(shards));
      await t.stop();

      t = await startTracker({ vars, persistDir: dir });
      const reloaded = seen(await ask(t.base, 6)); // full path again, from storage
      const again = seen(await ask(t.base, 6)); // hot path
      assert.deepEqual(reloaded, warm);
      assert.deepEqual(again, warm);

      // Failures from the swarm and from the Worker read the same on both paths.
      const bad = await announce(t.base, { infoHash: hash, peerId: peerId('hot9'), port: 0 });
      assert.match(text(bad.body['failure reason']), /port/);
      await ask(t.base, 6, { event: 'stopped' });
      const after = seen(await ask(t.base, 1));
      assert.equal(after.complete, 3);
      assert.equal(after.incomplete, 2);
    } finally {
      // On a failure too: a runtime left running keeps the test file open.
      await t?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('a scrape of one and of several torrents on the hot path', async () => {
  const t = await startTracker({ vars: { ...VARS, PUBLISH_WINDOW: '1' } });
  try {
    const [a, b, none] = [randomHash(), randomHash(), randomHash()];
    await announce(t.base, { infoHash: a, peerId: peerId('s1'), left: 0 });
    await announce(t.base, { infoHash: b, peerId: peerId('s2'), left: 5 });
    await announce(t.base, { infoHash: b, peerId: peerId('s3'), left: 0 });
    const deadline = Date.now() + 15000;
    let both;
    for (;;) {
      both = await scrape(t.base, [a, b, none]);
      if (scrapeEntry(both.body, b)?.complete === 1 && scrapeEntry(both.body, b)?.incomplete === 1) break;
      assert.ok(Date.now() < deadline, 'counters were not published');
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.deepEqual(scrapeEntry(both.body, a), { complete: 1, downloaded: 0, incomplete: 0 });
    assert.deepEqual(scrapeEntry(both.body, none), { complete: 0, downloaded: 0, incomplete: 0 });
    const one = await scrape(t.base, [a]);
    assert.deepEqual(one.body.files && scrapeEntry(one.body, a), { complete: 1, downloaded: 0, incomplete: 0 });
    const wrong = await t.mf.dispatchFetch(`${t.base}/scrape?info_hash=short`);
    assert.match(await wrong.text(), /failure reason/);
  } finally {
    await t.close();
  }
});
