// Test harness: the built Worker in Miniflare, reached over real HTTP.
import { Miniflare } from 'miniflare';
import bencode from 'bencode';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The [vars] of wrangler.toml: the defaults an operator deploys with. */
export function wranglerVars() {
  const text = readFileSync(join(ROOT, 'wrangler.toml'), 'utf8');
  const section = text.split(/^\[vars\]\s*$/m)[1]?.split(/^\[/m)[0] ?? '';
  const vars = {};
  for (const m of section.matchAll(/^([A-Z_]+)\s*=\s*"([^"]*)"/gm)) vars[m[1]] = m[2];
  return vars;
}

/**
 * The site's static assets as wrangler.toml `[assets]` declares them, in
 * Miniflare's terms (wrangler dev does the same translation).
 */
export function assetsOptions() {
  const text = readFileSync(join(ROOT, 'wrangler.toml'), 'utf8');
  const section = text.split(/^\[assets\]\s*$/m)[1]?.split(/^\[/m)[0] ?? '';
  const value = (key) => section.match(new RegExp(`^${key}\\s*=\\s*(.+)$`, 'm'))?.[1];
  const str = (key) => JSON.parse(value(key) ?? 'null');
  return {
    directory: join(ROOT, str('directory')),
    binding: str('binding'),
    routerConfig: { has_user_worker: true, static_routing: { user_worker: JSON.parse(value('run_worker_first')) } },
    assetConfig: { html_handling: str('html_handling'), not_found_handling: str('not_found_handling') },
  };
}

function compatibilityDate() {
  const text = readFileSync(join(ROOT, 'wrangler.toml'), 'utf8');
  return text.match(/^compatibility_date\s*=\s*"([^"]+)"/m)[1];
}

/**
 * Starts the tracker. `persistDir` keeps Durable Object and KV state on
 * disk so a second tracker on the same directory is a restarted runtime.
 * `assets: false` leaves out the static-assets router (benchmarks: locally
 * it runs in the same process and costs CPU on every request).
 */
export async function startTracker({ vars = {}, persistDir, ratelimits, logs, onLog, durableObjects, workers, assets = true, build = join(ROOT, 'build'), miniflare = {} } = {}) {
  const ownDir = !persistDir;
  const dir = persistDir ?? mkdtempSync(join(tmpdir(), 'edge-tracker-'));
  // `durableObjects` replaces bindings and `workers` adds Workers beside the
  // tracker (tests only: e.g. SWARMS bound to a class that always fails);
  // `build` is another build of the Worker (a bench's variant of build/);
  // `miniflare` adds options (a bench's Worker name and dev registry).
  const tracker = {
    modules: true,
    scriptPath: join(build, 'entry.mjs'),
    modulesRoot: build,
    modulesRules: [{ type: 'ESModule', include: ['**/*.js', '**/*.mjs'] }, { type: 'CompiledWasm', include: ['**/*.wasm'] }],
    compatibilityDate: compatibilityDate(),
    durableObjects: {
      SWARMS: { className: 'SwarmObject', useSQLite: true },
      SHARDS: { className: 'ShardObject', useSQLite: true },
      STATS: { className: 'StatsObject', useSQLite: true },
      GATEWAYS: { className: 'SocketGateway', useSQLite: true },
      ...durableObjects,
    },
    kvNamespaces: ['TRACKER_KV'],
    r2Buckets: ['TORRENT_FILES'],
    d1Databases: ['DB'],
    ...(assets ? { assets: assetsOptions() } : {}),
    // Off unless a test asks: most tests send far more from one address.
    ratelimits: ratelimits ?? {},
    bindings: { ...wranglerVars(), EXPOSE_COSTS: 'true', ADMIN_TOKEN, ...vars },
  };
  const mf = new Miniflare({
    ...(workers ? { workers: [{ name: 'tracker', ...tracker }, ...workers] } : tracker),
    durableObjectsPersist: join(dir, 'do'),
    kvPersist: join(dir, 'kv'),
    d1Persist: join(dir, 'd1'),
    r2Persist: join(dir, 'r2'),
    cf: false,
    // `logs` (an array) collects the runtime's stdout and stderr lines;
    // `onLog(line)` sees each line as it comes.
    ...(logs || onLog
      ? { handleRuntimeStdio: (stdout, stderr) => collectLines([stdout, stderr], logs ?? { push: (...lines) => lines.forEach(onLog) }) }
      : {}),
    host: '127.0.0.1',
    port: 0,
    ...miniflare,
  });
  const url = await mf.ready;
  await applyMigrations(await mf.getD1Database('DB'));
  return {
    mf,
    dir,
    base: url.href.replace(/\/$/, ''),
    async stop() {
      await mf.dispose();
    },
    async close() {
      await mf.dispose();
      if (ownDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

function collectLines(streams, into) {
  for (const stream of streams) {
    let rest = '';
    stream.on('data', (chunk) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop();
      into.push(...lines.filter(Boolean));
    });
  }
}

export const ADMIN_TOKEN = 'test-admin-token-0123456789';

/** Applies migrations/*.sql in order, once each (as `wrangler d1 migrations apply` does). */
async function applyMigrations(db) {
  await db.prepare('CREATE TABLE IF NOT EXISTS d1_migrations (name TEXT PRIMARY KEY)').run();
  const done = new Set((await db.prepare('SELECT name FROM d1_migrations').all()).results.map((r) => r.name));
  const dir = join(ROOT, 'migrations');
  for (const name of readdirSync(dir).filter((f) => f.endsWith('.sql')).sort()) {
    if (done.has(name)) continue;
    const sql = readFileSync(join(dir, name), 'utf8').replace(/--.*$/gm, '');
    const statements = sqlStatements(sql);
    await db.batch([...statements.map((x) => db.prepare(x)), db.prepare('INSERT INTO d1_migrations (name) VALUES (?)').bind(name)]);
  }
}

/** Splits a migration into statements; a trigger's body (BEGIN ... END;) stays whole. */
function sqlStatements(sql) {
  const out = [];
  let current = '';
  let inTrigger = false;
  for (const line of sql.split('\n')) {
    const t = line.trim();
    if (!t) continue;
    current += `${line}\n`;
    if (/^CREATE\s+TRIGGER\b/i.test(t)) inTrigger = true;
    if (inTrigger ? /^END;$/i.test(t) : t.endsWith(';')) {
      out.push(current.trim().replace(/;$/, ''));
      current = '';
      inTrigger = false;
    }
  }
  if (current.trim()) out.push(current.trim());
  return out;
}

/** Percent-encodes every byte, the way most clients send binary ids. */
export function escapeBytes(buf, { lower = false } = {}) {
  let s = '';
  for (const b of buf) {
    const h = b.toString(16).padStart(2, '0');
    s += '%' + (lower ? h : h.toUpperCase());
  }
  return s;
}

export const randomHash = () => randomBytes(20);
export const peerId = (tag) => Buffer.from(`-ET0001-${String(tag).padStart(12, '0')}`.slice(0, 20));

/**
 * Announces with the given fields; binary ids are escaped here. Returns the
 * decoded body with the HTTP status and the swarm's row counts.
 */
export async function announce(base, fields, { ip, path = '/announce' } = {}) {
  const { infoHash, peerId: id, ...rest } = fields;
  const parts = [];
  if (infoHash) parts.push(`info_hash=${escapeBytes(infoHash)}`);
  if (id) parts.push(`peer_id=${escapeBytes(id)}`);
  const defaults = { port: 6881, uploaded: 0, downloaded: 0, left: 100, compact: 1 };
  for (const [k, v] of Object.entries({ ...defaults, ...rest })) {
    if (v !== undefined && v !== null) parts.push(`${k}=${encodeURIComponent(v)}`);
  }
  return get(`${base}${path}?${parts.join('&')}`, { ip });
}

export async function scrape(base, hashes) {
  const q = hashes.map((h) => `info_hash=${escapeBytes(h)}`).join('&');
  return get(`${base}/scrape?${q}`);
}

export async function get(url, { ip, method = 'GET' } = {}) {
  const headers = ip ? { 'cf-connecting-ip': ip } : {};
  const res = await fetch(url, { method, headers });
  const raw = Buffer.from(await res.arrayBuffer());
  let body = null;
  try {
    body = bencode.decode(raw);
  } catch {
    body = null;
  }
  return {
    status: res.status,
    raw,
    body,
    rowsRead: Number(res.headers.get('x-rows-read') ?? NaN),
    rowsWritten: Number(res.headers.get('x-rows-written') ?? NaN),
    rowsReadTotal: Number(res.headers.get('x-rows-read-total') ?? NaN),
    rowsWrittenTotal: Number(res.headers.get('x-rows-written-total') ?? NaN),
    kvReads: Number(res.headers.get('x-kv-reads') ?? NaN),
    // How many announces the Worker's call to the swarm carried (entry.mjs `ask`).
    batch: Number(res.headers.get('x-swarm-batch') ?? NaN),
  };
}

export const text = (v) => (v === undefined ? undefined : Buffer.from(v).toString());
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Splits a compact peer string into "ip:port" strings (BEP 23 / BEP 7). */
export function compactPeers(buf, v6 = false) {
  const size = v6 ? 18 : 6;
  const out = [];
  buf = buf ? Buffer.from(buf) : buf;
  for (let i = 0; buf && i + size <= buf.length; i += size) {
    const ipBytes = buf.subarray(i, i + size - 2);
    const port = buf.readUInt16BE(i + size - 2);
    const ip = v6
      ? Array.from({ length: 8 }, (_, j) => ipBytes.readUInt16BE(j * 2).toString(16)).join(':')
      : Array.from(ipBytes).join('.');
    out.push(`${ip}:${port}`);
  }
  return out;
}

/** Scrape entry for one hash, or undefined. */
export function scrapeEntry(body, hash) {
  const files = body?.files;
  if (!files) return undefined;
  // bencode decodes a dict key as UTF-8 text, or as hex when it is not UTF-8.
  for (const [k, v] of Object.entries(files)) {
    if (k === hash.toString('hex') || Buffer.from(k, 'utf8').equals(hash)) return v;
  }
  return undefined;
}

/**
 * Waits until each of the `shards` shards of small swarms (SWARM_SHARDS)
 * has written its changes: they write behind, within FLUSH_DELAY.
 */
export async function shardsWritten(t, shards) {
  const ns = await t.mf.getDurableObjectNamespace('SHARDS');
  await eventually(async () => {
    for (let n = 0; n < shards; n++) {
      const res = await ns.get(ns.idFromName(`shard-${n.toString(16).padStart(4, '0')}`)).fetch('https://shard/status');
      if ((await res.json()).unwritten !== 0) return false;
    }
    return true;
  });
}

/** Polls `check` until it returns a truthy value or `ms` pass. */
export async function eventually(check, { ms = 15000, every = 100 } = {}) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    last = await check();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, every));
  }
}
