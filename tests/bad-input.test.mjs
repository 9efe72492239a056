// Every malformed request gets a bencoded failure reason naming the
// problem: never a 5xx, never a crash, and the swarm is left untouched.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTracker, get, announce, escapeBytes, peerId, randomHash, text } from './helpers.mjs';

let t;
// Re-announcing at once to look at the swarm; tests/abuse covers the min interval.
before(async () => { t = await startTracker({ vars: { ENFORCE_MIN_INTERVAL: 'false' } }); });
after(async () => { await t.close(); });

const H = escapeBytes(Buffer.alloc(20, 0xab));
const P = escapeBytes(peerId('bad'));
const ok = `info_hash=${H}&peer_id=${P}&port=6881&uploaded=0&downloaded=0&left=10`;

async function failure(path, { method = 'GET', status = 200 } = {}) {
  const r = await get(`${t.base}${path}`, { method });
  assert.ok(r.status < 500, `${path}: status ${r.status}`);
  assert.equal(r.status, status, `${path}: status`);
  assert.ok(r.body && r.body['failure reason'], `${path}: no failure reason in ${r.raw.toString()}`);
  return text(r.body['failure reason']);
}

const cases = [
  ['missing info_hash', `/announce?peer_id=${P}&port=1`, /missing parameter 'info_hash'/],
  ['missing peer_id', `/announce?info_hash=${H}&port=1`, /missing parameter 'peer_id'/],
  ['missing port', `/announce?info_hash=${H}&peer_id=${P}`, /missing parameter 'port'/],
  ['short info_hash', `/announce?info_hash=${H.slice(3)}&peer_id=${P}&port=1`, /'info_hash': expected 20 bytes, got 19/],
  ['long info_hash', `/announce?info_hash=${H}%00&peer_id=${P}&port=1`, /'info_hash': expected 20 bytes, got 21/],
  ['short peer_id', `/announce?info_hash=${H}&peer_id=abc&port=1`, /'peer_id': expected 20 bytes, got 3/],
  ['port 0', ok.replace('port=6881', 'port=0'), /'port'/],
  ['port 65536', ok.replace('port=6881', 'port=65536'), /'port'/],
  ['negative port', ok.replace('port=6881', 'port=-1'), /'port'/],
  ['text port', ok.replace('port=6881', 'port=http'), /'port'/],
  ['negative uploaded', ok.replace('uploaded=0', 'uploaded=-5'), /'uploaded'/],
  ['text downloaded', ok.replace('downloaded=0', 'downloaded=lots'), /'downloaded'/],
  ['fractional left', ok.replace('left=10', 'left=1.5'), /'left'/],
  ['overflowing left', ok.replace('left=10', 'left=18446744073709551616'), /'left'/],
  ['bad numwant', `${ok}&numwant=-1`, /'numwant'/],
  ['bad escape', ok.replace(`info_hash=${H}`, 'info_hash=%zz'), /percent-encoding/],
  ['truncated escape', `${ok}&key=%4`, /percent-encoding/],
].map(([name, q, re]) => [name, q.startsWith('/') ? q : `/announce?${q}`, re]);

for (const [name, path, re] of cases) {
  test(`announce: ${name}`, async () => {
    assert.match(await failure(path), re);
  });
}

test('a 64 KiB query is refused with a failure reason', async () => {
  const reason = await failure(`/announce?${ok}&pad=${'a'.repeat(64 * 1024)}`);
  assert.match(reason, /too long/);
});

test('too many parameters are refused', async () => {
  assert.match(await failure(`/announce?${ok}${'&x=1'.repeat(300)}`), /too many query parameters/);
});

test('wrong method gets 405 with a failure reason', async () => {
  for (const method of ['POST', 'PUT', 'DELETE']) {
    assert.match(await failure(`/announce?${ok}`, { method, status: 405 }), /method not allowed/);
  }
  assert.match(await failure('/scrape', { method: 'POST', status: 405 }), /method not allowed/);
});

test('scrape: wrong length, too many hashes, none at all', async () => {
  assert.match(await failure('/scrape?info_hash=abc'), /expected 20 bytes, got 3/);
  const many = Array.from({ length: 65 }, () => `info_hash=${escapeBytes(randomHash())}`).join('&');
  assert.match(await failure(`/scrape?${many}`), /too many info_hash values \(max 64/);
  assert.match(await failure('/scrape'), /full scrape is disabled/);
});

test('refused announces leave the swarm untouched', async () => {
  const infoHash = randomHash();
  await announce(t.base, { infoHash, peerId: peerId('real'), event: 'started' });
  const h = escapeBytes(infoHash);
  await get(`${t.base}/announce?info_hash=${h}&peer_id=${escapeBytes(peerId('evil'))}&port=0`);
  await get(`${t.base}/announce?info_hash=${h}&peer_id=${escapeBytes(peerId('evil'))}&port=1&left=-1`);
  const r = await announce(t.base, { infoHash, peerId: peerId('real') });
  assert.equal(r.body.incomplete, 1);
  assert.equal(r.body.peers.length, 0);
});
