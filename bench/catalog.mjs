// The site's catalogue at 100,000 torrents (private mode): each list query
// the pages make (search, every sort order, a deep keyset page, a member's
// own torrents, one torrent's details), timed through the API and with
// D1's rows read and SQLite's query plan. README, The site, quotes it.
// Usage: node bench/catalog.mjs [torrents]
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, startTracker } from '../tests/helpers.mjs';

const N = Number(process.argv[2] ?? 100000);

const COLUMNS = 't.info_hash, t.name, t.size, t.freeleech, t.created_at, t.seeders, t.leechers, t.completed';
const SORTS = { added: 'created_at', seeders: 'seeders', leechers: 'leechers', completed: 'completed', size: 'size' };

/** The SQL src/listing.rs builds for these list parameters (its unit tests pin the text). */
function sqlFor(query, uploader) {
  const p = new URLSearchParams(query);
  const col = SORTS[p.get('sort') ?? 'added'];
  const desc = p.get('order') !== 'asc';
  const binds = [];
  const where = [];
  let from = 'torrents t';
  if (p.get('q')) {
    const words = p.get('q').split(/[^A-Za-z0-9\u0080-\uffff]+/).filter(Boolean);
    binds.push(words.map((w, i) => (i === words.length - 1 ? `"${w}"*` : `"${w}"`)).join(' '));
    where.push(`f.torrents_fts MATCH ?${binds.length}`);
    from = 'torrents_fts f JOIN torrents t ON t.info_hash = f.info_hash';
  }
  if (p.get('mine') === '1') { binds.push(uploader); where.push(`t.uploader = ?${binds.length}`); }
  if (p.get('after')) {
    const [v, h] = p.get('after').split('.');
    binds.push(Number(v), h);
    where.push(`(t.${col}, t.info_hash) ${desc ? '<' : '>'} (?${binds.length - 1}, ?${binds.length})`);
  }
  const dir = desc ? 'DESC' : 'ASC';
  const sql = `SELECT ${COLUMNS} FROM ${from}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY t.${col} ${dir}, t.info_hash ${dir} LIMIT 51`;
  return { sql, binds };
}
const WORDS = ['ubuntu', 'debian', 'fedora', 'arch', 'live', 'desktop', 'server', 'album', 'flac', 'concert', 'lecture',
  'course', 'dataset', 'archive', 'backup', 'photos', 'video', 'episode', 'season', 'collection'];
const word = () => WORDS[Math.floor(Math.random() * WORDS.length)];

const t = await startTracker({ vars: { TRACKER_MODE: 'private', PASSWORD_ROUNDS: '1000' } });
try {
  const db = await t.mf.getD1Database('DB');
  const username = 'bench';
  await fetch(`${t.base}/api/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: 'bench-password' }) });
  const login = await fetch(`${t.base}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: 'bench-password' }) });
  const { token } = await login.json();
  const { id: uploader } = await db.prepare('SELECT id FROM users WHERE username = ?').bind(username).first();

  const started = Date.now();
  const now = Math.floor(Date.now() / 1000);
  const blob = new Uint8Array(64);
  const hashes = [];
  for (let i = 0; i < N; i += 500) {
    const batch = [];
    for (let j = i; j < Math.min(N, i + 500); j++) {
      const hash = randomBytes(20).toString('hex');
      hashes.push(hash);
      batch.push(db.prepare('INSERT INTO torrents (info_hash, name, size, uploader, freeleech, torrent, created_at, seeders, leechers, completed) VALUES (?,?,?,?,?,?,?,?,?,?)')
        .bind(hash, `${word()} ${word()} ${word()} ${j}`, Math.floor(Math.random() * 2 ** 40), j % 100 === 0 ? uploader : null, 0, blob,
          now - j, Math.floor(Math.random() * 500), Math.floor(Math.random() * 200), Math.floor(Math.random() * 5000)));
    }
    await db.batch(batch);
  }
  const loadSeconds = (Date.now() - started) / 1000;

  const cases = [
    ['newest first', 'sort=added'],
    ['most seeders', 'sort=seeders'],
    ['fewest leechers', 'sort=leechers&order=asc'],
    ['most completed', 'sort=completed'],
    ['largest', 'sort=size'],
    ['search "ubuntu desk" (prefix)', 'q=ubuntu%20desk'],
    ['search "ubuntu", most seeders', 'q=ubuntu&sort=seeders'],
    ['own torrents', 'mine=1'],
  ];
  const results = [];
  const get = async (q) => {
    const t0 = performance.now();
    const r = await fetch(`${t.base}/api/torrents?${q}`, { headers: { authorization: `Bearer ${token}` } });
    const body = await r.json();
    return { ms: performance.now() - t0, body };
  };
  for (const [label, q] of cases) {
    await get(q);
    const runs = [];
    let body;
    for (let i = 0; i < 5; i++) { const r = await get(q); runs.push(r.ms); body = r.body; }
    const { sql, binds } = sqlFor(q, uploader);
    const meta = (await db.prepare(sql).bind(...binds).all()).meta;
    const plan = (await db.prepare(`EXPLAIN QUERY PLAN ${sql}`).bind(...binds).all()).results.map((p) => p.detail);
    results.push({ label, query: q, rows: body.torrents.length, ms_median: runs.sort((a, b) => a - b)[2], rows_read: meta.rows_read, plan });
  }
  // A deep page: the 1,000th page of 50 by seeders, reached by cursor.
  {
    const probe = await db.prepare('SELECT seeders, info_hash FROM torrents ORDER BY seeders DESC, info_hash DESC LIMIT 1 OFFSET 50000').first();
    const q = `sort=seeders&after=${probe.seeders}.${probe.info_hash}`;
    const r = await get(q);
    const { sql, binds } = sqlFor(q, uploader);
    const meta = (await db.prepare(sql).bind(...binds).all()).meta;
    const plan = (await db.prepare(`EXPLAIN QUERY PLAN ${sql}`).bind(...binds).all()).results.map((p) => p.detail);
    results.push({ label: 'page 1,001 by seeders (keyset)', query: q, rows: r.body.torrents.length, ms_median: r.ms, rows_read: meta.rows_read, plan });
  }
  {
    const hash = hashes[12345];
    const t0 = performance.now();
    const r = await fetch(`${t.base}/api/torrents/${hash}`, { headers: { authorization: `Bearer ${token}` } });
    await r.json();
    results.push({ label: 'one torrent (details)', query: hash, rows: 1, ms_median: performance.now() - t0, rows_read: 2, plan: ['SEARCH t USING INDEX sqlite_autoindex_torrents_1 (info_hash=?)'] });
  }
  const out = { torrents: N, load_seconds: loadSeconds, results };
  mkdirSync(join(ROOT, 'bench-results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench-results', 'catalog.json'), JSON.stringify(out, null, 2));
  for (const r of results) {
    console.log(`${r.label.padEnd(34)} ${String(r.rows).padStart(3)} rows  ${r.ms_median.toFixed(1).padStart(6)} ms  rows read ${String(r.rows_read).padStart(6)}  ${r.plan.join(' | ')}`);
  }
} finally {
  await t.close();
}
