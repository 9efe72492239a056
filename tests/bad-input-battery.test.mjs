// The bad-input battery: hundreds of malformed, oversized and adversarial
// requests over real HTTP against the built Worker, in public and private
// mode. Every answer must be a clear error (a bencoded `failure reason` from
// the tracker endpoints, a JSON error with a 4xx status from the API),
// never a 5xx, a hang or a panic; and the tracker's state (D1 rows, KV
// entries, swarm objects, what the API and a real peer see) is unchanged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { startTracker, ADMIN_TOKEN, announce, scrape, escapeBytes, peerId, compactPeers, eventually, text } from './helpers.mjs';
import { makeTorrentFromData } from './torrent.mjs';
import { send, runBattery } from './battery/http.mjs';
import { NASTY, announceFields, query, announceMutations, scrapeMutations, PATH_TRICKS } from './battery/cases.mjs';

const enc = encodeURIComponent;
const PANIC = /panicked|Rust panic|RuntimeError|unreachable executed|Module terminated/i;

// ---- state ------------------------------------------------------------------

async function dumpKv(t) {
  const kv = await t.mf.getKVNamespace('TRACKER_KV');
  const out = {};
  let cursor;
  do {
    const page = await kv.list({ cursor });
    for (const k of page.keys) out[k.name] = { value: await kv.get(k.name), metadata: k.metadata ?? null };
    cursor = page.list_complete ? undefined : page.cursor;
  } while (cursor);
  return out;
}

/** The swarm objects that exist (one SQLite file each). */
function swarmObjects(t) {
  const root = join(t.dir, 'do');
  const walk = (d) => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)]));
  try {
    return walk(root).filter((f) => f.endsWith('.sqlite')).map((f) => relative(root, f)).sort();
  } catch {
    return [];
  }
}

async function d1Rows(t) {
  const db = await t.mf.getD1Database('DB');
  const rows = async (sql) => (await db.prepare(sql).all()).results;
  const sha = (s) => createHash('sha256').update(String(s)).digest('hex');
  return {
    users: await rows('SELECT * FROM users ORDER BY id'),
    tokens: await rows('SELECT * FROM tokens ORDER BY token_hash'),
    invites: await rows('SELECT * FROM invites ORDER BY code'),
    torrents: (await rows('SELECT info_hash, v2_hash, name, size, uploader, freeleech, created_at, hex(torrent) AS t FROM torrents ORDER BY info_hash'))
      .map((r) => ({ ...r, t: sha(r.t) })),
    credit_batches: await rows('SELECT * FROM credit_batches ORDER BY id'),
  };
}

// ---- API helpers ------------------------------------------------------------

async function api(base, method, path, { token, json } = {}) {
  const headers = { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(json !== undefined ? { 'content-type': 'application/json' } : {}) };
  const r = await send(base, { method, target: `/api${path}`, headers, body: json !== undefined ? JSON.stringify(json) : undefined });
  let data = null;
  try { data = JSON.parse(r.raw.toString()); } catch {}
  return { status: r.status, data, raw: r.raw };
}

/** An API case: `body` a string/Buffer sent as is, `json` a value sent as JSON. */
function apiCase(name, method, path, { token, json, body, type, headers = {}, status, reason } = {}) {
  const h = { ...headers };
  if (token !== undefined) h.authorization = `Bearer ${token}`;
  if (json !== undefined) h['content-type'] = 'application/json';
  if (type !== undefined) h['content-type'] = type;
  return { name, method, target: `/api${path}`, headers: h, body: json !== undefined ? JSON.stringify(json) : body, expect: 'api', status, reason };
}

const ok = (r, status = 200) => assert.equal(r.status, status, `${r.status} ${r.raw?.toString().slice(0, 200)}`);

// ---- cases shared by both modes -----------------------------------------------

function trackerCases(prefix, fields, mutations) {
  return mutations.map((m) => ({ name: `${prefix}${m.name}`, target: `${m.path ?? '/announce'}?${m.q}`, expect: 'tracker', reason: m.reason }));
}

function methodCases(targets) {
  const cases = [];
  for (const target of targets) {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'PROPFIND', 'FOO']) {
      cases.push({ name: `${method} ${target.slice(0, 40)}`, method, target, expect: 'tracker', status: 405, reason: /method not allowed/, unknownMethod: method === 'FOO' });
    }
    for (const type of ['application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json', 'application/x-bittorrent', 'text/plain']) {
      const body = type.startsWith('multipart') ? '--x\r\nContent-Disposition: form-data; name="port"\r\n\r\n6881\r\n--x--\r\n' : target.split('?')[1] ?? '';
      cases.push({ name: `POST ${type} to ${target.slice(0, 30)}`, method: 'POST', target, headers: { 'content-type': type }, body, expect: 'tracker', status: 405 });
    }
    cases.push({ name: `HEAD ${target.slice(0, 30)}`, method: 'HEAD', target: `${target}&port=0`, expect: 'edge' });
    cases.push({ name: `TRACE ${target.slice(0, 30)}`, method: 'TRACE', target, expect: 'edge' });
  }
  return cases;
}

function headerCases(target) {
  const variants = {
    'cf-connecting-ip: not-an-ip': { 'cf-connecting-ip': 'not-an-ip' },
    'cf-connecting-ip: 999.1.1.1': { 'cf-connecting-ip': '999.1.1.1' },
    'cf-connecting-ip: a list': { 'cf-connecting-ip': '1.2.3.4, 5.6.7.8' },
    'cf-connecting-ip: 8 KB': { 'cf-connecting-ip': '1'.repeat(8000) },
    'cf-connecting-ip: empty': { 'cf-connecting-ip': '' },
    'cf-connecting-ip: mapped v6': { 'cf-connecting-ip': '::ffff:10.0.0.1' },
    'x-forwarded-for: spoofed': { 'x-forwarded-for': '127.0.0.1' },
    'host: evil': { host: 'evil.example' },
    'host: 8 KB': { host: 'h'.repeat(8000) },
    'content-length on GET': { 'content-length': '5' },
    'accept-encoding: everything': { 'accept-encoding': 'gzip, br, zstd, deflate, *' },
    'range': { range: 'bytes=0-1' },
    'cookie: 6 KB': { cookie: `a=${'c'.repeat(6000)}` },
    'authorization: garbage': { authorization: 'Bearer \' OR 1=1 --' },
    'user-agent: 8 KB': { 'user-agent': 'u'.repeat(8000) },
    '100 headers': Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`x-h${i}`, 'v'])),
  };
  return Object.entries(variants).map(([name, headers]) => ({
    name: `header ${name}`, target, headers, body: headers['content-length'] ? 'hello' : undefined, expect: 'edge',
  }));
}

/** Bytes no HTTP client library sends: the runtime's parser or the Worker must refuse them. */
function rawCases(validQuery) {
  const q = validQuery.replace(/&port=\d+/, '');
  const req = (line, headers = 'Host: localhost\r\n') => Buffer.from(`${line}\r\n${headers}Connection: close\r\n\r\n`, 'latin1');
  return [
    ['raw NUL in the query', req(`GET /announce?${q}&key=a\u0000b HTTP/1.1`)],
    ['raw space in the query', req(`GET /announce?${q}&key=a b HTTP/1.1`)],
    ['raw high bytes in the query', req(`GET /announce?${q}&key=\u0080\u00ff\u00fe HTTP/1.1`)],
    ['raw tab in the path', req(`GET /announce\t?${q} HTTP/1.1`)],
    ['fragment hiding the port', req(`GET /announce?${q}#&port=6881 HTTP/1.1`)],
    ['absolute-form target', req(`GET http://evil.example/announce?${q} HTTP/1.1`), { runtime500: true }],
    ['asterisk-form target', req('OPTIONS * HTTP/1.1'), { runtime500: true }],
    ['HTTP/1.0 without Host', req(`GET /announce?${q} HTTP/1.0`, '')],
    ['HTTP/0.9 request line', Buffer.from(`GET /announce?${q}\r\n\r\n`)],
    ['HTTP/3.7', req(`GET /announce?${q} HTTP/3.7`)],
    ['lower-case method', req(`get /announce?${q} HTTP/1.1`), { unknownMethod: true }],
    ['LF-only line ends', Buffer.from(`GET /announce?${q} HTTP/1.1\nHost: localhost\nConnection: close\n\n`)],
    ['two Host headers', req(`GET /announce?${q} HTTP/1.1`, 'Host: a\r\nHost: b\r\n'), { runtime500: true }],
    ['obs-fold header', req(`GET /announce?${q} HTTP/1.1`, 'Host: localhost\r\nX-A: 1\r\n  folded\r\n')],
    ['NUL in a header value', req(`GET /announce?${q} HTTP/1.1`, 'Host: localhost\r\nX-A: a\u0000b\r\n')],
    ['a 100 KB header', req(`GET /announce?${q} HTTP/1.1`, `Host: localhost\r\nX-Big: ${'b'.repeat(100000)}\r\n`)],
    ['a 200 KB request line', req(`GET /announce?${q}&pad=${'p'.repeat(200000)} HTTP/1.1`)],
    ['content-length and chunked together', Buffer.from(`POST /announce?${q} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\nGET /announce?${q} HTTP/1.1\r\nHost: localhost\r\n\r\n`)],
    ['bad chunk size', Buffer.from(`POST /announce?${q} HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`)],
    ['negative content-length', Buffer.from(`POST /announce?${q} HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\nConnection: close\r\n\r\n`), { runtime500: true }],
    ['garbage request line', Buffer.from('\u0016\u0003\u0001\u0000\u00a5\u0001\u0000\u0000\u00a1\u0003\u0003', 'latin1'), { mayClose: true }],
  ].map(([name, raw, flags]) => ({ name, raw, expect: 'edge', ...flags }));
}

function assertNoPanic(logs) {
  const bad = logs.join('').split('\n').filter((l) => PANIC.test(l));
  assert.deepEqual(bad, [], 'the runtime log shows a panic');
}

// ---- public mode --------------------------------------------------------------

test('public mode: hundreds of bad requests, each a clear error, state unchanged', async () => {
  const logs = [];
  const t = await startTracker({ vars: { PUBLISH_WINDOW: '1', SCRAPE_CACHE: '0' }, logs });
  try {
    const H0 = randomBytes(20);
    const real = peerId('battery-real');
    const seed = peerId('battery-seed');
    ok(await announce(t.base, { infoHash: H0, peerId: real, event: 'started', left: 10 }, { ip: '10.1.0.1' }));
    ok(await announce(t.base, { infoHash: H0, peerId: seed, event: 'started', left: 0 }, { ip: '10.1.0.2' }));
    const kv = await t.mf.getKVNamespace('TRACKER_KV');
    // A scrape puts the counters in KV's cache (read-through).
    await scrape(t.base, [H0]);
    await eventually(async () => (await kv.get(`scrape:${H0.toString('hex')}`)) === '1 1 0');
    const before = { kv: await dumpKv(t), swarms: swarmObjects(t) };
    assert.ok(before.swarms.length > 0);

    const fields = announceFields(H0, peerId('battery-evil'));
    const valid = query(fields);
    const invalid = query(fields, { port: null });
    const cases = [
      ...trackerCases('announce: ', fields, announceMutations(fields)),
      ...trackerCases('announce.php: ', fields, announceMutations(fields).filter((_, i) => i % 7 === 0).map((m) => ({ ...m, path: '/announce.php' }))),
      ...trackerCases('scrape: ', fields, scrapeMutations(H0).map((m) => ({ ...m, path: '/scrape' }))),
      ...PATH_TRICKS.map((p) => ({ name: `path ${p.slice(0, 40)}`, target: `${p}?${invalid}`, expect: p.length > 1000 ? 'edge' : 'error' })),
      ...['x', '%00', '..', enc(NASTY[0]), 'k'.repeat(3000)].map((k) => ({ name: `/announce/${k.slice(0, 20)} with a bad query`, target: `/announce/${k}?${invalid}`, expect: 'tracker', reason: /'port'|not found/ })),
      { name: 'unknown path is a bencoded 404', target: `/announce2?${valid}`, expect: 'tracker', status: 404, reason: /not found/ },
      ...methodCases([`/announce?${valid}`, `/scrape?info_hash=${escapeBytes(H0)}`, `/announce.php?${valid}`]),
      ...headerCases(`/announce?${invalid}`),
      ...rawCases(valid),
      apiCase('public mode has no API (POST /api/users)', 'POST', '/users', { json: { username: 'mallory', password: 'password123' }, status: 404 }),
      apiCase('public mode has no API (GET /api/admin/users)', 'GET', '/admin/users', { token: ADMIN_TOKEN, status: 404 }),
      apiCase('public mode has no API (GET /api/)', 'GET', '/', { status: 404 }),
    ];
    const problems = await runBattery(t.base, cases);
    assert.deepEqual(problems, [], `${problems.length} of ${cases.length} cases failed:\n${problems.join('\n')}`);
    assert.ok(cases.length >= 400, `${cases.length} cases`);

    // Nothing changed: no new swarm, the same KV entries, and a real peer sees the same swarm.
    assert.deepEqual({ kv: await dumpKv(t), swarms: swarmObjects(t) }, before);
    const probe = await announce(t.base, { infoHash: H0, peerId: real, left: 10, event: 'started' }, { ip: '10.1.0.1' });
    assert.equal(probe.body.complete, 1);
    assert.equal(probe.body.incomplete, 1);
    assert.deepEqual(compactPeers(probe.body.peers), ['10.1.0.2:6881']);
    assertNoPanic(logs);
    console.log(`public battery: ${cases.length} cases`);
  } finally {
    await t.close();
  }
});

// ---- private mode ---------------------------------------------------------------

const PRIVATE_VARS = {
  TRACKER_MODE: 'private',
  // The battery compares KV before and after: every swarm publishes (no read-through cache).
  SCRAPE_CACHE: '0',
  INVITE_ONLY: 'true',
  PASSWORD_ROUNDS: '1000',
  PUBLISH_WINDOW: '1',
  CREDIT_FLUSH: '1',
  MIN_RATIO: '0.5',
  RATIO_ALLOWANCE: '1000000',
};

/** Registers through an invite and logs in. */
async function account(base, username) {
  const invite = (await api(base, 'POST', '/admin/invites', { token: ADMIN_TOKEN })).data.invite;
  const password = `pw-${username}-secret`;
  const reg = await api(base, 'POST', '/users', { json: { username, password, invite } });
  ok(reg, 201);
  const login = await api(base, 'POST', '/login', { json: { username, password } });
  ok(login);
  return { username, password, passkey: reg.data.passkey, token: login.data.token };
}

async function privateViews(t, users) {
  const base = t.base;
  const me = {};
  for (const u of users) me[u.username] = (await api(base, 'GET', '/me', { token: u.token })).data;
  return {
    d1: await d1Rows(t),
    kv: await dumpKv(t),
    swarms: swarmObjects(t),
    adminUsers: (await api(base, 'GET', '/admin/users', { token: ADMIN_TOKEN })).data,
    clientBans: (await api(base, 'GET', '/admin/client-bans', { token: ADMIN_TOKEN })).data,
    torrents: (await api(base, 'GET', '/torrents', { token: users[0].token })).data,
    me,
  };
}

/** Bencoded .torrent files that must be refused. */
function badTorrents(good) {
  const info = 'd6:lengthi10e4:name1:a12:piece lengthi16e6:pieces20:aaaaaaaaaaaaaaaaaaaa7:privatei1ee';
  const wrap = (i) => `d8:announce9:http://x/4:info${i}e`;
  const deep = (open, n, close) => Buffer.from(`d4:info${open.repeat(n)}${close.repeat(n)}e`);
  return [
    ['empty body', ''],
    ['one byte', 'd'],
    ['not bencode', '<html>'],
    ['JSON', '{"info":{}}'],
    ['info is an integer', 'd4:infoi1ee'],
    ['string length past the end', wrap(info).replace('1:a', '5:a')],
    ['string length with a leading zero', wrap(info).replace('1:a', '01:a')],
    ['negative string length', wrap(info).replace('1:a', '-1:a')],
    ['string length 4294967296', `d4:info4294967296:x`],
    ['string length of 11 digits', `d4:info99999999999:xe`],
    ['integer with a leading zero', wrap(info).replace('i10e', 'i010e')],
    ['negative zero', wrap(info).replace('i10e', 'i-0e')],
    ['empty integer', wrap(info).replace('i10e', 'ie')],
    ['fractional integer', wrap(info).replace('i10e', 'i1.5e')],
    ['integer past i64', wrap(info).replace('i10e', `i${'9'.repeat(30)}e`)],
    ['unterminated integer', `d4:infoi${'1'.repeat(100)}`],
    ['duplicate keys', wrap(info.replace('4:name1:a', '4:name1:a4:name1:b'))],
    ['unsorted keys', wrap('d4:name1:a6:lengthi10e12:piece lengthi16e6:pieces20:aaaaaaaaaaaaaaaaaaaa7:privatei1ee')],
    ['unsorted top-level keys', `d4:info${info}8:announce9:http://x/e`],
    ['trailing data', `${wrap(info)}junk`],
    ['two top-level values', `${wrap(info)}${wrap(info)}`],
    ['truncated', wrap(info).slice(0, 40)],
    ['missing info', 'd8:announce9:http://x/e'],
    ['top-level list', `l${info}e`],
    ['missing name', wrap(info.replace('4:name1:a', ''))],
    ['empty name', wrap(info.replace('4:name1:a', '4:name0:'))],
    ['name is a list', wrap(info.replace('4:name1:a', '4:namel1:ae'))],
    ['piece length 0', wrap(info.replace('i16e', 'i0e'))],
    ['negative piece length', wrap(info.replace('i16e', 'i-16e'))],
    ['pieces of 19 bytes', wrap(info.replace('20:aaaaaaaaaaaaaaaaaaaa', '19:aaaaaaaaaaaaaaaaaaa'))],
    ['pieces is an integer', wrap(info.replace('20:aaaaaaaaaaaaaaaaaaaa', 'i1e'))],
    ['negative length', wrap(info.replace('i10e', 'i-10e'))],
    ['length and files', wrap(info.replace('6:lengthi10e', '5:filesld6:lengthi1e4:pathl1:xeee6:lengthi10e'))],
    ['empty files', wrap(info.replace('6:lengthi10e', '5:filesle'))],
    ['file without a path', wrap(info.replace('6:lengthi10e', '5:filesld6:lengthi1eee'))],
    ['file with an empty path', wrap(info.replace('6:lengthi10e', '5:filesld6:lengthi1e4:pathleee'))],
    ['v2 without a file tree', wrap('d12:meta versioni2e4:name1:a12:piece lengthi16e7:privatei1ee')],
    ['not private', wrap(info.replace('7:privatei1e', ''))],
    ['private = 0', wrap(info.replace('7:privatei1e', '7:privatei0e'))],
    ...NASTY.slice(0, 8).map((n, i) => [`non-private torrent named ${JSON.stringify(n)} #${i}`, wrap(info.replace('4:name1:a', `4:name${Buffer.byteLength(n)}:${n}`).replace('7:privatei1e', ''))]),
    ['100,000 nested lists', deep('l', 100000, 'e')],
    ['100,000 nested dicts', deep('d1:a', 100000, 'e')],
    ['65 nested lists in info', wrap(info.replace('4:name1:a', `4:name1:a5:zzzzz${'l'.repeat(65)}${'e'.repeat(65)}`))],
    ['4 MiB of empty lists', Buffer.concat([Buffer.from('d4:infol'), Buffer.alloc(4 * 1024 * 1024 - 12, 'le'), Buffer.from('ee')])],
    ['a 3 MB name (over a D1 row)', wrap(info.replace('4:name1:a', `4:name${3 * 1024 * 1024}:${'n'.repeat(3 * 1024 * 1024)}`))],
    ['a 1025-byte name', wrap(info.replace('4:name1:a', `4:name1025:${'n'.repeat(1025)}`))],
    ['10 MiB of empty lists', Buffer.concat([Buffer.from('d4:infol'), Buffer.alloc(10 * 1024 * 1024 - 12, 'le'), Buffer.from('ee')])],
    ['1 M one-byte strings', Buffer.concat([Buffer.from('d4:infol'), Buffer.alloc(3 * 1024 * 1024, '1:x'), Buffer.from('ee')])],
    ['the good torrent, then 1 byte', Buffer.concat([good, Buffer.from('e')])],
    ['the good torrent, cut short', good.subarray(0, good.length - 1)],
  ].map(([name, body]) => [name, Buffer.isBuffer(body) ? body : Buffer.from(body, 'latin1')]);
}

test('private mode: hundreds of bad requests and API calls, each a clear error, state unchanged', async () => {
  const logs = [];
  const t = await startTracker({ vars: PRIVATE_VARS, logs });
  try {
    const { base } = t;
    // Accounts: alice uploads, bob leeches, carol is under the ratio, mallory is banned.
    const alice = await account(base, 'alice');
    const bob = await account(base, 'bob');
    const carol = await account(base, 'carol');
    const mallory = await account(base, 'mallory');
    const data = randomBytes(64 * 1024);
    const made = makeTorrentFromData('battery.bin', data, 'http://x/announce', { private: true });
    const T = made.infoHash;
    const up = await send(base, { method: 'POST', target: '/api/torrents', headers: { authorization: `Bearer ${alice.token}` }, body: made.torrent });
    ok(up, 201);
    ok(await api(base, 'POST', '/admin/users/mallory/ban', { token: ADMIN_TOKEN }));
    ok(await api(base, 'POST', '/admin/users/carol/adjust', { token: ADMIN_TOKEN, json: { downloaded: 2000000, uploaded: 200000 } }));
    ok(await api(base, 'POST', '/admin/client-bans', { token: ADMIN_TOKEN, json: { prefix: '-EV6666-' } }));
    const revoked = carol.passkey;
    const reset = await api(base, 'POST', '/me/passkey', { token: carol.token });
    ok(reset);
    carol.passkey = reset.data.passkey;
    const spare = (await api(base, 'POST', '/admin/invites', { token: ADMIN_TOKEN })).data.invite;
    // The swarm: alice and carol seed, bob leeches; every passkey and the torrent are in KV.
    const ann = (who, id, fields, ip) => announce(base, { infoHash: T, peerId: peerId(id), ...fields }, { path: `/announce/${who.passkey}`, ip });
    const none = (r) => assert.equal(r.body?.['failure reason'], undefined, text(r.body?.['failure reason']));
    none(await ann(alice, 'alice-seed', { left: 0, event: 'started' }, '10.2.0.1'));
    none(await ann(carol, 'carol-seed', { left: 0, event: 'started' }, '10.2.0.3'));
    none(await ann(bob, 'bob-leech', { left: data.length, event: 'started' }, '10.2.0.2'));
    // A member's scrape puts the counters in KV's cache (read-through).
    await fetch(`${base}/scrape/${alice.passkey}?info_hash=${escapeBytes(T)}`);
    await eventually(async () => (await (await t.mf.getKVNamespace('TRACKER_KV')).get(`scrape:${T.toString('hex')}`)) === '2 1 0');
    const users = [alice, bob, carol];
    const before = await privateViews(t, users);
    assert.equal(before.d1.users.length, 4);
    assert.equal(before.d1.torrents.length, 1);

    const fields = announceFields(T, peerId('battery-evil'));
    const valid = query(fields);
    const B = `/announce/${bob.passkey}`;
    const passkeys = [
      ['empty', ''], ['31 hex', '0'.repeat(31)], ['33 hex', '0'.repeat(33)], ['unknown 32 hex', 'f'.repeat(32)],
      ['upper-case', bob.passkey.toUpperCase()], ['32 non-hex', 'g'.repeat(32)], ['32 NUL', '%00'.repeat(32)],
      ['valid + %00', `${bob.passkey}%00`], ['valid + .', `${bob.passkey}.`], ['valid, one short, + %', `${bob.passkey.slice(0, 31)}%`],
      ['10,000 characters', 'k'.repeat(10000)], ['revoked', revoked], ['%-encoded valid', escapeBytes(Buffer.from(bob.passkey))],
      ...NASTY.map((n, i) => [`nasty #${i}`, enc(n)]),
    ];
    const badPasskey = /passkey/;
    const cases = [
      ...trackerCases('private announce: ', fields, announceMutations(fields).map((m) => ({ ...m, path: B }))),
      ...passkeys.map(([name, pk]) => ({ name: `passkey in path: ${name}`, target: `/announce/${pk}?${valid}`, expect: 'tracker', reason: badPasskey })),
      ...passkeys.filter(([name]) => name !== '%-encoded valid').map(([name, pk]) => ({ name: `passkey in query: ${name}`, target: `/announce?passkey=${pk}&${valid}`, expect: 'tracker', reason: badPasskey })),
      ...passkeys.slice(0, 12).map(([name, pk]) => ({ name: `scrape passkey: ${name}`, target: `/scrape/${pk}?info_hash=${escapeBytes(T)}`, expect: 'tracker', reason: badPasskey })),
      { name: 'no passkey', target: `/announce?${valid}`, expect: 'tracker', reason: /missing passkey/ },
      { name: 'banned user', target: `/announce/${mallory.passkey}?${valid}`, expect: 'tracker', reason: /banned/ },
      { name: 'two passkeys in the query', target: `/announce?passkey=${bob.passkey}&passkey=${alice.passkey}&${valid}`, expect: 'tracker', reason: /passkey/ },
      { name: 'path and query passkeys differ', target: `${B}?passkey=${alice.passkey}&${valid}`, expect: 'tracker', reason: /passkey/ },
      { name: 'passkey then a segment', target: `${B}/x?${valid}`, expect: 'tracker', status: 404 },
      { name: 'banned client', target: `${B}?${query(fields, { peer_id: escapeBytes(Buffer.from('-EV6666-abcdefghijkl')) })}`, expect: 'tracker', reason: /client is banned/ },
      { name: 'under the ratio, leeching', target: `/announce/${carol.passkey}?${query(fields, { peer_id: escapeBytes(peerId('carol-leech')) })}&event=started`, expect: 'tracker', reason: /ratio/ },
      ...Array.from({ length: 10 }, (_, i) => ({ name: `unregistered torrent #${i}`, target: `${B}?${query(announceFields(randomBytes(20), peerId('battery-evil')))}`, expect: 'tracker', reason: /not registered/ })),
      ...trackerCases('private scrape: ', fields, scrapeMutations(T).map((m) => ({ ...m, path: `/scrape/${bob.passkey}` }))),
      ...methodCases([`${B}?${valid}`, `/scrape/${bob.passkey}?info_hash=${escapeBytes(T)}`]),
      ...apiCases({ alice, bob, mallory, T, spare, good: made.torrent }),
    ];
    const secrets = [ADMIN_TOKEN, alice.passkey, bob.passkey, carol.passkey, alice.token, bob.token, carol.token, 'pw-alice-secret'];
    const problems = await runBattery(base, cases, { secrets });
    assert.deepEqual(problems, [], `${problems.length} of ${cases.length} cases failed:\n${problems.join('\n')}`);
    assert.ok(cases.length >= 500, `${cases.length} cases`);

    assert.deepEqual(await privateViews(t, users), before);
    const probe = await ann(bob, 'bob-leech', { left: data.length, event: 'started' }, '10.2.0.2');
    assert.equal(probe.body.complete, 2);
    assert.equal(probe.body.incomplete, 1);
    assert.deepEqual(compactPeers(probe.body.peers).sort(), ['10.2.0.1:6881', '10.2.0.3:6881']);
    assertNoPanic(logs);
    console.log(`private battery: ${cases.length} cases`);

    // SQL metacharacters where they are legitimate are stored and matched literally.
    const sqlish = `' OR 1=1 --"; DROP TABLE users; --\u0000 ünïcødé 💣`;
    ok(await api(base, 'POST', '/users', { json: { username: 'o_reilly', password: sqlish, invite: spare } }), 201);
    ok(await api(base, 'POST', '/login', { json: { username: 'o_reilly', password: sqlish } }));
    assert.equal((await api(base, 'POST', '/login', { json: { username: 'o_reilly', password: "' OR '1'='1" } })).status, 401);
    const named = makeTorrentFromData(`'; DROP TABLE torrents; --\u0000 💣`, data, 'http://x/announce', { private: true });
    ok(await send(base, { method: 'POST', target: '/api/torrents', headers: { authorization: `Bearer ${alice.token}` }, body: named.torrent }), 201);
    const list = (await api(base, 'GET', '/torrents', { token: alice.token })).data.torrents;
    assert.deepEqual(list.map((x) => x.name).sort(), ['battery.bin', `'; DROP TABLE torrents; --\u0000 💣`].sort());
    ok(await api(base, 'POST', '/admin/client-bans', { token: ADMIN_TOKEN, json: { prefix: "' OR 1=1 --" } }));
    assert.deepEqual((await api(base, 'GET', '/admin/client-bans', { token: ADMIN_TOKEN })).data.prefixes, ['-EV6666-', "' OR 1=1 --"]);
    assert.equal((await api(base, 'GET', '/admin/users', { token: ADMIN_TOKEN })).data.users.length, 5);
    assertNoPanic(logs);
  } finally {
    await t.close();
  }
});

const MALFORMED_JSON = [
  ['empty', ''], ['{', '{'], ['}', '}'], ['[]', '[]'], ['null', 'null'], ['0', '0'], ['a string', '"x"'], ['true', 'true'],
  ['missing value', '{"username":}'], ['trailing garbage', '{} x'], ['BOM', '\ufeff{}'], ['single quotes', "{'a':1}"],
  ['NaN', '{"a":NaN}'], ['trailing comma', '{"a":1,}'], ['10,000 nested arrays', '['.repeat(10000)],
  ['3,000 nested objects', '{"a":'.repeat(3000)], ['truncated', '{"username":"alice","password":"pw-alice-s'],
  ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d])],
  ['UTF-16', Buffer.from('{"username":"alice"}', 'utf16le')], ['raw NUL', '\u0000'], ['lone surrogate', '{"a":"\\ud800"}'],
  ['an array of values', '["newbie","long-password"]'], ['16 KiB + 1', `{"a":"${'x'.repeat(16 * 1024)}"}`],
];

/** The JSON API: every endpoint with bad bodies, bad types, bad auth, nasty values. */
function apiCases({ alice, bob, T, spare, good }) {
  const cases = [];
  const add = (...a) => cases.push(apiCase(...a));
  const hexT = T.toString('hex');
  const newbie = { username: 'newbie', password: 'long-password', invite: spare };

  const jsonEndpoints = [
    ['POST', '/users', undefined], ['POST', '/login', undefined], ['POST', '/admin/users/bob/adjust', ADMIN_TOKEN],
    ['POST', `/admin/torrents/${hexT}/freeleech`, ADMIN_TOKEN], ['POST', '/admin/client-bans', ADMIN_TOKEN], ['DELETE', '/admin/client-bans', ADMIN_TOKEN],
    ['POST', '/me/password', alice.token],
  ];
  for (const [method, path, token] of jsonEndpoints) {
    for (const [name, body] of MALFORMED_JSON) {
      add(`${method} ${path}: ${name}`, method, path, { token, body, type: 'application/json', status: name.startsWith('16 KiB') ? 413 : 400 });
    }
    for (const type of [undefined, 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx', 'text/json']) {
      const body = JSON.stringify(path === '/users' ? newbie : path === '/login' ? { username: 'alice', password: alice.password } : { uploaded: 1, freeleech: true, prefix: '-ZZ0001-' });
      add(`${method} ${path}: JSON as ${type ?? 'no content type'}`, method, path, { token, body, type, status: 400, reason: /content-type/ });
    }
  }
  add('POST /users: a form', 'POST', '/users', { body: `username=newbie&password=long-password&invite=${spare}`, type: 'application/x-www-form-urlencoded', status: 400 });
  add('POST /users: chunked 100 KB', 'POST', '/users', { body: Buffer.alloc(100 * 1024, ' '), type: 'application/json', headers: { 'transfer-encoding': 'chunked' }, status: 413 });

  // Registration: wrong types, missing fields, nasty values; the spare invite must stay unused.
  for (const v of [123, null, true, [], {}, 1.5, ['newbie']]) {
    add(`register: username ${JSON.stringify(v)}`, 'POST', '/users', { json: { ...newbie, username: v }, status: 400 });
    add(`register: password ${JSON.stringify(v)}`, 'POST', '/users', { json: { ...newbie, password: v }, status: 400 });
    if (v !== null) add(`register: invite ${JSON.stringify(v)}`, 'POST', '/users', { json: { ...newbie, invite: v }, status: 400 });
  }
  for (const drop of ['username', 'password', 'invite']) {
    const { [drop]: _, ...rest } = newbie;
    add(`register: without ${drop}`, 'POST', '/users', { json: rest, status: drop === 'invite' ? 403 : 400 });
  }
  add('register: {}', 'POST', '/users', { json: {}, status: 400 });
  add('register: duplicate key', 'POST', '/users', { body: `{"username":"newbie","username":"other","password":"long-password","invite":"${spare}"}`, type: 'application/json', status: 400 });
  add('register: unknown field', 'POST', '/users', { json: { ...newbie, admin: true }, status: 400 });
  // These two claim the spare invite until their insert fails; run side by side, one may find it taken (403).
  add('register: taken name', 'POST', '/users', { json: { ...newbie, username: 'alice' }, status: [409, 403] });
  add('register: taken name, other case', 'POST', '/users', { json: { ...newbie, username: 'ALICE' }, status: [409, 403] });
  for (const [i, n] of NASTY.entries()) {
    add(`register: nasty username #${i}`, 'POST', '/users', { json: { ...newbie, username: n }, status: 400 });
    if (!/^[A-Za-z0-9_.-]*$/.test(n)) add(`register: nasty username #${i} padded`, 'POST', '/users', { json: { ...newbie, username: `bob${n}` }, status: 400 });
    add(`register: nasty password #${i}, no invite`, 'POST', '/users', { json: { username: 'newbie', password: n }, status: Buffer.byteLength(n) >= 8 && Buffer.byteLength(n) <= 256 ? 403 : 400 });
    add(`register: nasty invite #${i}`, 'POST', '/users', { json: { ...newbie, invite: n }, status: 403 });
  }
  for (const [name, u] of [['2 chars', 'ab'], ['33 chars', 'a'.repeat(33)], ['10,000 chars', 'a'.repeat(10000)], ['a space', 'new bie'], ['cyrillic', 'алиса'], ['fullwidth', 'ｎｅｗｂｉｅ'], ['newline', 'newbie\n'], ['emoji', 'new💣']]) {
    add(`register: username ${name}`, 'POST', '/users', { json: { ...newbie, username: u }, status: 400 });
  }
  for (const [name, p] of [['7 chars', 'seven77'], ['257 chars', 'p'.repeat(257)], ['10,000 chars', 'p'.repeat(10000)], ['empty', '']]) {
    add(`register: password ${name}`, 'POST', '/users', { json: { ...newbie, password: p }, status: 400 });
  }

  // Login: nothing but 401s (and 400 for broken bodies); no token is created.
  for (const [i, n] of NASTY.entries()) {
    add(`login: nasty username #${i}`, 'POST', '/login', { json: { username: n, password: alice.password }, status: 401 });
    add(`login: alice, nasty password #${i}`, 'POST', '/login', { json: { username: 'alice', password: n }, status: 401 });
  }
  for (const v of [123, null, true, [], {}]) {
    add(`login: username ${JSON.stringify(v)}`, 'POST', '/login', { json: { username: v, password: alice.password }, status: 400 });
    add(`login: password ${JSON.stringify(v)}`, 'POST', '/login', { json: { username: 'alice', password: v }, status: 400 });
  }
  add('login: unknown user', 'POST', '/login', { json: { username: 'nobody', password: 'whatever-pw' }, status: 401 });
  add('login: banned user, wrong password', 'POST', '/login', { json: { username: 'mallory', password: 'wrong-password' }, status: 401 });
  add('login: alice, empty password', 'POST', '/login', { json: { username: 'alice', password: '' }, status: 401 });

  // Bearer tokens that are not a user's.
  const badAuth = [
    ['none', {}], ['Bearer only', { authorization: 'Bearer' }], ['Bearer and spaces', { authorization: 'Bearer    ' }],
    ['Basic', { authorization: 'Basic YWxpY2U6cHctYWxpY2Utc2VjcmV0' }], ['64 f', { authorization: `Bearer ${'f'.repeat(64)}` }],
    ['8,000 chars', { authorization: `Bearer ${'t'.repeat(8000)}` }], ['token + x', { authorization: `Bearer ${alice.token}x` }],
    ['token - 1', { authorization: `Bearer ${alice.token.slice(0, -1)}` }], ['no scheme', { authorization: alice.token }],
    ['Token scheme', { authorization: `Token ${alice.token}` }], ['the admin token', { authorization: `Bearer ${ADMIN_TOKEN}` }],
    ['two tokens', { authorization: `Bearer ${'a'.repeat(64)}, Bearer ${'b'.repeat(64)}` }], ['SQL', { authorization: "Bearer ' OR 1=1 --" }],
    ['upper-case token', { authorization: `Bearer ${alice.token.toUpperCase()}` }], ['a passkey', { authorization: `Bearer ${bob.passkey}` }],
  ];
  for (const [name, headers] of badAuth) {
    add(`GET /me: ${name}`, 'GET', '/me', { headers, status: 401 });
    add(`POST /me/passkey: ${name}`, 'POST', '/me/passkey', { headers, status: 401 });
    add(`GET /torrents: ${name}`, 'GET', '/torrents', { headers, status: 401 });
    add(`POST /torrents: ${name}`, 'POST', '/torrents', { headers, body: good, status: 401 });
    add(`GET /torrents/T.torrent: ${name}`, 'GET', `/torrents/${hexT}.torrent`, { headers, status: 401 });
    add(`POST /logout: ${name}`, 'POST', '/logout', { headers, status: 401 });
    add(`POST /me/password: ${name}`, 'POST', '/me/password', { headers, json: { password: alice.password, new_password: 'taken-over-pw' }, status: 401 });
  }

  // Password change: bad values change nothing and keep every session.
  const change = (v) => ({ password: alice.password, new_password: 'long-enough-pw', ...v });
  for (const v of [123, null, true, [], {}]) {
    add(`password: old ${JSON.stringify(v)}`, 'POST', '/me/password', { token: alice.token, json: change({ password: v }), status: 400 });
    add(`password: new ${JSON.stringify(v)}`, 'POST', '/me/password', { token: alice.token, json: change({ new_password: v }), status: 400 });
  }
  for (const [name, p] of [['7 chars', 'seven77'], ['257 chars', 'p'.repeat(257)], ['empty', '']]) {
    add(`password: new ${name}`, 'POST', '/me/password', { token: alice.token, json: change({ new_password: p }), status: 400 });
  }
  add('password: wrong old', 'POST', '/me/password', { token: alice.token, json: change({ password: 'wrong-password' }), status: 401 });
  add('password: unknown field', 'POST', '/me/password', { token: alice.token, json: change({ admin: true }), status: 400 });
  add('password: without new_password', 'POST', '/me/password', { token: alice.token, json: { password: alice.password }, status: 400 });
  for (const [i, n] of NASTY.entries()) {
    add(`password: nasty old #${i}`, 'POST', '/me/password', { token: alice.token, json: change({ password: n }), status: 401 });
  }

  // The flags listing: only a 1-1000 limit.
  for (const q of ['limit=0', 'limit=1001', 'limit=-1', 'limit=1e3', 'limit=%31', 'limit=1&limit=1', 'limit', `limit=${'9'.repeat(400)}`, "limit=1'--", 'x=1']) {
    add(`GET /admin/flags?${q}`, 'GET', `/admin/flags?${q}`, { token: ADMIN_TOKEN, status: 400 });
  }

  // Uploads: every malformed .torrent is refused and nothing is stored.
  for (const [name, body] of badTorrents(good)) add(`upload: ${name}`, 'POST', '/torrents', { token: alice.token, body, status: 400 });
  add('upload: 10 MiB + 1', 'POST', '/torrents', { token: alice.token, body: Buffer.alloc(10 * 1024 * 1024 + 1, 'x'), status: 413 });
  add('upload: 10 MiB + 1, chunked', 'POST', '/torrents', { token: alice.token, body: Buffer.alloc(10 * 1024 * 1024 + 1, 'x'), headers: { 'transfer-encoding': 'chunked' }, status: 413 });
  add('upload: 16 MiB', 'POST', '/torrents', { token: alice.token, body: Buffer.alloc(16 * 1024 * 1024, 'l'), status: 413 });
  add('upload: already registered', 'POST', '/torrents', { token: alice.token, body: good, status: 409 });

  // Downloads by odd names. (The bare hash is the torrent's details page
  // data, whose magnet carries the member's own passkey: tests/site-api.)
  for (const f of ['x.torrent', '.torrent', `${hexT.slice(1)}.torrent`, `${hexT}0.torrent`, `${'g'.repeat(40)}.torrent`, `${'0'.repeat(40)}.torrent`,
    '%2e%2e%2f%2e%2e%2fetc%2fpasswd.torrent', `${enc(NASTY[0])}.torrent`, `${'a'.repeat(10000)}.torrent`, `${hexT}%00.torrent`, `${hexT}.torrent%00`]) {
    add(`download ${f.slice(0, 40)}`, 'GET', `/torrents/${f}`, { token: alice.token });
  }

  // Admin: nobody but the admin token; then bad names, bodies and hashes.
  const adminCalls = [
    ['GET', '/admin/users'], ['POST', '/admin/users/bob/ban'], ['POST', '/admin/users/mallory/unban'], ['POST', '/admin/users/bob/adjust', { uploaded: 1 }],
    ['POST', '/admin/invites'], ['POST', `/admin/torrents/${hexT}/freeleech`, { freeleech: true }], ['DELETE', `/admin/torrents/${hexT}`],
    ['GET', '/admin/client-bans'], ['POST', '/admin/client-bans', { prefix: '-ZZ0001-' }], ['DELETE', '/admin/client-bans', { prefix: '-EV6666-' }],
  ];
  const notAdmin = [
    ['no token', undefined], ['alice', alice.token], ['admin + x', `${ADMIN_TOKEN}x`], ['admin - 1', ADMIN_TOKEN.slice(0, -1)],
    ['admin upper-case', ADMIN_TOKEN.toUpperCase()], ['16 x', 'x'.repeat(16)], ['SQL', "' OR 1=1 --"], ['admin twice', ADMIN_TOKEN + ADMIN_TOKEN],
  ];
  for (const [method, path, json] of adminCalls) {
    for (const [name, token] of notAdmin) add(`${method} ${path} as ${name}`, method, path, { token, json, status: 401 });
    add(`${method} ${path} with Basic`, method, path, { headers: { authorization: `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString('base64')}` }, json, status: 401 });
  }
  const A = ADMIN_TOKEN;
  for (const [i, n] of [...NASTY, 'nobody', 'bob%00', 'bob ', ' bob'].entries()) {
    for (const action of ['ban', 'unban', 'adjust']) {
      add(`admin ${action} nasty name #${i}`, 'POST', `/admin/users/${enc(n)}/${action}`, { token: A, json: action === 'adjust' ? { uploaded: 1 } : undefined, status: 404 });
    }
  }
  for (const body of [{ uploaded: '5' }, { uploaded: 1.5 }, { uploaded: null }, { uploaded: true }, { uploaded: [1] }, { uploaded: { x: 1 } }, { upload: 5 },
    { uploaded: 1, extra: 1 }]) {
    add(`adjust ${JSON.stringify(body)}`, 'POST', '/admin/users/bob/adjust', { token: A, json: body, status: 400 });
  }
  for (const raw of ['{"uploaded":1e99}', '{"uploaded":9223372036854775808}', '{"downloaded":-9223372036854775809}', '{"uploaded":9223372036854775807}',
    '{"uploaded":9007199254740992}', '{"downloaded":-9007199254740992}', '{"downloaded":-9223372036854775808}', '[5,7]']) {
    add(`adjust ${raw}`, 'POST', '/admin/users/bob/adjust', { token: A, body: raw, type: 'application/json', status: 400 });
  }
  for (const body of [{ freeleech: 'yes' }, { freeleech: 1 }, { freeleech: null }, {}, { freeleech: [] }, { freeleech: true, x: 1 }]) {
    add(`freeleech ${JSON.stringify(body)}`, 'POST', `/admin/torrents/${hexT}/freeleech`, { token: A, json: body, status: 400 });
  }
  const badHex = [hexT.slice(1), `${hexT}0`, 'g'.repeat(40), enc(NASTY[0]), enc(NASTY[2]), '%00'.repeat(20), 'x'.repeat(5000), ''];
  for (const h of badHex) {
    add(`freeleech on ${h.slice(0, 30)}`, 'POST', `/admin/torrents/${h}/freeleech`, { token: A, json: { freeleech: true } });
    add(`delete ${h.slice(0, 30)}`, 'DELETE', `/admin/torrents/${h}`, { token: A });
  }
  add('freeleech on an unknown torrent', 'POST', `/admin/torrents/${'0'.repeat(40)}/freeleech`, { token: A, json: { freeleech: true }, status: 404 });
  add('delete an unknown torrent', 'DELETE', `/admin/torrents/${'0'.repeat(40)}`, { token: A, status: 404 });
  for (const body of [{ prefix: '' }, { prefix: 'p'.repeat(21) }, { prefix: 'é'.repeat(11) }, { prefix: 'x'.repeat(10000) }, { prefix: 5 }, { prefix: null }, {},
    { prefix: ['-EV6666-'] }, { prefix: '-ZZ0001-', extra: 1 }, ...NASTY.filter((n) => Buffer.byteLength(n) > 20).map((prefix) => ({ prefix }))]) {
    add(`client ban ${JSON.stringify(body).slice(0, 40)}`, 'POST', '/admin/client-bans', { token: A, json: body, status: 400 });
    add(`client unban ${JSON.stringify(body).slice(0, 40)}`, 'DELETE', '/admin/client-bans', { token: A, json: body, status: 400 });
  }
  add('client unban of a prefix not banned', 'DELETE', '/admin/client-bans', { token: A, json: { prefix: '-NOPE00-' }, status: 404 });

  // Unknown endpoints and wrong methods.
  for (const [method, path, token] of [
    ['PUT', '/users'], ['GET', '/users'], ['DELETE', '/login'], ['GET', '/login'], ['PATCH', '/me', alice.token], ['GET', '/me/passkey', alice.token],
    ['DELETE', '/torrents', alice.token], ['PUT', '/torrents', alice.token], ['GET', '/', undefined], ['GET', '//users'], ['POST', '/users/'],
    ['GET', '/USERS'], ['GET', '/admin', A], ['GET', '/admin/', A], ['GET', '/admin/users/bob', A], ['POST', '/admin/users/bob/delete', A],
    ['PUT', '/admin/users', A], ['GET', '/admin/invites', A], ['POST', '/admin/users//ban', A], ['GET', `/admin/torrents/${hexT}`, A],
    ['GET', '/%2e%2e/announce'], ['GET', `/${'x'.repeat(10000)}`], ['OPTIONS', '/users'], ['FOO', '/users'],
  ]) {
    cases.push({ ...apiCase(`${method} /api${path.slice(0, 40)}`, method, path, { token }), unknownMethod: method === 'FOO' });
  }
  // The runtime may resolve the dot segments before the Worker sees the path.
  cases.find((c) => c.target === '/api/%2e%2e/announce').expect = 'error';
  return cases;
}
