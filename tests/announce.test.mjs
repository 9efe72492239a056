// Announce over HTTP against the built Worker: swarms, events, peer lists.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startTracker, announce, get, peerId, randomHash, compactPeers, text, escapeBytes,
} from './helpers.mjs';

let t;
// Re-announcing at once to look at the swarm; tests/abuse covers the min interval.
before(async () => { t = await startTracker({ vars: { ENFORCE_MIN_INTERVAL: 'false' } }); });
after(async () => { await t.close(); });

test('a peer never receives itself; others are returned compact', async () => {
  const infoHash = randomHash();
  const a = await announce(t.base, { infoHash, peerId: peerId('a'), port: 1001, event: 'started' }, { ip: '10.0.0.1' });
  assert.equal(a.status, 200);
  assert.equal(a.body.incomplete, 1);
  assert.equal(a.body.complete, 0);
  assert.equal(a.body.interval, 1800);
  assert.equal(a.body['min interval'], 900);
  assert.deepEqual(compactPeers(a.body.peers), []);
  const b = await announce(t.base, { infoHash, peerId: peerId('b'), port: 1002, event: 'started' }, { ip: '10.0.0.2' });
  assert.deepEqual(compactPeers(b.body.peers), ['10.0.0.1:1001']);
  assert.equal(b.body.incomplete, 2);
  const again = await announce(t.base, { infoHash, peerId: peerId('a'), port: 1001 }, { ip: '10.0.0.1' });
  assert.deepEqual(compactPeers(again.body.peers), ['10.0.0.2:1002']);
});

test('seeders are sent leechers only; leechers get everyone else', async () => {
  const infoHash = randomHash();
  for (let i = 0; i < 3; i++) {
    await announce(t.base, { infoHash, peerId: peerId(`s${i}`), port: 2000 + i, left: 0, event: 'started' }, { ip: '10.1.0.1' });
  }
  for (let i = 0; i < 2; i++) {
    await announce(t.base, { infoHash, peerId: peerId(`l${i}`), port: 3000 + i, event: 'started' }, { ip: '10.1.0.2' });
  }
  const seeder = await announce(t.base, { infoHash, peerId: peerId('s0'), port: 2000, left: 0 }, { ip: '10.1.0.1' });
  assert.deepEqual(compactPeers(seeder.body.peers).sort(), ['10.1.0.2:3000', '10.1.0.2:3001']);
  const leecher = await announce(t.base, { infoHash, peerId: peerId('l0'), port: 3000 }, { ip: '10.1.0.2' });
  assert.deepEqual(compactPeers(leecher.body.peers).sort(), ['10.1.0.1:2000', '10.1.0.1:2001', '10.1.0.1:2002', '10.1.0.2:3001']);
  assert.equal(leecher.body.complete, 3);
  assert.equal(leecher.body.incomplete, 2);
});

test('every event: started, completed once, regular, stopped removes at once', async () => {
  const infoHash = randomHash();
  await announce(t.base, { infoHash, peerId: peerId('x'), event: 'started', left: 50 });
  const done = await announce(t.base, { infoHash, peerId: peerId('x'), event: 'completed', left: 0 });
  assert.equal(done.body.downloaded, 1);
  assert.equal(done.body.complete, 1);
  assert.equal(done.body.incomplete, 0);
  const twice = await announce(t.base, { infoHash, peerId: peerId('x'), event: 'completed', left: 0 });
  assert.equal(twice.body.downloaded, 1, 'a second completed from the same peer is not counted');
  const regular = await announce(t.base, { infoHash, peerId: peerId('x'), left: 0, event: '' });
  assert.equal(regular.body.complete, 1);
  const unknown = await announce(t.base, { infoHash, peerId: peerId('x'), left: 0, event: 'paused' });
  assert.equal(unknown.status, 200);
  assert.equal(unknown.body.complete, 1, 'an unknown event is a regular update');
  // A leecher reaching left=0 without the event (aria2) is counted too.
  await announce(t.base, { infoHash, peerId: peerId('y'), event: 'started', left: 10 });
  const silent = await announce(t.base, { infoHash, peerId: peerId('y'), left: 0 });
  assert.equal(silent.body.downloaded, 2);
  const stopped = await announce(t.base, { infoHash, peerId: peerId('x'), event: 'stopped', left: 0 });
  assert.equal(stopped.status, 200);
  assert.equal(stopped.body.complete, 1);
  const other = await announce(t.base, { infoHash, peerId: peerId('z'), event: 'started' });
  assert.equal(compactPeers(other.body.peers).length, 1, 'the stopped peer is no longer handed out');
});

test('a new port replaces the peer entry; a new address does so only with the client\'s key', async () => {
  const infoHash = randomHash();
  await announce(t.base, { infoHash, peerId: peerId('p'), port: 4000 }, { ip: '10.2.0.1' });
  await announce(t.base, { infoHash, peerId: peerId('p'), port: 4001 }, { ip: '10.2.0.1' });
  let view = await announce(t.base, { infoHash, peerId: peerId('q'), port: 5000 }, { ip: '10.2.0.2' });
  assert.deepEqual(compactPeers(view.body.peers), ['10.2.0.1:4001']);
  // The same peer id from another address, without the key: another entry.
  await announce(t.base, { infoHash, peerId: peerId('p'), port: 4001, event: 'stopped' }, { ip: '10.2.0.66' });
  view = await announce(t.base, { infoHash, peerId: peerId('q'), port: 5000 }, { ip: '10.2.0.2' });
  assert.deepEqual(compactPeers(view.body.peers), ['10.2.0.1:4001'], 'a stop from elsewhere stops nobody');
  // A client that sends BEP 3 `key` keeps its entry when its address changes.
  await announce(t.base, { infoHash, peerId: peerId('k'), port: 4002, key: 'A1B2C3D4' }, { ip: '10.2.0.3' });
  await announce(t.base, { infoHash, peerId: peerId('k'), port: 4002, key: 'A1B2C3D4' }, { ip: '10.2.0.4' });
  view = await announce(t.base, { infoHash, peerId: peerId('q'), port: 5000 }, { ip: '10.2.0.2' });
  assert.deepEqual(compactPeers(view.body.peers).sort(), ['10.2.0.1:4001', '10.2.0.4:4002']);
  assert.equal(view.body.incomplete, 3);
});

test('non-compact lists carry ip, port and peer id unless no_peer_id', async () => {
  const infoHash = randomHash();
  await announce(t.base, { infoHash, peerId: peerId('d1'), port: 6001 }, { ip: '10.3.0.1' });
  const full = await announce(t.base, { infoHash, peerId: peerId('d2'), compact: 0 }, { ip: '10.3.0.2' });
  assert.equal(full.body.peers.length, 1);
  assert.equal(text(full.body.peers[0].ip), '10.3.0.1');
  assert.equal(full.body.peers[0].port, 6001);
  assert.ok(Buffer.from(full.body.peers[0]['peer id']).equals(peerId('d1')));
  const bare = await announce(t.base, { infoHash, peerId: peerId('d2'), compact: 0, no_peer_id: 1 }, { ip: '10.3.0.2' });
  assert.equal(bare.body.peers[0]['peer id'], undefined);
  assert.equal(bare.body.peers[0].port, 6001);
});

test('IPv6 peers come back in peers6 (BEP 7), IPv4 in peers', async () => {
  const infoHash = randomHash();
  await announce(t.base, { infoHash, peerId: peerId('v6'), port: 7000 }, { ip: '2001:db8::1' });
  await announce(t.base, { infoHash, peerId: peerId('v4'), port: 7001 }, { ip: '192.0.2.1' });
  const r = await announce(t.base, { infoHash, peerId: peerId('me'), port: 7002 }, { ip: '2001:db8::2' });
  assert.deepEqual(compactPeers(r.body.peers6, true), ['2001:db8:0:0:0:0:0:1:7000']);
  assert.deepEqual(compactPeers(r.body.peers), ['192.0.2.1:7001']);
  const dicts = await announce(t.base, { infoHash, peerId: peerId('me'), port: 7002, compact: 0 }, { ip: '2001:db8::2' });
  assert.deepEqual(dicts.body.peers.map((p) => text(p.ip)).sort(), ['192.0.2.1', '2001:db8::1']);
});

test('numwant is honoured and capped; ids in any escaping are the same', async () => {
  const infoHash = randomHash();
  await Promise.all(Array.from({ length: 60 }, (_, i) =>
    announce(t.base, { infoHash, peerId: peerId(`n${i}`), port: 10000 + i }, { ip: '10.4.0.1' })));
  const some = await announce(t.base, { infoHash, peerId: peerId('n0'), port: 10000, numwant: 5 }, { ip: '10.4.0.1' });
  assert.equal(compactPeers(some.body.peers).length, 5);
  const dflt = await announce(t.base, { infoHash, peerId: peerId('n0'), port: 10000 }, { ip: '10.4.0.1' });
  assert.equal(compactPeers(dflt.body.peers).length, 50, 'default numwant is 50');
  const capped = await announce(t.base, { infoHash, peerId: peerId('n0'), port: 10000, numwant: 100000 }, { ip: '10.4.0.1' });
  assert.equal(compactPeers(capped.body.peers).length, 59, 'everyone but the requester');
  const none = await announce(t.base, { infoHash, peerId: peerId('n0'), port: 10000, numwant: 0 }, { ip: '10.4.0.1' });
  assert.equal(compactPeers(none.body.peers).length, 0);
  // Lower-case escapes and raw unreserved characters name the same torrent and peer.
  const lower = escapeBytes(infoHash, { lower: true });
  const raw = `${t.base}/announce.php?info_hash=${lower}&peer_id=-ET0001-0000000000n0&port=10000&left=1&uploaded=0&downloaded=0`;
  const r = await get(raw, { ip: '10.4.0.1' });
  assert.equal(r.body.incomplete, 60, 'no new peer was added');
});

test('unknown paths are 404 and / explains the tracker', async () => {
  assert.equal((await get(`${t.base}/nope`)).status, 404);
  const home = await get(`${t.base}/`);
  assert.equal(home.status, 200);
  assert.match(home.raw.toString(), /announce/);
});
