// The JS entry's hot paths (src/worker/entry.mjs) answer exactly as
// worker-rs's full path does: a swarm's first announce after a (re)start
// goes through the full path, the ones after it through `announceNow`; and
// concurrent announces to one object, coalesced into one call, each get
// their own client's answer.
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

for (const [mode, shards] of [['its own object', '0'], ['a shard of small swarms', '2']]) {
  test(`concurrent announces to one object go as one call, each client with its own answer (${mode})`, async () => {
    const t = await startTracker({ vars: { ...VARS, SWARM_SHARDS: shards } });
    try {
      const hash = randomHash();
      const N = 40;
      const address = (n) => `10.7.0.${n}:${7000 + n}`;
      const ask = (n, left) =>
        announce(t.base, { infoHash: hash, peerId: peerId(`co${n}`), port: 7000 + n, left, numwant: 200 }, { ip: `10.7.0.${n}` });
      // Every fourth peer a seed. All at once: the first call loads the
      // swarm, and the others wait for it and go together.
      const answers = await Promise.all(Array.from({ length: N }, (_, i) => ask(i + 1, (i + 1) % 4 ? 100 : 0)));
      const all = new Set(Array.from({ length: N }, (_, i) => address(i + 1)));
      answers.forEach((r, i) => {
        const n = i + 1;
        const { peers, complete, incomplete } = seen(r);
        assert.equal(r.body['failure reason'], undefined, `peer ${n}`);
        assert.ok(!peers.includes(address(n)), `peer ${n} is not given itself`);
        assert.ok(peers.every((p) => all.has(p)), `peer ${n} is given only peers that joined`);
        assert.ok(complete + incomplete <= N && complete <= N / 4, `peer ${n}: counts`);
        assert.ok(r.batch >= 1, `peer ${n}: the call's count`);
      });
      assert.ok(answers.some((r) => r.batch > 1), `some calls carried several announces: ${answers.map((r) => r.batch)}`);
      // Each was counted once: a leecher then sees all of them.
      const last = seen(await ask(N + 1, 100));
      assert.deepEqual(last.peers, [...all].sort());
      assert.equal(last.complete, N / 4);
      assert.equal(last.incomplete, N - N / 4 + 1);
      assert.equal(last.peers.length, N);
    } finally {
      await t.close();
    }
  });
}

test('SWARM_BATCH=1: every announce is its own call', async () => {
  const t = await startTracker({ vars: { ...VARS, SWARM_SHARDS: '0', SWARM_BATCH: '1' } });
  try {
    const hash = randomHash();
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) =>
      announce(t.base, { infoHash: hash, peerId: peerId(`one${i}`), port: 7100 + i }, { ip: `10.6.0.${i + 1}` })));
    assert.deepEqual(answers.map((r) => [r.status, r.batch]), answers.map(() => [200, 1]));
    assert.equal(seen(answers[0]).complete + seen(answers[0]).incomplete >= 1, true);
  } finally {
    await t.close();
  }
});
