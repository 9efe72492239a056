// The npm bittorrent-tracker Client (WebTorrent's tracker client) as an
// independent implementation of the HTTP tracker protocol.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import Client from 'bittorrent-tracker';
import { startTracker, eventually, randomHash } from './helpers.mjs';

let t;
before(async () => { t = await startTracker({ vars: { PUBLISH_WINDOW: '1' } }); });
after(async () => { await t.close(); });

function client(infoHash, peerId, port) {
  const c = new Client({ infoHash, peerId, announce: [`${t.base}/announce`], port });
  c.on('warning', (e) => { c.lastWarning = e; });
  return c;
}

test('announces, finds peers and scrapes with binary info hashes', async () => {
  // Every byte value above 0x7f: nothing survives a UTF-8 round trip.
  const infoHash = Buffer.from(Array.from({ length: 20 }, (_, i) => 0x80 + i * 6));
  const a = client(infoHash, Buffer.from('-WW0001-aaaaaaaaaaaa'), 51001);
  const b = client(infoHash, Buffer.from('-WW0001-bbbbbbbbbbbb'), 51002);
  try {
    a.start();
    const [first] = await once(a, 'update');
    assert.equal(first.incomplete, 1);
    assert.equal(first.complete, 0);

    const peers = [];
    b.on('peer', (addr) => peers.push(addr));
    b.start();
    const [second] = await once(b, 'update');
    assert.equal(second.incomplete, 2);
    await eventually(() => peers.length > 0);
    assert.deepEqual(peers, ['127.0.0.1:51001']);

    a.complete({ left: 0, downloaded: 100 });
    const [done] = await once(a, 'update');
    assert.equal(done.complete, 1);
    assert.equal(done.incomplete, 1);

    const scraped = await eventually(async () => {
      b.scrape();
      const [s] = await once(b, 'scrape');
      return s.complete === 1 && s.downloaded === 1 ? s : null;
    });
    assert.equal(scraped.incomplete, 1);
    // bittorrent-tracker 11 hex-encodes a binary (non-UTF-8) `files` key
    // twice when it reports `infoHash`, so only the counts are compared
    // (README: compatibility).
    assert.equal(a.lastWarning, undefined, String(a.lastWarning));
    assert.equal(b.lastWarning, undefined, String(b.lastWarning));
  } finally {
    a.destroy();
    b.destroy();
  }
});

test('stop removes the peer and multi-hash scrape answers for each hash', async () => {
  const one = randomHash();
  const two = randomHash();
  const a = client(one, Buffer.from('-WW0001-cccccccccccc'), 51003);
  const b = client(two, Buffer.from('-WW0001-dddddddddddd'), 51004);
  try {
    a.start();
    b.start();
    await Promise.all([once(a, 'update'), once(b, 'update')]);
    a.stop();
    await once(a, 'update');
    const results = await eventually(async () => {
      const got = await new Promise((resolve, reject) => {
        Client.scrape({ announce: `${t.base}/announce`, infoHash: [one, two] }, (err, res) => (err ? reject(err) : resolve(res)));
      });
      const counts = Object.values(got).map((r) => `${r.complete}/${r.incomplete}`).sort();
      return counts.join(' ') === '0/0 0/1' ? got : null;
    });
    assert.equal(Object.keys(results).length, 2);
  } finally {
    a.destroy();
    b.destroy();
  }
});
