// Coalesced announces (README: design notes, "Coalesced announces"): the
// Worker's calls to a swarm's or a shard's object, per isolate, by the
// object's name (`key`). The first announce goes at once; while a call to
// the object is in flight, later ones wait and go together as one call
// (`announceBatch`) once it is back, or at once when `batchMax` of them
// wait. An object's limit is its requests (about 1,000 a second), and
// each costs it more than an announce does: under load a request carries
// several, the more the slower the object answers, while a quiet swarm's
// announce never waits. `ask` resolves to `{ out, ms, batch }`: the
// object's answer, the call's wall-clock ms (its share), the announces it
// carried. The object's side is `announceBatch` (`RustObject` in
// entry.mjs; the bench's floor, bench/floor/worker.js, uses this module
// too).
//
// A request may only do I/O in its own context, and the runtime does not
// reliably hand a request a promise another request settles (under load
// workerd answered such requests with "Cannot perform I/O on behalf of a
// different request"). So nothing here settles another request's
// promise: a waiting request is woken by its own timer only, and finds its
// answer written as plain data. Whoever sends a batch is one of its own
// announces: a waiting request sends it when nothing is in flight, or the
// one that fills it at once. Every call is also kept alive by its
// request's `waitUntil`, so a client that goes away does not leave the
// object marked busy.
const toObjects = new Map();
// How long a waiting announce waits for its answer at most; its line to
// the object is then given up (a call lost for good), and it is answered
// with `retry in`.
const BATCH_WAIT_MS = 20000;

// The announces to one object: calls in flight, the batch still to go
// (`group`), the last call's start and round trip (ms), which time the
// waiting requests' timers.
const newLine = () => ({ inFlight: 0, group: newGroup(), sentAt: 0, rtt: 1 });
const newGroup = () => ({ members: [], sentAt: 0 });

export function ask(ctx, stub, key, url, batchMax) {
  let line = toObjects.get(key);
  if (line === undefined) {
    line = newLine();
    toObjects.set(key, line);
  }
  if (batchMax <= 1 || (line.inFlight === 0 && line.group.members.length === 0)) return askAlone(ctx, stub, key, line, url);
  const group = line.group;
  const w = { url, done: false, value: undefined, error: undefined };
  group.members.push(w);
  if (group.members.length >= batchMax || line.inFlight === 0) send(ctx, stub, key, line);
  return waitFor(ctx, stub, key, line, group, w);
}

async function askAlone(ctx, stub, key, line, url) {
  const sent = started(line);
  let call;
  try {
    call = stub.announce(url);
  } catch (e) {
    // A call that never started must not leave the object marked busy.
    returned(key, line, sent);
    throw e;
  }
  ctx.waitUntil(call.then(() => returned(key, line, sent), () => returned(key, line, sent)));
  const out = await call;
  return { out, ms: Date.now() - sent, batch: 1 };
}

// A waiting announce: asleep until its batch's call (or, before it went,
// the call ahead of it) is likely back, then a millisecond at a time. It
// sends its batch itself if that is due and no other member has.
async function waitFor(ctx, stub, key, line, group, w) {
  const deadline = Date.now() + BATCH_WAIT_MS;
  while (!w.done) {
    if (group.sentAt === 0 && line.inFlight === 0) {
      await send(ctx, stub, key, line);
      continue;
    }
    const back = (group.sentAt || line.sentAt) + line.rtt;
    await scheduler.wait(Math.max(1, back - Date.now()));
    if (!w.done && Date.now() > deadline) {
      if (toObjects.get(key) === line) toObjects.delete(key);
      throw new Error('no answer from the swarm in time');
    }
  }
  if (w.error !== undefined) throw w.error;
  return w.value;
}

// The line's batch as one call: each member gets its own answer, or its
// own error (`{ failed }`); a call that fails fails them all, as it would
// have each. Never rejects.
function send(ctx, stub, key, line) {
  const group = line.group;
  line.group = newGroup();
  const sent = started(line);
  group.sentAt = sent;
  const members = group.members;
  const call = (async () => {
    try {
      const outs = await stub.announceBatch(members.map((w) => w.url));
      const ms = (Date.now() - sent) / members.length;
      members.forEach((w, i) => {
        const out = outs[i];
        if (out === undefined || out.failed !== undefined) w.error = new Error(out?.failed ?? 'no answer in the batch');
        else w.value = { out, ms, batch: members.length };
        w.done = true;
      });
    } catch (e) {
      for (const w of members) {
        w.error = e;
        w.done = true;
      }
    } finally {
      returned(key, line, sent);
    }
  })();
  ctx.waitUntil(call);
  return call;
}

function started(line) {
  line.inFlight++;
  line.sentAt = Date.now();
  return line.sentAt;
}

// A call returned: its round trip times the next waits; an idle object
// is forgotten (what waits is sent by its own members).
function returned(key, line, sent) {
  line.inFlight--;
  line.rtt = Math.max(1, Date.now() - sent);
  if (line.inFlight === 0 && line.group.members.length === 0 && toObjects.get(key) === line) toObjects.delete(key);
}
