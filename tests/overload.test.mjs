// A swarm that fails is still answered as a tracker: the tracker runs with
// its SWARMS and SHARDS bindings (torrents' own objects and the shards of
// small swarms) pointed at a test-only Durable Object class (in a second
// Worker beside it) that fails the way the runtime does (overloaded, reset,
// a deploy, an exceeded limit, an error status). Every client must get HTTP
// 200 with a bencoded `failure reason` and BEP 31 `retry in`, WebSocket
// clients a `failure reason` frame they report, and /metrics must count
// each failure under its reason. Production code has no test branch: only
// the binding differs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import WebSocket from 'ws';
import { startTracker, announce, escapeBytes, get, peerId, wranglerVars } from './helpers.mjs';

// The failing class. The info hash's first byte picks the failure, so
// each request's expected answer is known. Messages are the runtime's.
const FAILING_SWARM = `
import { DurableObject } from 'cloudflare:workers';
const FAULTS = [
  () => { const e = new Error('Durable Object is overloaded. Too many requests queued.'); e.overloaded = true; e.retryable = true; throw e; },
  () => { throw new Error('Network connection lost.'); },
  () => { throw new Error('Durable Object reset because its code was updated.'); },
  () => { throw new Error("Durable Object's isolate exceeded its memory limit and was reset."); },
  () => new Response('internal error', { status: 500 }),
];
async function firstHashByte(request) {
  const url = request.url;
  const q = url.indexOf('?');
  // An HTTP announce: the hex message after 'https://swarm/a?' (version byte, then the hash).
  if (q > 0) return parseInt(url.slice(q + 3, q + 5), 16);
  // A shard asked to move a torrent to its own object: the hash in hex.
  const move = url.indexOf('/move/');
  if (move > 0) return parseInt(url.slice(move + 6, move + 8), 16);
  // A WebSocket peer: JSON with the hash as a byte array.
  const body = JSON.parse(await request.text());
  return Object.values(body)[0].info_hash[0];
}
export class FailingSwarm extends DurableObject {
  async fetch(request) {
    return FAULTS[(await firstHashByte(request)) % FAULTS.length]();
  }
  // The Worker's hot path asks by RPC (the swarm URL); an error status
  // comes back as the object's answer would.
  async announce(url) {
    const res = FAULTS[(await firstHashByte({ url })) % FAULTS.length]();
    return { status: res.status, headers: [...res.headers], body: new Uint8Array(await res.arrayBuffer()) };
  }
  // Announces the Worker coalesced: a fault that throws fails the call,
  // as the runtime fails it; an error status is each one's answer.
  async announceBatch(urls) {
    batchCalls += 1;
    return Promise.all(urls.map((url) => this.announce(url)));
  }
}
let batchCalls = 0;
// The test asks how many coalesced calls came.
export default { fetch: () => new Response(String(batchCalls)) };
`;

const FAULTS = ['swarm_overloaded', 'swarm_unavailable', 'swarm_unavailable', 'swarm_unavailable', 'swarm_unavailable'];
const RETRY_MINUTES = { swarm_overloaded: 5, swarm_unavailable: 1 };
/** An info hash whose first byte picks fault `i` of the failing class. */
const hashFor = (i, tag) => Buffer.from([i, ...Buffer.alloc(19, tag)]);

let t;
before(async () => {
  t = await startTracker({
    durableObjects: {
      SWARMS: { className: 'FailingSwarm', scriptName: 'failing-swarm', useSQLite: true },
      SHARDS: { className: 'FailingSwarm', scriptName: 'failing-swarm', useSQLite: true },
    },
    workers: [
      {
        name: 'failing-swarm',
        modules: true,
        script: FAILING_SWARM,
        compatibilityDate: '2026-04-20',
        durableObjects: { FAILING: { className: 'FailingSwarm', useSQLite: true } },
        bindings: wranglerVars(),
      },
    ],
  });
});
after(async () => { await t?.close(); });

async function failures() {
  const res = await fetch(`${t.base}/metrics`);
  assert.equal(res.status, 200);
  const counts = {};
  for (const m of (await res.text()).matchAll(/^edge_tracker_failures_total\{reason="([a-z_]+)"\} (\d+)$/gm)) {
    counts[m[1]] = Number(m[2]);
  }
  return counts;
}

function assertRetryAnswer(res, fault, what) {
  assert.equal(res.status, 200, `${what}: HTTP 200, never a 5xx`);
  assert.ok(res.body, `${what}: a bencoded body`);
  assert.match(Buffer.from(res.body['failure reason']).toString(), /retry later/, what);
  assert.equal(res.body['retry in'], RETRY_MINUTES[fault], `${what}: retry in`);
  assert.equal(res.body.peers, undefined, what);
}

test('every swarm fault on both announce paths is a bencoded failure with retry in, counted by reason', async () => {
  const before = await failures();
  assert.equal(before.swarm_overloaded, 0, 'swarm_overloaded is listed before it happens');
  const expected = { swarm_overloaded: 0, swarm_unavailable: 0 };
  for (const [i, fault] of FAULTS.entries()) {
    // The JS entry's hot path (public GET /announce)...
    const fast = await announce(t.base, { infoHash: hashFor(i, 1), peerId: peerId(`fast${i}`), event: 'started' });
    assertRetryAnswer(fast, fault, `hot path, fault ${i}`);
    // ...and the Rust router (the path form takes the full path in public mode too).
    const full = await announce(t.base, { infoHash: hashFor(i, 2), peerId: peerId(`full${i}`) }, { path: '/announce/x' });
    assertRetryAnswer(full, fault, `router, fault ${i}`);
    expected[fault] += 2;
  }
  const after = await failures();
  for (const [reason, n] of Object.entries(expected)) {
    assert.equal(after[reason] - before[reason], n, reason);
  }
  assert.match(Buffer.from((await announce(t.base, { infoHash: hashFor(0, 3), peerId: peerId('o') })).body['failure reason']).toString(), /too busy/);
});

test('concurrent announces to a failing swarm, coalesced into calls, each get the failure with retry in', async () => {
  const failing = await t.mf.getWorker('failing-swarm');
  const calls = async () => Number(await (await failing.fetch('http://failing/')).text());
  const callsBefore = await calls();
  const before = await failures();
  const N = 24;
  for (const [i, fault] of [[0, 'swarm_overloaded'], [4, 'swarm_unavailable']]) {
    const answers = await Promise.all(Array.from({ length: N }, (_, n) =>
      announce(t.base, { infoHash: hashFor(i, 6), peerId: peerId(`many${i}-${n}`), port: 7000 + n })));
    answers.forEach((res, n) => assertRetryAnswer(res, fault, `fault ${i}, announce ${n}`));
  }
  const after = await failures();
  assert.equal(after.swarm_overloaded - before.swarm_overloaded, N);
  assert.equal(after.swarm_unavailable - before.swarm_unavailable, N);
  assert.ok((await calls()) > callsBefore, 'some announces went together');
});

test('a HEAD announce to a failing swarm is not a 5xx either', async () => {
  const res = await get(`${t.base}/announce?info_hash=${escapeBytes(hashFor(1, 4))}&peer_id=${escapeBytes(peerId('head'))}&port=6881`, { method: 'HEAD' });
  assert.equal(res.status, 200);
});

test('WebSocket announces to a failing swarm get a failure frame the client reports, with retry in', async () => {
  const ws = new WebSocket(`${t.base.replace(/^http/, 'ws')}/announce`);
  await once(ws, 'open');
  const frames = [];
  ws.on('message', (d) => frames.push(JSON.parse(d.toString())));
  try {
    const before = await failures();
    for (const [i, fault] of FAULTS.entries()) {
      const info_hash = hashFor(i, 5).toString('latin1');
      ws.send(JSON.stringify({ action: 'announce', info_hash, peer_id: peerId(`ws${i}`).toString('latin1'), event: 'started', left: 1, numwant: 0, offers: [] }));
      const frame = await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no frame: ${JSON.stringify(frames)}`)), 10000);
        const poll = setInterval(() => {
          const f = frames.find((x) => x.info_hash === info_hash);
          if (f) { clearTimeout(timer); clearInterval(poll); resolve(f); }
        }, 20);
      });
      // bittorrent-tracker's client reports a `failure reason` with a known action as a warning.
      assert.equal(frame.action, 'announce');
      assert.match(frame['failure reason'], /retry later/);
      assert.equal(frame['retry in'], RETRY_MINUTES[fault], `fault ${i}`);
    }
    assert.equal(ws.readyState, WebSocket.OPEN, 'the socket stays open');
    const after = await failures();
    assert.equal(after.swarm_overloaded - before.swarm_overloaded, 1);
    assert.equal(after.swarm_unavailable - before.swarm_unavailable, 4);
  } finally {
    ws.terminate();
  }
});
