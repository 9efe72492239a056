// The Worker's entry module (wrangler.toml `main`, copied to build/ by
// scripts/build.sh). It gives the two hot paths, a public announce in the
// Worker and an announce into a swarm already in memory, a direct call into
// the Rust code (`Front`, `SwarmObject.announceNow`): no await before the
// swarm, no worker-rs request wrappers. Every decision is still Rust's;
// this file only moves bytes. Anything else goes to worker-rs's handlers in
// index.js unchanged (README: design notes, "The JS entry").
import { DurableObject } from 'cloudflare:workers';
import { ask } from './coalesce.mjs';
import RustWorker, { Front, SwarmObject as RustSwarm, ShardObject as RustShard, SocketGateway, StatsObject } from './index.js';

export { SocketGateway, StatsObject };

// The swarm's URLs for an announce and for its counters
// (`SWARM_ANNOUNCE_URL`, `SWARM_COUNTERS_URL` in Rust).
const SWARM_ANNOUNCE_URL = 'https://swarm/a?';
const SWARM_COUNTERS_URL = 'https://swarm/counters/';
// No `cache-control`: nothing caches a Worker's answer to a GET without
// validators, and every header is copied on the way out (README).
const BENCODED = { 'content-type': 'text/plain; charset=utf-8' };
// The same, built once: a Response copies them without reading an object.
const BENCODED_INIT = { headers: new Headers(BENCODED) };
// The same, as `[name, value]` pairs (a noted answer's headers).
const BENCODED_PAIRS = Object.entries(BENCODED);
const CLIENT_BANS_KEY = 'client-bans';
// The status of an object's announce answer with notes for the Worker in
// its headers (Rust `NOTED_STATUS`).
const NOTED = 203;
// What a plan from `Front.announce` / `Front.scrape` asks (its first byte),
// read on the first request: a call into Rust while this module is
// evaluated made every later request several times slower (workerd).
let Plan;
// A scrape plan's keys are ASCII.
const decoder = new TextDecoder();

// Per isolate: vars only change with a deploy, which starts new isolates.
let fastPath;
let exposeCosts;
// The most announces one call to an object carries (SWARM_BATCH).
let batchMax;
// Torrents whose shard said they live in their own objects (SWARM_SHARDS):
// their announces go there directly. Bounded: forgetting one only costs a
// hop through its shard, which forwards it.
const ownObjects = new Set();
const OWN_OBJECTS_MAX = 10000;
// When `Front.after` next looks whether the isolate's counts are due to
// be sent to the stats object (it sends at most every STATS_FLUSH).
let nextFlushCheck = 0;

// After each answer: counts the swarm's failure reason, if any, and at
// most once a second lets the counts go out.
function after(env, ctx, failure) {
  const now = Date.now();
  if (failure === '' && now < nextFlushCheck) return;
  nextFlushCheck = now + 1000;
  Front.after(env, ctx, failure);
}

function fullPath(request, env, ctx) {
  return new RustWorker(ctx, env).fetch(request);
}

// The path of the raw URL.
function pathOf(url) {
  const start = url.indexOf('/', url.indexOf('//') + 2);
  if (start < 0) return '/';
  const q = url.indexOf('?', start);
  return q < 0 ? url.slice(start) : url.slice(start, q);
}

const ANNOUNCE = new Set(['/announce', '/announce.php']);
const SCRAPE = new Set(['/scrape', '/scrape.php']);

function bencoded(body) {
  return new Response(body, BENCODED_INIT);
}

export default {
  // Not `async`: each path returns its own promise (one less to resolve).
  fetch(request, env, ctx) {
    fastPath ??= Front.enabled(env);
    Plan ??= Front.plans();
    const url = request.url;
    // A request with a body (a POST; a GET that sent one) takes the full
    // path, which reads what its answer left unread (Rust `request_body`).
    if (!fastPath || request.method !== 'GET' || request.body !== null) return fullPath(request, env, ctx);
    const path = pathOf(url);
    if (ANNOUNCE.has(path) && !request.headers.has('upgrade')) return announce(request, env, ctx, url);
    if (SCRAPE.has(path)) return scrape(request, env, ctx, url);
    return fullPath(request, env, ctx);
  },
};

async function scrape(request, env, ctx, url) {
  const ip = request.headers.get('cf-connecting-ip') ?? '';
  const over = env.ANNOUNCE_LIMITER ? await overLimit(ip, env) : false;
  const plan = Front.scrape(env, url, ip, over);
  let answer;
  const cost = { kvReads: 0 };
  switch (plan[0]) {
    case Plan.Answer:
      answer = bencoded(plan.subarray(1));
      break;
    case Plan.ScrapeKeys:
    case Plan.ScrapeThrough:
      answer = bencoded(await scrapeKeys(env, decoder.decode(plan.subarray(1)), plan[0] === Plan.ScrapeThrough, cost));
      break;
    case Plan.FullScrape:
      answer = bencoded(await Front.fullScrape(env));
      break;
    default:
      return fullPath(request, env, ctx);
  }
  exposeCosts ??= env.EXPOSE_COSTS === 'true' || env.EXPOSE_COSTS === '1';
  if (exposeCosts) answer.headers.set('x-kv-reads', String(cost.kvReads));
  after(env, ctx, '');
  return answer;
}

// The scrape answer for the KV keys of the torrents' counters (a line
// each); with `readThrough`, a key KV lacks is asked of its swarm. A
// shared swarm's counters (SWARM_SHARDS) are never in KV: its shard is
// asked at once, unless this isolate knows the torrent moved out.
async function scrapeKeys(env, lines, readThrough, cost) {
  // A read-through plan's lines are `key target` (Plan.ScrapeThrough).
  const rows = lines.split('\n').map((line) => line.split(' '));
  const keys = rows.map((row) => row[0]);
  const targets = rows.map((row) => row[1]);
  try {
    const shared = targets.map((target) => target !== undefined && target.includes(':') && !ownObjects.has(target.slice(-40)));
    const kvKeys = keys.filter((_, i) => !shared[i]);
    cost.kvReads = kvKeys.length;
    let got = new Map();
    if (kvKeys.length === 1) {
      got.set(kvKeys[0], await env.TRACKER_KV.get(kvKeys[0]));
    } else if (kvKeys.length > 1) {
      got = await env.TRACKER_KV.get(kvKeys);
    }
    const found = await Promise.all(keys.map((k, i) => {
      const value = shared[i] ? null : got.get(k);
      return value ?? (readThrough ? swarmCounters(env, targets[i]) : '');
    }));
    return Front.scrapeAnswer(keys.join('\n'), found.join('\n'));
  } catch (e) {
    return Front.scrapeUnavailable(String(e));
  }
}

// A swarm's counters, from `target` (the scrape plan's: the torrent's own
// object by its hash, or its shard, `name:hash`); '' (zeros) if it cannot
// answer: a scrape is advice. A shard answering for a torrent that moved
// out says so (`x-moved`), and this isolate goes there directly next time.
async function swarmCounters(env, target) {
  if (target === undefined) return '';
  const colon = target.indexOf(':');
  const hex = target.slice(colon + 1);
  const stub = colon < 0 || ownObjects.has(hex)
    ? env.SWARMS.get(env.SWARMS.idFromName(hex))
    : env.SHARDS.get(env.SHARDS.idFromName(target.slice(0, colon)));
  try {
    const res = await stub.fetch(SWARM_COUNTERS_URL + hex);
    if (res.headers.has('x-moved')) remember(hex);
    return res.status === 200 ? await res.text() : '';
  } catch {
    return '';
  }
}

// A torrent that lives in its own object, not its shard.
function remember(hex) {
  if (ownObjects.size >= OWN_OBJECTS_MAX) ownObjects.clear();
  ownObjects.add(hex);
}

// Tracker requests are rate-limited per address (ANNOUNCE_LIMITER). The
// callers look for the binding first: without one, no promise is made.
async function overLimit(ip, env) {
  try {
    return !(await env.ANNOUNCE_LIMITER.limit({ key: Front.limiterKey(ip) })).success;
  } catch (e) {
    Front.limiterFailed(String(e));
    return false;
  }
}

async function announce(request, env, ctx, url) {
  const ip = request.headers.get('cf-connecting-ip') ?? '';
  const over = env.ANNOUNCE_LIMITER ? await overLimit(ip, env) : false;
  let plan = Front.announce(env, url, ip, over);
  if (plan[0] === Plan.ClientBans) {
    let bans;
    try {
      bans = await env.TRACKER_KV.get(CLIENT_BANS_KEY);
    } catch {
      // The full path reads it again and logs why it cannot.
      return fullPath(request, env, ctx);
    }
    Front.clientBans(bans ?? '');
    plan = Front.announce(env, url, ip, over);
  }
  // A forward plan is a string; the others are bytes.
  if (typeof plan === 'string') return forward(env, ctx, plan);
  if (plan[0] !== Plan.Answer) return fullPath(request, env, ctx);
  after(env, ctx, '');
  return bencoded(plan.subarray(1));
}

// The announce, to its swarm's object (Plan.Forward) or its shard
// (Plan.Shared, whose plan names it: `shard-` and 4 hex digits), by JS RPC
// (`RustObject.announce`): the object answers with the bencoded bytes
// alone, and this Worker makes the client's Response, so the object (one
// per hot torrent, its time the limit) neither reads a Request nor builds
// and sends a Response (README: design notes, "The JS entry"). A noted
// answer (`{ status, headers, body }`, NOTED) carries the failure to
// count, or that the torrent lives in its own object (`x-moved`), and the
// client gets it with 200.
async function forward(env, ctx, plan) {
  const hash = plan.slice(1, 41);
  const shared = plan.charCodeAt(0) === Plan.Shared;
  const toShard = shared && !ownObjects.has(hash);
  const swarmUrl = plan.slice(shared ? 51 : 41);
  const stub = toShard
    ? env.SHARDS.get(env.SHARDS.idFromName(plan.slice(41, 51)))
    : env.SWARMS.get(env.SWARMS.idFromName(hash));
  exposeCosts ??= env.EXPOSE_COSTS === 'true' || env.EXPOSE_COSTS === '1';
  batchMax ??= Front.swarmBatch(env);
  let answer;
  let failure = '';
  try {
    const asked = await ask(ctx, stub, toShard ? plan.slice(41, 51) : hash, swarmUrl, batchMax);
    const out = asked.out;
    if (out instanceof Uint8Array) {
      answer = bencoded(out);
    } else {
      // Any other status is the object failing: the client gets a
      // tracker answer with `retry in` (below), never the 5xx.
      if (out.status !== NOTED) throw new Error(`swarm answered ${out.status}`);
      const headers = new Headers(out.headers);
      failure = headers.get('x-failure') ?? '';
      if (toShard && headers.has('x-moved')) remember(hash);
      answer = new Response(out.body, { headers });
    }
    if (exposeCosts) {
      answer = new Response(answer.body, answer);
      answer.headers.set('x-kv-reads', String(Front.kvReads()));
      // The object's wall-clock time for this request, as the Worker
      // sees it (ms; the cost bench prices duration from it): a call's
      // share when it carried several, and the count it carried.
      answer.headers.set('x-do-ms', String(asked.ms));
      answer.headers.set('x-swarm-batch', String(asked.batch));
      // Locally the objects share this isolate: its wasm memory is theirs.
      answer.headers.set('x-wasm-memory', String(Front.wasmMemory()));
    }
  } catch (e) {
    // Overloaded, reset, a deploy, an exceeded limit: a counted failure
    // reason with BEP 31 `retry in` (README: Failure behaviour).
    answer = bencoded(Front.swarmUnavailable(hash, String(e), e?.overloaded === true));
  }
  after(env, ctx, failure);
  return answer;
}

// A swarm's Durable Object (one per torrent) and a shard of small public
// swarms (SWARM_SHARDS): each is its Rust object, and an announce goes to
// the same announce core calls in both (`answerAnnounce`), from two
// drivers: `announce` (JS RPC, the entry's hot path) and `fetch` (the
// Rust router's full path and every other request).
class RustObject extends DurableObject {
  constructor(rust, ctx, env) {
    super(ctx, env);
    this.rust = rust;
  }

  // The Worker's announce by RPC, for the swarm URL the plan gave: most
  // are answered here and now with the bencoded bytes, no promise of our
  // own; the rest as `answerAnnounce` gives them.
  announce(url) {
    const outcome = this.rust.announceNow(url);
    return outcome instanceof Uint8Array ? outcome : answerAnnounce(this, url, outcome);
  }

  // Announces a Worker coalesced (`ask`), in order, each answered as
  // `announce` answers it; one that throws is `{ failed }`, its own
  // client's failure alone. Concurrent loads are safe (`ensure_loaded`).
  announceBatch(urls) {
    let pending = false;
    const outs = urls.map((url) => {
      try {
        const out = this.announce(url);
        if (out instanceof Uint8Array) return out;
        pending = true;
        return out.catch(failedItem);
      } catch (e) {
        return failedItem(e);
      }
    });
    return pending ? Promise.all(outs) : outs;
  }

  // The same announce for the Rust router's full path (a `fetch` of the
  // swarm URL), as a Response; every other request is the Rust object's.
  fetch(request) {
    const url = request.url;
    if (!url.startsWith(SWARM_ANNOUNCE_URL)) return this.rust.fetch(request);
    const answer = this.announce(url);
    return answer instanceof Uint8Array ? asResponse(answer) : answer.then(asResponse);
  }

  alarm() {
    return this.rust.alarm();
  }
}

export class SwarmObject extends RustObject {
  constructor(ctx, env) {
    super(new RustSwarm(ctx, env), ctx, env);
  }
}

export class ShardObject extends RustObject {
  constructor(ctx, env) {
    super(new RustShard(ctx, env), ctx, env);
  }
}

// An announce into an object: `announceNow`'s outcome (synchronous) once
// the swarm or shard is in memory, else (`undefined`) `announceLoading`'s,
// which loads it first. Most announces get the answer alone (above,
// without this function). Otherwise the outcome has the
// alarm write to wait for (the output gate holds the answer until it is
// stored) and the headers (failure, costs); a swarm's counters due to be
// published go out beside the answer (a failure sets the alarm to retry);
// a shard's torrent that lives in its own object is forwarded there (by
// RPC too), and the answer says so (`x-moved`) for the Worker to go there
// directly; a shard's swarm grown to SHARD_PROMOTE moves out beside the
// answer. The answer: the bencoded bytes, or a noted answer
// `{ status, headers, body }` (`[name, value]` headers).
async function answerAnnounce(object, url, now) {
  const rust = object.rust;
  const outcome = now ?? (await rust.announceLoading(url));
  if (outcome instanceof Uint8Array) return outcome;
  if (outcome.publish) object.ctx.waitUntil(rust.publishPending());
  const { alarm, moved, promote } = outcome;
  const extra = outcome.headers();
  const body = outcome.intoBody();
  if (alarm !== undefined) await alarm;
  if (moved !== undefined) {
    const own = await object.env.SWARMS.get(object.env.SWARMS.idFromName(moved)).announce(url);
    const noted = own instanceof Uint8Array ? { status: NOTED, headers: BENCODED_PAIRS, body: own } : own;
    return { ...noted, headers: [...noted.headers, ['x-moved', '1']] };
  }
  if (promote !== undefined) object.ctx.waitUntil(rust.promote(promote));
  return extra === undefined ? body : { status: NOTED, headers: [...BENCODED_PAIRS, ...extra], body };
}

function failedItem(e) {
  return { failed: String(e) };
}

// An object's announce answer as the Response a `fetch` gets.
function asResponse(answer) {
  return answer instanceof Uint8Array
    ? new Response(answer, BENCODED_INIT)
    : new Response(answer.body, { status: answer.status, headers: answer.headers });
}
