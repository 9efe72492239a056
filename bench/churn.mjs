// All-in cost of realistic public traffic: a long tail of tiny swarms and
// churning sessions, with single-hash scrapes. Writes
// bench-results/churn.json.
//
// Torrents have Zipf-like sizes (CHURN_TORRENTS torrents, the largest with
// CHURN_TOP peers: most have 1-5 peers, a few hundreds). Each peer slot holds
// a session: it joins (`event=started`, half of them seeders), re-announces
// once per round, sometimes completes (`event=completed`), and ends with
// probability CHURN_END per round, with `event=stopped` (70%) or by
// vanishing (30%: it expires later, in the swarm's alarm); a new session
// takes its slot in the same round. About 10% of requests are single-hash
// scrapes of torrents picked by popularity.
//
// Time is compressed CHURN_SCALE times (default 60: a round of 30 s is the
// default 1,800 s interval): INTERVAL, MIN_INTERVAL, PEER_GRACE,
// PUBLISH_WINDOW and REFRESH_AFTER are the defaults divided by it, so each swarm sees as many
// announces per publish window, and its silent peers expire after as many
// rounds, as in production. Each round's requests go out at random times
// across it. SWARM_RATE_TARGET is 0: at real rates no swarm here comes near
// it. Swarm objects are kept in memory (Miniflare `unsafePreventEviction`)
// so each object's running totals (`x-swarm-usage`) include every alarm it
// ran; a real tiny swarm's object is evicted between announces and reloads
// its few rows each time (rows read: $0.001 per million each).
//
// Costs: the growth of the swarms' totals, the Worker's KV reads and each
// stub call's time (`x-do-ms`) over the measured rounds (from each swarm's
// last answer in round 0 to its last in the final round: alarm work after
// that is left out as the alarm work before round 1 is counted, as in a
// steady state; waiting idle at the end instead would let every peer
// expire), priced by bench/lib.mjs `dollars()` like bench/run.mjs. A
// scrape is a Worker request and the KV reads it made (`x-kv-reads`: one
// for a torrent with its own object, none for a shared swarm's, whose
// shard answers); its price is added to the announces' as
// (scrapes / announces) x price per scrape. A scrape that misses KV
// (SCRAPE_CACHE, the read-through cache) also asks the swarm, which caches
// its counters in KV, and a shared swarm's scrape asks its shard: those DO
// requests and KV writes are in the objects' own totals, so in the
// announces' figure.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, startTracker, escapeBytes } from '../tests/helpers.mjs';
import { PRICE, diff, dollars, envNumbers, observe, sumUsage } from './lib.mjs';

const { TORRENTS, TOP, ZIPF, ROUNDS, SCALE, END } = envNumbers('CHURN', { TORRENTS: 400, TOP: 300, ZIPF: 1.1, ROUNDS: 6, SCALE: 60, END: 0.25 });
const STOP_SHARE = 0.7;
const COMPLETE = 0.15;
const SCRAPE_SHARE = 0.1;
const GOAL = 0.70;
const ROUND_SECONDS = Math.round(1800 / SCALE);
const OUT = join(ROOT, 'bench-results');
// For a what-if run: more vars (JSON) and another file name.
const EXTRA_VARS = JSON.parse(process.env.CHURN_VARS ?? '{}');
const OUT_FILE = process.env.CHURN_OUT ?? 'churn.json';
const log = (...a) => console.log('[churn]', ...a);

// A small seeded generator (mulberry32): every run draws the same traffic.
let seed = Number(process.env.CHURN_SEED ?? 20261129) | 0;
function random() {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

const sizes = Array.from({ length: TORRENTS }, (_, r) => Math.max(1, Math.round(TOP / (r + 1) ** ZIPF)));
const hashes = sizes.map((_, t) => {
  const b = Buffer.alloc(20);
  b.writeUInt32BE(0xc4c4c4c4, 0);
  b.writeUInt32BE(t, 4);
  for (let j = 8; j < 20; j++) b[j] = (t * 37 + j * 11) & 255;
  return escapeBytes(b);
});
// Scrapes pick torrents as peers do: by size.
const cumulative = [];
sizes.reduce((sum, s, t) => (cumulative[t] = sum + s), 0);
const popular = () => {
  const x = random() * cumulative[TORRENTS - 1];
  return cumulative.findIndex((c) => c > x);
};

let nextSession = 0;
function newSession(t) {
  const n = nextSession++;
  return { t, n, seeder: random() < 0.5, joined: false };
}

/** The requests of one round: [kind, torrent, session, event]. */
function roundPlan(slots, first) {
  const plan = [];
  for (const slot of slots) {
    const s = slot.session;
    if (first || !s.joined) {
      plan.push(['announce', s, 'started']);
      s.joined = true;
      continue;
    }
    if (random() < END) {
      if (random() < STOP_SHARE) plan.push(['announce', s, 'stopped']);
      slot.session = newSession(s.t);
      slot.session.joined = true;
      plan.push(['announce', slot.session, 'started']);
    } else if (!s.seeder && random() < COMPLETE) {
      s.seeder = true;
      plan.push(['announce', s, 'completed']);
    } else {
      plan.push(['announce', s, '']);
    }
  }
  const scrapes = Math.round((plan.length * SCRAPE_SHARE) / (1 - SCRAPE_SHARE));
  for (let i = 0; i < scrapes; i++) plan.push(['scrape', { t: popular() }, '']);
  return plan;
}

const ip = (n) => `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;

function announceUrl(base, s, event) {
  const fields = {
    info_hash: hashes[s.t], peer_id: `-CH0001-${String(s.n).padStart(12, '0')}`, port: 10000 + (s.n % 20000),
    uploaded: 0, downloaded: 0, left: s.seeder ? 0 : 1000, compact: 1, numwant: event === 'stopped' ? 0 : 50,
    ...(event ? { event } : {}),
  };
  return `${base}/announce?${Object.entries(fields).map(([k, v]) => `${k}=${v}`).join('&')}`;
}

// A connection the runtime closed or reset (seen with the machine
// overloaded) is retried, five times at most with a growing pause, and
// counted; an answer is never retried.
async function get(c, url, headers) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fetch(url, { headers });
    } catch (e) {
      if (attempt >= 5) throw e;
      c.retries += 1;
      await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
    }
  }
}

function counter(t) {
  const usage = new Map();
  const c = { usage, workerKvReads: 0, scrapeKvReads: 0, doMs: 0, announces: 0, scrapes: 0, events: {}, retries: 0 };
  c.announce = async (s, event) => {
    const res = await get(c, announceUrl(t.base, s, event), { 'cf-connecting-ip': ip(s.n) });
    const body = Buffer.from(await res.arrayBuffer());
    if (res.status !== 200 || body.subarray(0, 17).toString() === 'd14:failure reaso') throw new Error(`announce failed: ${res.status} ${body}`);
    const u = res.headers.get('x-swarm-usage');
    if (u) observe(usage, JSON.parse(u));
    c.workerKvReads += Number(res.headers.get('x-kv-reads') ?? 0);
    c.doMs += Number(res.headers.get('x-do-ms') ?? 0);
    c.announces += 1;
    c.events[event || 'none'] = (c.events[event || 'none'] ?? 0) + 1;
  };
  c.scrape = async (torrent) => {
    const res = await get(c, `${t.base}/scrape?info_hash=${hashes[torrent]}`, { 'cf-connecting-ip': '10.255.0.1' });
    const body = Buffer.from(await res.arrayBuffer());
    if (res.status !== 200 || body.includes('failure reason')) throw new Error(`scrape failed: ${res.status} ${body}`);
    // KV reads of the scrape itself (a shared torrent's is none: its shard answers).
    c.scrapeKvReads += Number(res.headers.get('x-kv-reads') ?? 1);
    c.scrapes += 1;
  };
  return c;
}

/** Sends a round's requests at random moments across ROUND_SECONDS. */
async function play(c, plan) {
  const started = Date.now();
  const timed = plan.map((p) => [random() * ROUND_SECONDS * 1000, p]).sort((a, b) => a[0] - b[0]);
  const inFlight = [];
  for (const [at, [kind, s, event]] of timed) {
    const wait = at - (Date.now() - started);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    inFlight.push(kind === 'scrape' ? c.scrape(s.t) : c.announce(s, event));
  }
  await Promise.all(inFlight);
  const late = Date.now() - started - ROUND_SECONDS * 1000;
  if (late > 1000) log(`round ran ${(late / 1000).toFixed(1)} s late`);
}

const snapshot = (c) => ({ usage: sumUsage(c.usage), kv: c.workerKvReads, scrapeKv: c.scrapeKvReads, ms: c.doMs, announces: c.announces, scrapes: c.scrapes, events: { ...c.events } });

export async function churnCosts() {
  const vars = {
    EXPOSE_COSTS: 'true', ENFORCE_MIN_INTERVAL: 'false', SWARM_RATE_TARGET: '0',
    INTERVAL: String(ROUND_SECONDS), MIN_INTERVAL: String(Math.round(ROUND_SECONDS / 2)), PEER_GRACE: String(Math.round(600 / SCALE)),
    PUBLISH_WINDOW: String(Math.max(1, Math.round(60 / SCALE))), REFRESH_AFTER: String(Math.round(21_600 / SCALE)),
    // KV's shortest expiry, 60 s, does not scale: at 60x it stands for an hour.
    SCRAPE_CACHE: String(Math.max(60, Math.round(1800 / SCALE))),
    ...EXTRA_VARS,
  };
  const t = await startTracker({
    vars,
    durableObjects: {
      SWARMS: { className: 'SwarmObject', useSQLite: true, unsafePreventEviction: true },
      SHARDS: { className: 'ShardObject', useSQLite: true, unsafePreventEviction: true },
    },
  });
  try {
    const slots = [];
    sizes.forEach((size, tIndex) => { for (let i = 0; i < size; i++) slots.push({ session: newSession(tIndex) }); });
    log(`${TORRENTS} torrents, ${slots.length} sessions live at a time; sizes ${sizes.slice(0, 5).join(', ')}, ... ${sizes.filter((s) => s <= 5).length} with 1-5 peers`);
    const c = counter(t);
    // Round 0: every first session joins; measured from the end of it.
    await play(c, roundPlan(slots, true));
    const before = snapshot(c);
    for (let round = 1; round <= ROUNDS; round++) {
      await play(c, roundPlan(slots, false));
      log(`round ${round}: ${c.announces - before.announces} announces, ${c.scrapes - before.scrapes} scrapes so far`);
    }
    const after = snapshot(c);
    const announces = after.announces - before.announces;
    const scrapes = after.scrapes - before.scrapes;
    const spent = diff(before.usage, after.usage);
    const per = Object.fromEntries(Object.entries(spent).map(([k, v]) => [k, v / announces]));
    per.worker_kv_reads = (after.kv - before.kv) / announces;
    per.do_ms = (after.ms - before.ms) / announces;
    const cost = dollars(per);
    // A scrape: a Worker request and its KV reads (its shard's or swarm's
    // request on a miss is in their own usage, so in the announces' line).
    const scrapeKvReads = (after.scrapeKv - before.scrapeKv) / scrapes;
    const scrapePrice = PRICE.workerRequest + scrapeKvReads * PRICE.kvRead;
    const scrapeShare = (scrapes / announces) * scrapePrice;
    const events = diff(before.events, after.events);
    return {
      vars,
      session_end_per_round: END,
      torrents: TORRENTS,
      sessions_live: slots.length,
      sizes: { largest: sizes[0], with_1_to_5_peers: sizes.filter((s) => s <= 5).length },
      rounds: ROUNDS,
      round_seconds: ROUND_SECONDS,
      scale: SCALE,
      announces,
      events,
      scrapes,
      retried_connections: c.retries,
      totals: spent,
      per_announce: per,
      announce_cost: cost,
      scrape_price_per_million: Number(scrapePrice.toFixed(4)),
      scrape_kv_reads_per_scrape: Number(scrapeKvReads.toFixed(4)),
      scrapes_per_announce: Number((scrapes / announces).toFixed(4)),
      all_in_per_million_announces: Number((cost.per_million + scrapeShare).toFixed(4)),
      all_in_per_million_requests: Number(((cost.per_million * announces + scrapePrice * scrapes) / (announces + scrapes)).toFixed(4)),
    };
  } finally {
    await t.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await churnCosts();
  const result = { date: new Date().toISOString(), machine: `${execFileSync('nproc').toString().trim()} cores`, goal: GOAL, met: r.all_in_per_million_announces <= GOAL, ...r };
  mkdirSync(OUT, { recursive: true });
  writeFileSync(join(OUT, OUT_FILE), JSON.stringify(result, null, 2) + '\n');
  log(`all-in $ per million announces: ${r.all_in_per_million_announces} (announces ${r.announce_cost.per_million}, scrapes ${r.scrapes_per_announce} per announce at $${r.scrape_price_per_million}/M); goal <= ${GOAL}`);
  log('per announce', JSON.stringify(r.per_announce));
  log('breakdown', JSON.stringify(r.announce_cost.breakdown));
}
