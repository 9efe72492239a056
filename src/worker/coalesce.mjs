// Coalesced announces (README: design notes, "Coalesced announces"): the
// Worker's calls to a swarm's or a shard's object, per isolate, by the
// object's name (`key`). The first announce goes at once; while a call to
// the object is in flight, later ones wait and go together as one call
// (`announceBatch`) when a call returns, or at once when `batchMax` of
// them wait. An object's limit is its requests (about 1,000 a second), and
// each costs it more than an announce does: under load a request carries
// several, the more the slower the object answers, while a quiet swarm's
// announce never waits. `ask` resolves to `{ out, ms, batch }`: the
// object's answer, the call's wall-clock ms (its share), the announces it
// carried. The object's side is `announceBatch` (`RustObject` in
// entry.mjs; the bench's floor, bench/floor/worker.js, uses this module
// too).
//
// A request may only do I/O in its own context, which ends with its
// answer: the request that sends the waiting ones (its own call returned,
// or it filled the batch) makes that call with its own stub, kept alive by
// its `waitUntil`, and hands each waiting request its answer.
const toObjects = new Map();
// How long a waiting announce waits for its batch's answer at most.
const BATCH_WAIT_MS = 20000;

export function ask(ctx, stub, key, url, batchMax) {
  let line = toObjects.get(key);
  if (line === undefined) {
    line = { inFlight: 0, waiting: [] };
    toObjects.set(key, line);
  }
  if (line.inFlight === 0) return askAlone(ctx, stub, key, line, url);
  return new Promise((resolve, reject) => {
    // The timer is this request's own pending event: without one the
    // runtime takes a request that awaits another's I/O for hung. Its
    // end is an answer too (`retry in`).
    const timer = setTimeout(() => reject(new Error('no answer from the batch in time')), BATCH_WAIT_MS);
    const settle = (f) => (v) => { clearTimeout(timer); f(v); };
    line.waiting.push({ url, resolve: settle(resolve), reject: settle(reject) });
    if (line.waiting.length >= batchMax) ctx.waitUntil(askWaiting(ctx, stub, key, line));
  });
}

async function askAlone(ctx, stub, key, line, url) {
  line.inFlight++;
  const sent = Date.now();
  try {
    const out = await stub.announce(url);
    return { out, ms: Date.now() - sent, batch: 1 };
  } finally {
    returned(ctx, stub, key, line);
  }
}

// The waiting announces as one call: each gets its own answer, or its own
// error (`{ failed }`); a call that fails fails them all, as it would have
// each. Never rejects (it is a `waitUntil`'s).
async function askWaiting(ctx, stub, key, line) {
  const batch = line.waiting;
  line.waiting = [];
  line.inFlight++;
  const sent = Date.now();
  try {
    const outs = await stub.announceBatch(batch.map((w) => w.url));
    const ms = (Date.now() - sent) / batch.length;
    batch.forEach((w, i) => {
      const out = outs[i];
      if (out === undefined || out.failed !== undefined) w.reject(new Error(out?.failed ?? 'no answer in the batch'));
      else w.resolve({ out, ms, batch: batch.length });
    });
  } catch (e) {
    for (const w of batch) w.reject(e);
  } finally {
    returned(ctx, stub, key, line);
  }
}

// A call returned: whatever waits goes now; an idle object is forgotten.
function returned(ctx, stub, key, line) {
  line.inFlight--;
  if (line.waiting.length > 0) ctx.waitUntil(askWaiting(ctx, stub, key, line));
  else if (line.inFlight === 0) toObjects.delete(key);
}
