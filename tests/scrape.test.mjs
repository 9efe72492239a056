// Scrape (BEP 48) is served from KV counters. With SCRAPE_CACHE=0 each
// swarm publishes them on every change; with SCRAPE_CACHE (the default) a
// miss reads through the swarm once and the entry expires after its TTL
// (SCRAPE_FOLLOW: KV follows changes meanwhile).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTracker, announce, scrape, scrapeEntry, peerId, randomHash, eventually } from './helpers.mjs';

let t;
// Counters published to KV on every change (SCRAPE_CACHE=0).
before(async () => { t = await startTracker({ vars: { PUBLISH_WINDOW: '1', SCRAPE_CACHE: '0' } }); });
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

test('SCRAPE_CACHE: a torrent nobody scrapes writes no KV; a scrape reads through, caches, and the cache follows changes', async () => {
  // A torrent's own object (a shard of small swarms caches nothing in KV: tests/shards.test.mjs).
  const t = await startTracker({ vars: { PUBLISH_WINDOW: '1', SCRAPE_CACHE: '3600', SCRAPE_FOLLOW: 'true', SWARM_SHARDS: '0' } });
  try {
  const kv = await t.mf.getKVNamespace('TRACKER_KV');
  const hash = randomHash();
  // The read-through cache's key (`scrape:` is for counters published for good).
  const key = `cached:${hash.toString('hex')}`;
  await announce(t.base, { infoHash: hash, peerId: peerId('rt1'), event: 'started' });
  await announce(t.base, { infoHash: hash, peerId: peerId('rt2'), event: 'started', left: 0 });
  // Past the publish window: the swarm reported its totals, but not to KV.
  await new Promise((r) => setTimeout(r, 2500));
  assert.equal(await kv.get(key), null, 'no KV write for a torrent nobody scraped');
  const first = await scrape(t.base, [hash]);
  assert.deepEqual(scrapeEntry(first.body, hash), { complete: 1, downloaded: 0, incomplete: 1 });
  const cached = await kv.getWithMetadata(key);
  assert.equal(cached.value, '1 1 0');
  // While cached, a change reaches KV within the publish window.
  await announce(t.base, { infoHash: hash, peerId: peerId('rt3'), event: 'started', left: 0 });
  await eventually(async () => ((await kv.get(key)) === '2 1 0' ? true : null));
  const again = await scrape(t.base, [hash]);
  assert.deepEqual(scrapeEntry(again.body, hash), { complete: 2, downloaded: 0, incomplete: 1 });
  } finally {
    await t.close();
  }
});

test('SCRAPE_CACHE (the default): a miss caches the counters in KV until its TTL; changes meanwhile reach /stats but write no KV', async () => {
  // wrangler.toml's defaults: SCRAPE_CACHE=1800, SCRAPE_FOLLOW=false; a torrent's own object.
  const t = await startTracker({ vars: { PUBLISH_WINDOW: '1', STATS_REFRESH: '0', SWARM_SHARDS: '0' } });
  try {
    const kv = await t.mf.getKVNamespace('TRACKER_KV');
    const hash = randomHash();
    const key = `cached:${hash.toString('hex')}`;
    await announce(t.base, { infoHash: hash, peerId: peerId('ex1'), event: 'started' });
    await announce(t.base, { infoHash: hash, peerId: peerId('ex2'), event: 'started', left: 0 });
    assert.equal(await kv.get(key), null, 'no KV write for a torrent nobody scraped');
    const before = Math.floor(Date.now() / 1000);
    const first = await scrape(t.base, [hash]);
    assert.deepEqual(scrapeEntry(first.body, hash), { complete: 1, downloaded: 0, incomplete: 1 });
    const [entry] = (await kv.list({ prefix: key })).keys;
    assert.equal(await kv.get(key), '1 1 0');
    assert.ok(entry.expiration >= before + 1800 && entry.expiration <= before + 1802, `expires after SCRAPE_CACHE (${entry.expiration - before} s)`);
    // A change: /stats gets it within the publish window, the cached entry stays until it expires.
    await announce(t.base, { infoHash: hash, peerId: peerId('ex3'), event: 'started', left: 0 });
    await eventually(async () => {
      const s = await (await fetch(`${t.base}/stats`)).json();
      return s.seeders === 2 && s.leechers === 1 ? s : null;
    });
    assert.equal(await kv.get(key), '1 1 0', 'the cached entry is not rewritten');
    const again = await scrape(t.base, [hash]);
    assert.deepEqual(scrapeEntry(again.body, hash), { complete: 1, downloaded: 0, incomplete: 1 }, 'scrape serves the cached counters until the TTL');
    // Once the entry is gone (expired), the next scrape reads through again.
    await kv.delete(key);
    const fresh = await scrape(t.base, [hash]);
    assert.deepEqual(scrapeEntry(fresh.body, hash), { complete: 2, downloaded: 0, incomplete: 1 });
  } finally {
    await t.close();
  }
});
