// The WebTorrent (WebSocket) tracker: raw protocol clients, the npm
// bittorrent-tracker client, bad frames, and a restart on the same state.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { startTracker, announce, scrape, scrapeEntry, eventually, randomHash, peerId, sleep } from './helpers.mjs';

let t;
// Scrape follows every change: counters published to KV (SCRAPE_CACHE=0).
before(async () => { t = await startTracker({ vars: { PUBLISH_WINDOW: '1', SCRAPE_CACHE: '0' } }); });
after(async () => { await t?.close(); });

const wsUrl = (base) => `${base.replace(/^http/, 'ws')}/announce`;
/** A binary string: one character per byte, as the WebTorrent protocol sends ids. */
const bin = (buf) => Buffer.from(buf).toString('latin1');
const hashWithHighBytes = () => Buffer.from(randomBytes(20).map((b) => b | 0x80));

/** A raw WebTorrent tracker connection that records every frame it gets. */
class Socket {
  constructor(base) {
    this.ws = new WebSocket(wsUrl(base));
    this.frames = [];
    this.waiting = [];
    this.ws.on('message', (data) => {
      const frame = JSON.parse(data.toString());
      this.frames.push(frame);
      this.waiting = this.waiting.filter((w) => !w(frame));
    });
  }

  async open() {
    if (this.ws.readyState !== WebSocket.OPEN) await once(this.ws, 'open');
    return this;
  }

  send(msg) {
    this.ws.send(typeof msg === 'string' || Buffer.isBuffer(msg) ? msg : JSON.stringify(msg));
  }

  /** The first frame (already received or next) that `match` accepts. */
  next(match, ms = 10000) {
    const seen = this.frames.find(match);
    if (seen) {
      this.frames.splice(this.frames.indexOf(seen), 1);
      return Promise.resolve(seen);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching frame within ${ms} ms; got ${JSON.stringify(this.frames)}`)), ms);
      this.waiting.push((frame) => {
        if (!match(frame)) return false;
        clearTimeout(timer);
        this.frames.splice(this.frames.indexOf(frame), 1);
        resolve(frame);
        return true;
      });
    });
  }

  async announce(fields) {
    this.send({ action: 'announce', numwant: 5, uploaded: 0, downloaded: 0, left: 100, ...fields });
    return this.next((f) => f.action === 'announce' && f.info_hash === fields.info_hash && f.complete !== undefined);
  }

  close() {
    this.ws.close();
  }
}

const sockets = [];
async function socket(base = t.base) {
  const s = await new Socket(base).open();
  sockets.push(s);
  return s;
}
after(() => { for (const s of sockets) s.ws.terminate(); });

const offer = (n) => ({ offer: { type: 'offer', sdp: `v=0 offer ${n}` }, offer_id: bin(randomBytes(20)) });

test('offers reach other WebSocket peers and answers come back to the offering peer', async () => {
  const info_hash = bin(hashWithHighBytes());
  const [a, b, c] = await Promise.all([socket(), socket(), socket()]);
  const ids = { a: bin(peerId('wsa')), b: bin(peerId('wsb')), c: bin(peerId('wsc')) };

  const ra = await a.announce({ info_hash, peer_id: ids.a, event: 'started' });
  assert.deepEqual([ra.complete, ra.incomplete], [0, 1]);
  assert.ok(ra.interval > 0, 'an interval to re-announce at');
  const rb = await b.announce({ info_hash, peer_id: ids.b, event: 'started', left: 0 });
  assert.deepEqual([rb.complete, rb.incomplete], [1, 1]);

  const offers = [offer(1), offer(2)];
  const rc = await c.announce({ info_hash, peer_id: ids.c, event: 'started', offers });
  assert.deepEqual([rc.complete, rc.incomplete], [1, 2]);

  // One offer each for a and b, from c, for this torrent.
  const isOffer = (f) => f.offer !== undefined;
  const [oa, ob] = await Promise.all([a.next(isOffer), b.next(isOffer)]);
  for (const o of [oa, ob]) {
    assert.equal(o.action, 'announce');
    assert.equal(o.peer_id, ids.c);
    assert.equal(o.info_hash, info_hash);
  }
  assert.deepEqual(new Set([oa.offer_id, ob.offer_id]), new Set(offers.map((o) => o.offer_id)));
  const sdpFor = (o) => offers.find((x) => x.offer_id === o.offer_id).offer.sdp;
  assert.equal(oa.offer.sdp, sdpFor(oa));

  // a answers; the answer reaches c with a's id and the offer's id.
  a.send({ action: 'announce', info_hash, peer_id: ids.a, to_peer_id: ids.c, offer_id: oa.offer_id, answer: { type: 'answer', sdp: 'answer from a' } });
  const answer = await c.next((f) => f.answer !== undefined);
  assert.deepEqual(
    { peer_id: answer.peer_id, offer_id: answer.offer_id, sdp: answer.answer.sdp, info_hash: answer.info_hash },
    { peer_id: ids.a, offer_id: oa.offer_id, sdp: 'answer from a', info_hash },
  );
  // The offering peer is never sent its own offer.
  assert.equal(c.frames.find(isOffer), undefined);

  // `stopped` leaves the swarm at once.
  const stopped = await c.announce({ info_hash, peer_id: ids.c, event: 'stopped' });
  assert.deepEqual([stopped.complete, stopped.incomplete], [1, 1]);
});

test('one socket announces several torrents; HTTP scrape and announces count WebSocket peers', async () => {
  const one = randomHash();
  const two = randomHash();
  const s = await socket();
  const id = bin(peerId('multi'));
  const r1 = await s.announce({ info_hash: bin(one), peer_id: id, event: 'started', left: 0 });
  const r2 = await s.announce({ info_hash: bin(two), peer_id: id, event: 'started' });
  assert.deepEqual([r1.complete, r1.incomplete, r2.complete, r2.incomplete], [1, 0, 0, 1]);

  // An HTTP peer of the same torrent: one swarm for counting, but no WebRTC peers in its list.
  const http = await announce(t.base, { infoHash: two, peerId: peerId('http'), event: 'started' });
  assert.deepEqual([http.body.complete, http.body.incomplete], [0, 2]);
  assert.equal(http.body.peers.length, 0, 'WebSocket peers are not handed to HTTP peers');

  await eventually(async () => {
    const { body } = await scrape(t.base, [one, two]);
    const [e1, e2] = [scrapeEntry(body, one), scrapeEntry(body, two)];
    return e1?.complete === 1 && e2?.incomplete === 2;
  });

  // Scrape over the socket reads the same counters.
  s.send({ action: 'scrape', info_hash: [bin(one), bin(two)] });
  const scraped = await s.next((f) => f.action === 'scrape');
  assert.equal(scraped.files[bin(one)].complete, 1);
  assert.equal(scraped.files[bin(two)].incomplete, 2);

  // Closing the socket takes its peer out of both swarms.
  s.close();
  await eventually(async () => {
    const { body } = await scrape(t.base, [one, two]);
    return scrapeEntry(body, one)?.complete === 0 && scrapeEntry(body, two)?.incomplete === 1;
  });
});

test('stats count WebSocket and HTTP peers of a torrent as one swarm', async () => {
  const own = await startTracker({ vars: { PUBLISH_WINDOW: '1', STATS_REFRESH: '0' } });
  try {
    const hash = randomHash();
    const s = await socket(own.base);
    await s.announce({ info_hash: bin(hash), peer_id: bin(peerId('ws-seed')), event: 'started', left: 0 });
    await announce(own.base, { infoHash: hash, peerId: peerId('http-leech'), event: 'started' });
    const stats = await eventually(async () => {
      const st = await (await fetch(`${own.base}/stats`)).json();
      return st.peers === 2 ? st : null;
    });
    assert.deepEqual([stats.torrents, stats.seeders, stats.leechers], [1, 1, 1]);
    assert.deepEqual(stats.busiest.map((x) => [x.info_hash, x.seeders, x.leechers]), [[hash.toString('hex'), 1, 1]]);
    s.close();
  } finally {
    await own.close();
  }
});

test('with SWARM_SHARDS, a WebSocket peer joins the HTTP peers of a shared torrent: one swarm', async () => {
  const own = await startTracker({ vars: { SWARM_SHARDS: '2', ENFORCE_MIN_INTERVAL: 'false' } });
  try {
    const hash = randomHash();
    // Two HTTP peers in the torrent's shard.
    await announce(own.base, { infoHash: hash, peerId: peerId('h1'), port: 1001, left: 0, event: 'started' }, { ip: '10.8.0.1' });
    await announce(own.base, { infoHash: hash, peerId: peerId('h2'), port: 1002, event: 'started' }, { ip: '10.8.0.2' });
    // The WebSocket peer's announce moves the torrent to its own object, peers and all.
    const s = await socket(own.base);
    const r = await s.announce({ info_hash: bin(hash), peer_id: bin(peerId('ws')), event: 'started' });
    assert.deepEqual([r.complete, r.incomplete], [1, 2]);
    const http = await announce(own.base, { infoHash: hash, peerId: peerId('h3'), port: 1003, event: 'started' }, { ip: '10.8.0.3' });
    assert.deepEqual([http.body.complete, http.body.incomplete], [1, 3]);
    assert.equal(http.body.peers.length, 12, 'both HTTP peers, no WebSocket peer');
    s.close();
  } finally {
    await own.close();
  }
});

test('one socket holds 40 torrents (its hibernation attachment); the 41st is refused; a close leaves all', async () => {
  const s = await socket();
  const id = bin(peerId('many'));
  const hashes = Array.from({ length: 41 }, () => randomHash());
  for (const h of hashes.slice(0, 40)) {
    const r = await s.announce({ info_hash: bin(h), peer_id: id, event: 'started' });
    assert.equal(r.incomplete, 1);
  }
  s.send({ action: 'announce', info_hash: bin(hashes[40]), peer_id: id, event: 'started' });
  const refused = await s.next((f) => f['failure reason'] !== undefined);
  assert.match(refused['failure reason'], /too many torrents on one socket/);
  assert.equal(refused.info_hash, bin(hashes[40]));
  const sample = [hashes[0], hashes[39]];
  await eventually(async () => {
    const { body } = await scrape(t.base, sample);
    return sample.every((h) => scrapeEntry(body, h)?.incomplete === 1);
  });
  s.close();
  await eventually(async () => {
    const { body } = await scrape(t.base, sample);
    return sample.every((h) => scrapeEntry(body, h)?.incomplete === 0);
  });
});

test('bad frames get an error frame and the tracker keeps working', async () => {
  const s = await socket();
  const info_hash = bin(randomHash());
  const failure = () => s.next((f) => f['failure reason'] !== undefined);
  const cases = [
    ['not json', /not JSON/],
    ['[1,2,3]', /not a JSON object/],
    [{ action: 'dance' }, /invalid action/],
    [{ action: 'announce', info_hash: 42, peer_id: bin(peerId('x')) }, /invalid info_hash/],
    [{ action: 'announce', info_hash, peer_id: 'short' }, /invalid peer_id/],
    [{ action: 'announce', info_hash, peer_id: bin(peerId('x')), offers: 'many' }, /offers/],
    [{ action: 'announce', info_hash, peer_id: bin(peerId('x')), answer: { sdp: 'x' } }, /to_peer_id/],
    [{ action: 'scrape', info_hash: [7] }, /invalid info_hash/],
    [{ action: 'scrape' }, /full scrape is disabled/],
    [JSON.stringify({ action: 'announce', info_hash, peer_id: bin(peerId('x')), pad: 'x'.repeat(200_000) }), /too large/],
    [Buffer.from([0xff, 0xfe, 0x00]), /UTF-8/],
  ];
  for (const [frame, reason] of cases) {
    s.send(frame);
    const f = await failure();
    assert.match(f['failure reason'], reason, JSON.stringify(frame).slice(0, 80));
  }
  // A failure about a known torrent names it, so the npm client reports it as a warning.
  s.send({ action: 'announce', info_hash, peer_id: bin(peerId('x')), event: 'sideways' });
  const named = await failure();
  assert.deepEqual([named.action, named.info_hash], ['announce', info_hash]);

  // Same socket, and a fresh one: announces still work.
  const ok = await s.announce({ info_hash, peer_id: bin(peerId('after-bad')), event: 'started' });
  assert.equal(ok.incomplete, 1);
  const other = await socket();
  const ok2 = await other.announce({ info_hash, peer_id: bin(peerId('after-bad2')), event: 'started' });
  assert.equal(ok2.incomplete, 2);
});

test('interop: two npm bittorrent-tracker clients signal each other through the tracker', async () => {
  // WebRTC is unavailable here: a fake peer connection produces offers and
  // answers so the client's signalling runs for real (see tests/stubs).
  globalThis.EDGE_TRACKER_FAKE_WEBRTC = fakeWebRtc();
  const { default: Client } = await import('bittorrent-tracker');
  const infoHash = hashWithHighBytes().toString('hex');
  const make = (tag) => {
    const c = new Client({ infoHash, peerId: peerId(tag), announce: [wsUrl(t.base)], port: 6881 });
    c.warnings = [];
    c.on('warning', (e) => c.warnings.push(e));
    c.on('error', (e) => c.warnings.push(e));
    return c;
  };
  const a = make('npm-a');
  const b = make('npm-b');
  try {
    a.start();
    const [first] = await once(a, 'update');
    assert.deepEqual([first.complete, first.incomplete], [0, 1]);
    const peersOfA = [];
    const peersOfB = [];
    a.on('peer', (p) => peersOfA.push(p.id));
    b.on('peer', (p) => peersOfB.push(p.id));
    b.start();
    const [second] = await once(b, 'update');
    assert.equal(second.incomplete, 2);
    // b's offer reaches a (a answers), and a's answer reaches b.
    await eventually(() => peersOfA.length > 0 && peersOfB.length > 0);
    assert.equal(peersOfA[0], peerId('npm-b').toString('hex'));
    assert.equal(peersOfB[0], peerId('npm-a').toString('hex'));

    const scraped = await eventually(async () => {
      b.scrape();
      const [s] = await once(b, 'scrape');
      return s.incomplete === 2 ? s : null;
    });
    assert.equal(scraped.complete, 0);
    assert.deepEqual([...a.warnings, ...b.warnings].map(String), []);
  } finally {
    a.destroy();
    b.destroy();
  }
});

test('gateways hibernate holding their sockets; woken, they still relay offers and answers', async () => {
  const wakes = [];
  const h = await startTracker({ vars: { PUBLISH_WINDOW: '1' }, onLog: (line) => { if (/woke from hibernation/.test(line)) wakes.push(line); } });
  try {
    const info_hash = bin(randomHash());
    const ids = { sleeper: bin(peerId('sleeper-a')), offerer: bin(peerId('offerer-a')) };
    const sleeper = await socket(h.base);
    await sleeper.announce({ info_hash, peer_id: ids.sleeper, event: 'started' });
    // workerd hibernates an object whose only connections are hibernatable
    // sockets after about 10 s without events. There is no hook to hurry it:
    // anything sent to the gateway would wake it, so this test waits.
    await sleep(13000);
    const offerer = await socket(h.base);
    await offerer.announce({ info_hash, peer_id: ids.offerer, event: 'started', offers: [offer(1)] });
    const got = await sleeper.next((f) => f.offer !== undefined);
    assert.equal(got.peer_id, ids.offerer);
    sleeper.send({ action: 'announce', info_hash, peer_id: ids.sleeper, to_peer_id: ids.offerer, offer_id: got.offer_id, answer: { type: 'answer', sdp: 'after sleep' } });
    const answer = await offerer.next((f) => f.answer !== undefined);
    assert.equal(answer.answer.sdp, 'after sleep');
    // Constructed while holding sockets: the sleeper's gateway had hibernated.
    assert.ok(wakes.length >= 1, 'no gateway woke from hibernation');
  } finally {
    await h.close();
  }
});

test('private mode refuses the WebSocket upgrade', async () => {
  const p = await startTracker({ vars: { TRACKER_MODE: 'private' } });
  try {
    const ws = new WebSocket(wsUrl(p.base));
    ws.on('error', () => {});
    const [, res] = await once(ws, 'unexpected-response');
    assert.equal(res.statusCode, 400);
    res.destroy();
    ws.terminate();
  } finally {
    await p.close();
  }
});

test('a restart on the same storage keeps the WebSocket swarm; reconnects move, dropped sockets leave', async () => {
  // The HTTP probe below re-announces at once: no min interval here.
  const vars = { PUBLISH_WINDOW: '1', ENFORCE_MIN_INTERVAL: 'false' };
  const r = await startTracker({ vars });
  const hash = randomHash();
  const info_hash = bin(hash);
  const ids = { sleeper: bin(peerId('sleeper')), ghost: bin(peerId('ghost')), asker: bin(peerId('asker')) };
  let restarted;
  try {
    const s = await socket(r.base);
    await s.announce({ info_hash, peer_id: ids.sleeper, event: 'started', left: 0 });
    const g = await socket(r.base);
    await g.announce({ info_hash, peer_id: ids.ghost, event: 'started' });
    await r.stop();
    // Sockets are gone with the runtime (no close reached the gateways);
    // the swarm is in storage.
    restarted = await startTracker({ vars, persistDir: r.dir });
    const counts = async () => {
      const { body } = await announce(restarted.base, { infoHash: hash, peerId: peerId('http-after') });
      return [body.complete, body.incomplete];
    };
    assert.deepEqual(await counts(), [1, 2]);

    // The same peer on a new socket: its location moves, so offers reach it.
    const back = await socket(restarted.base);
    const again = await back.announce({ info_hash, peer_id: ids.sleeper, left: 0 });
    assert.deepEqual([again.complete, again.incomplete], [1, 2]);
    const asker = await socket(restarted.base);
    const asked = await asker.announce({ info_hash, peer_id: ids.asker, event: 'started', offers: [offer(9), offer(10)] });
    assert.deepEqual([asked.complete, asked.incomplete], [1, 3]);
    const got = await back.next((f) => f.offer !== undefined);
    assert.equal(got.peer_id, ids.asker);
    // The other offer went to the ghost, whose socket is gone: it leaves.
    await eventually(async () => (await counts()).join() === '1,2');
  } finally {
    await restarted?.close();
    await r.close().catch(() => {});
  }
});

/** Just enough of RTCPeerConnection for simple-peer to offer and answer. */
function fakeWebRtc() {
  class RTCSessionDescription {
    constructor({ type, sdp }) { Object.assign(this, { type, sdp }); }
  }
  class RTCPeerConnection {
    constructor() {
      Object.assign(this, { localDescription: null, remoteDescription: null, signalingState: 'stable', iceConnectionState: 'new', iceGatheringState: 'new', connectionState: 'new' });
    }
    createDataChannel(label) {
      return { label, readyState: 'connecting', bufferedAmount: 0, bufferedAmountLowThreshold: 0, send() {}, close() {} };
    }
    async createOffer() { return { type: 'offer', sdp: `v=0 fake offer ${randomBytes(4).toString('hex')}` }; }
    async createAnswer() { return { type: 'answer', sdp: 'v=0 fake answer' }; }
    async setLocalDescription(d) {
      this.localDescription = d;
      // Gathering done at once: simple-peer (trickle off) then signals.
      setTimeout(() => this.onicecandidate?.({ candidate: null }), 0);
    }
    async setRemoteDescription(d) { this.remoteDescription = d; }
    async addIceCandidate() {}
    getStats() { return Promise.resolve(new Map()); }
    close() {}
  }
  return { RTCPeerConnection, RTCSessionDescription, RTCIceCandidate: class {} };
}
