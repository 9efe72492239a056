// The site's server side over HTTP (private mode): cookie sessions and the
// Origin rule, the admin role, and the catalogue (search, sort, keyset
// pages, details) that the pages read.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { startTracker, ADMIN_TOKEN, escapeBytes, peerId, eventually } from './helpers.mjs';
import { makeTorrentFromData } from './torrent.mjs';

const VARS = { TRACKER_MODE: 'private', PASSWORD_ROUNDS: '1000', PUBLISH_WINDOW: '1', ENFORCE_MIN_INTERVAL: 'false' };

let t;
before(async () => { t = await startTracker({ vars: VARS }); });
after(async () => { await t.close(); });

async function api(method, path, { token, cookie, origin, json, body } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (cookie) headers.cookie = cookie;
  if (origin) headers.origin = origin;
  if (json !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${t.base}/api${path}`, { method, headers, body: json !== undefined ? JSON.stringify(json) : body });
  const buf = Buffer.from(await res.arrayBuffer());
  let data = null;
  try { data = JSON.parse(buf.toString()); } catch {}
  return { status: res.status, data, setCookie: res.headers.get('set-cookie') };
}

const password = (name) => `pw-${name}-secret`;

/** Registers and signs in on the site: returns the `Cookie` header value. */
async function member(username) {
  assert.equal((await api('POST', '/users', { json: { username, password: password(username) } })).status, 201);
  const r = await api('POST', '/session', { origin: t.base, json: { username, password: password(username) } });
  assert.equal(r.status, 200, JSON.stringify(r.data));
  assert.deepEqual(r.data, { username });
  return r.setCookie.split(';')[0];
}

test('sign-in sets an HttpOnly, Secure, SameSite=Strict __Host- cookie that authenticates; no token in the body', async () => {
  const r = await api('POST', '/users', { json: { username: 'carol', password: password('carol') } });
  assert.equal(r.status, 201);
  const wrong = await api('POST', '/session', { origin: t.base, json: { username: 'carol', password: 'nope-nope-nope' } });
  assert.equal(wrong.status, 401);
  assert.equal(wrong.setCookie, null);
  const s = await api('POST', '/session', { origin: t.base, json: { username: 'carol', password: password('carol') } });
  assert.equal(s.status, 200);
  assert.match(s.setCookie, /^__Host-session=[0-9a-f]{64}; Max-Age=\d+; Path=\/; HttpOnly; Secure; SameSite=Strict$/);
  assert.ok(!JSON.stringify(s.data).match(/[0-9a-f]{64}/), 'the page never sees the token');
  const cookie = s.setCookie.split(';')[0];
  const me = await api('GET', '/me', { cookie });
  assert.equal(me.status, 200);
  assert.equal(me.data.username, 'carol');
  assert.equal(me.data.admin, false);
  assert.equal((await api('GET', '/me', { cookie: '__Host-session=' + 'a'.repeat(64) })).status, 401);
});

test('the Origin rule: a cross-origin or origin-less POST with the cookie is refused; bearer scripts still work', async () => {
  const cookie = await member('dave');
  for (const origin of ['https://evil.example', 'null', t.base.replace('http:', 'https:')]) {
    const r = await api('POST', '/me/passkey', { cookie, origin });
    assert.equal(r.status, 403, origin);
    assert.match(r.data.error, /cross-origin/);
  }
  const none = await api('POST', '/me/passkey', { cookie });
  assert.equal(none.status, 403);
  assert.match(none.data.error, /Origin/);
  const before = (await api('GET', '/me', { cookie })).data.passkey;
  const same = await api('POST', '/me/passkey', { cookie, origin: t.base });
  assert.equal(same.status, 200);
  assert.notEqual(same.data.passkey, before);
  // A sign-in or registration posted from another site is refused too.
  assert.equal((await api('POST', '/session', { origin: 'https://evil.example', json: { username: 'dave', password: password('dave') } })).status, 403);
  assert.equal((await api('POST', '/users', { origin: 'https://evil.example', json: { username: 'mallory', password: password('m') } })).status, 403);
  // The bearer API is as it was: no Origin, no cookie.
  const login = await api('POST', '/login', { json: { username: 'dave', password: password('dave') } });
  assert.equal(login.status, 200);
  assert.equal((await api('POST', '/me/passkey', { token: login.data.token })).status, 200);
});

test('sign-out revokes the session server-side: the old cookie is dead; other sessions live on', async () => {
  const cookie = await member('erin');
  const other = (await api('POST', '/session', { origin: t.base, json: { username: 'erin', password: password('erin') } })).setCookie.split(';')[0];
  const out = await api('DELETE', '/session', { cookie, origin: t.base });
  assert.equal(out.status, 200);
  assert.match(out.setCookie, /^__Host-session=; Max-Age=0;/);
  const dead = await api('GET', '/me', { cookie });
  assert.equal(dead.status, 401);
  assert.equal((await api('GET', '/me', { cookie: other })).status, 200);
});

test('password change by cookie: needs the current password, ends every session; signing in again works', async () => {
  const cookie = await member('fred');
  const other = (await api('POST', '/session', { origin: t.base, json: { username: 'fred', password: password('fred') } })).setCookie.split(';')[0];
  const bad = await api('POST', '/me/password', { cookie, origin: t.base, json: { password: 'wrong-password', new_password: 'new-password-1' } });
  assert.equal(bad.status, 401);
  assert.equal((await api('POST', '/me/password', { cookie, origin: t.base, json: { password: password('fred'), new_password: 'short' } })).status, 400);
  const ok = await api('POST', '/me/password', { cookie, origin: t.base, json: { password: password('fred'), new_password: 'new-password-1' } });
  assert.equal(ok.status, 204);
  assert.equal((await api('GET', '/me', { cookie })).status, 401);
  assert.equal((await api('GET', '/me', { cookie: other })).status, 401);
  assert.equal((await api('POST', '/session', { origin: t.base, json: { username: 'fred', password: password('fred') } })).status, 401);
  assert.equal((await api('POST', '/session', { origin: t.base, json: { username: 'fred', password: 'new-password-1' } })).status, 200);
});

test('POST /api/logout with the cookie revokes the cookie session too', async () => {
  const cookie = await member('gus');
  assert.equal((await api('POST', '/logout', { cookie, origin: t.base })).status, 204);
  assert.equal((await api('GET', '/me', { cookie })).status, 401);
});

test('admin role: the operator promotes a member, who then uses the admin API with the cookie; nobody else can', async () => {
  const cookie = await member('gina');
  assert.equal((await api('GET', '/admin/users', { cookie })).status, 401, 'not an admin yet');
  const plain = await member('hank');
  const byMember = await api('POST', '/admin/users/hank/admin', { cookie: plain, origin: t.base });
  assert.equal(byMember.status, 401);
  const promote = await api('POST', '/admin/users/gina/admin', { token: ADMIN_TOKEN });
  assert.deepEqual([promote.status, promote.data], [200, { username: 'gina', admin: true }]);
  assert.equal((await api('GET', '/me', { cookie })).data.admin, true);
  const users = await api('GET', '/admin/users', { cookie });
  assert.equal(users.status, 200);
  assert.equal(users.data.users.find((u) => u.username === 'gina').admin, true);
  // An admin member acts with the cookie (same origin) ...
  assert.equal((await api('POST', '/admin/invites', { cookie, origin: t.base })).status, 201);
  // ... but not from another site, and cannot make admins.
  assert.equal((await api('POST', '/admin/invites', { cookie, origin: 'https://evil.example' })).status, 403);
  assert.equal((await api('POST', '/admin/users/hank/admin', { cookie, origin: t.base })).status, 403);
  // Demotion by the operator bites at once.
  assert.equal((await api('DELETE', '/admin/users/gina/admin', { token: ADMIN_TOKEN })).status, 200);
  assert.equal((await api('GET', '/admin/users', { cookie })).status, 401);
  assert.equal((await api('POST', '/admin/users/nobody/admin', { token: ADMIN_TOKEN })).status, 404);
});

async function upload(cookie, name, size, opts = {}) {
  const made = makeTorrentFromData(name, randomBytes(size), 'http://x/announce', { private: true, pieceLength: 16384, ...opts });
  const r = await api('POST', '/torrents', { cookie, origin: t.base, body: made.torrent });
  assert.equal(r.status, 201, JSON.stringify(r.data));
  return made.infoHash.toString('hex');
}

test('catalogue: search by words and prefix, sort by size and by seeders (mirrored from the swarm), keyset pages, details', async () => {
  const cookie = await member('ivy');
  const other = await member('jack');
  const a = await upload(cookie, 'Debian Linux 12.iso', 3000);
  const b = await upload(cookie, 'debian-live-kde.iso', 1000);
  const c = await upload(other, 'Big Buck Bunny.mkv', 2000);
  const list = async (q) => (await api('GET', `/torrents?${q}`, { cookie })).data;

  assert.deepEqual((await list('q=debian')).torrents.map((x) => x.info_hash).sort(), [a, b].sort());
  assert.deepEqual((await list('q=deb')).torrents.length, 2, 'the last word is a prefix');
  assert.deepEqual((await list('q=bunny big')).torrents.map((x) => x.info_hash), [c]);
  assert.deepEqual((await list('q=%22OR%20*')).torrents, [], 'FTS syntax is just words');
  assert.deepEqual((await list('sort=size&order=asc')).torrents.map((x) => x.size), [1000, 2000, 3000]);
  assert.deepEqual((await list('mine=1')).torrents.map((x) => x.info_hash).sort(), [a, b].sort());

  // Keyset pages: two rows, then the third, then no more.
  const p1 = await list('sort=size&limit=2');
  assert.deepEqual(p1.torrents.map((x) => x.size), [3000, 2000]);
  assert.ok(p1.next);
  const p2 = await list(`sort=size&limit=2&after=${p1.next}`);
  assert.deepEqual(p2.torrents.map((x) => x.size), [1000]);
  assert.equal(p2.next, null);
  assert.equal((await api('GET', '/torrents?sort=name', { cookie })).status, 400);
  assert.equal((await api('GET', '/torrents?after=junk', { cookie })).status, 400);
  assert.equal((await api('GET', '/torrents')).status, 401);

  // Seeders come from the swarm's published counters, copied to D1.
  const me = (await api('GET', '/me', { cookie })).data;
  const hash = Buffer.from(b, 'hex');
  const r = await fetch(`${t.base}/announce/${me.passkey}?info_hash=${escapeBytes(hash)}&peer_id=${escapeBytes(peerId('seed-b'))}&port=6881&uploaded=0&downloaded=0&left=0&event=started`);
  assert.equal(r.status, 200);
  const sorted = await eventually(async () => {
    const l = await list('sort=seeders');
    return l.torrents[0].seeders === 1 ? l : null;
  });
  assert.equal(sorted.torrents[0].info_hash, b);

  const d = await api('GET', `/torrents/${a}`, { cookie });
  assert.equal(d.status, 200);
  assert.equal(d.data.name, 'Debian Linux 12.iso');
  assert.equal(d.data.uploader, 'ivy');
  assert.deepEqual(d.data.files, [{ path: 'Debian Linux 12.iso', size: 3000 }]);
  assert.equal(d.data.file_count, 1);
  assert.match(d.data.magnet, new RegExp(`^magnet:\\?xt=urn:btih:${a}`));
  assert.equal((await api('GET', `/torrents/${'0'.repeat(40)}`, { cookie })).status, 404);
  assert.equal((await api('GET', '/torrents/xyz', { cookie })).status, 400);
});

test('a request refused with its body unread leaves the keep-alive connection open: the next request on it is answered', async () => {
  // One connection, kept alive, as a browser or a script's HTTP client holds it.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const { hostname, port } = new URL(t.base);
  const send = (method, path, { headers = {}, body, chunked = false } = {}) => new Promise((resolve, reject) => {
    // `chunked`: no content-length, the body in two chunks.
    if (body && !chunked) headers = { ...headers, 'content-length': body.length };
    const req = http.request({ host: hostname, port, method, path, headers, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, reused: req.reusedSocket }));
    });
    req.on('error', reject);
    if (chunked) req.write(body.subarray(0, 10));
    req.end(chunked ? body.subarray(10) : body);
  });
  const json = (v) => ({ headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(v)) });
  const refusals = [
    ['POST', '/api/me/password', json({ password: 'x'.repeat(2000), new_password: 'new-password-1' }), 401],
    ['POST', '/api/users', { ...json({ username: 'zed', password: 'pw-zed-secret' }), headers: { 'content-type': 'application/json', origin: 'https://evil.example' } }, 403],
    ['POST', '/api/torrents', { headers: { 'content-type': 'application/x-bittorrent' }, body: randomBytes(200_000) }, 401],
    ['POST', '/api/me/passkey', { ...json({ a: 'y'.repeat(5000) }), chunked: true }, 401],
    ['POST', '/api/no-such-route', json({ a: 1 }), 404],
    ['POST', '/announce', { body: Buffer.from('info_hash=x') }, 405],
    ['GET', `/announce?info_hash=${'%00'.repeat(20)}&peer_id=${'%01'.repeat(20)}&port=6881`, { body: Buffer.from('a GET with a body') }, 200],
  ];
  try {
    for (let round = 0; round < 3; round++) {
      for (const [method, path, opts, status] of refusals) {
        assert.equal((await send(method, path, opts)).status, status, `${method} ${path}`);
        const next = await send('GET', '/api/site');
        assert.equal(next.status, 200, `after ${method} ${path}`);
        assert.equal(next.reused, true, `after ${method} ${path}: answered on the same connection`);
      }
    }
  } finally {
    agent.destroy();
  }
});
