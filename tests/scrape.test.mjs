// Scrape (BEP 48) is served from KV counters that each swarm publishes
// from its alarm, so it never wakes a swarm on the request path.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTracker, announce, scrape, scrapeEntry, peerId, randomHash, eventually } from './helpers.mjs';

let t;
before(async () => { t = await startTracker({ vars: { PUBLISH_WINDOW: '1' } }); });
after(async () => { await t.close(); });

test('scrape reports complete, incomplete and downloaded for many torrents', async () => {
  const one = randomHash();
  const two = randomHash();
  const unknown = randomHash();
  await announce(t.base, { infoHash: one, peerId: peerId('a'), event: 'started' });
  await announce(t.base, { infoHash: one, peerId: peerId('b'), event: 'started', left: 0 });
  await announce(t.base, { infoHash: one, peerId: peerId('a'), event: 'completed', left: 0 });
  await announce(t.base, { infoHash: two, peerId: peerId('c'), event: 'started' });
  const r = await eventually(async () => {
    const s = await scrape(t.base, [one, two, unknown]);
    const e = scrapeEntry(s.body, one);
    return e?.complete === 2 && scrapeEntry(s.body, two)?.incomplete === 1 ? s : null;
  });
  assert.equal(r.status, 200);
  assert.deepEqual(scrapeEntry(r.body, one), { complete: 2, downloaded: 1, incomplete: 0 });
  assert.deepEqual(scrapeEntry(r.body, two), { complete: 0, downloaded: 0, incomplete: 1 });
  assert.deepEqual(scrapeEntry(r.body, unknown), { complete: 0, downloaded: 0, incomplete: 0 });
  assert.equal(Object.keys(r.body.files).length, 3);
});

test('scrape follows changes after the publish window, and a stop empties the swarm', async () => {
  const infoHash = randomHash();
  await announce(t.base, { infoHash, peerId: peerId('x'), event: 'started' });
  await eventually(async () => scrapeEntry((await scrape(t.base, [infoHash])).body, infoHash)?.incomplete === 1);
  await announce(t.base, { infoHash, peerId: peerId('x'), event: 'completed', left: 0 });
  await eventually(async () => scrapeEntry((await scrape(t.base, [infoHash])).body, infoHash)?.complete === 1);
  await announce(t.base, { infoHash, peerId: peerId('x'), event: 'stopped', left: 0 });
  const e = await eventually(async () => {
    const entry = scrapeEntry((await scrape(t.base, [infoHash])).body, infoHash);
    return entry?.complete === 0 ? entry : null;
  });
  assert.deepEqual(e, { complete: 0, downloaded: 1, incomplete: 0 }, 'the completed count outlives the swarm');
  // The emptied swarm freed its storage; a new peer resumes the completed count from KV.
  const back = await announce(t.base, { infoHash, peerId: peerId('y'), event: 'started' });
  assert.equal(back.body.downloaded, 1);
});

test('full scrape lists published torrents when enabled', async () => {
  const full = await startTracker({ vars: { PUBLISH_WINDOW: '1', FULL_SCRAPE: 'true' } });
  try {
    const a = randomHash();
    await announce(full.base, { infoHash: a, peerId: peerId('f'), event: 'started', left: 0 });
    const r = await eventually(async () => {
      const s = await scrape(full.base, []);
      return scrapeEntry(s.body, a) ? s : null;
    });
    assert.deepEqual(scrapeEntry(r.body, a), { complete: 1, downloaded: 0, incomplete: 0 });
  } finally {
    await full.close();
  }
});
