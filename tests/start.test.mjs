// `npm start` is the operator's entry point: it must build and serve the
// tracker on PORT with state persisted under .wrangler/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import bencode from 'bencode';
import { ROOT, announce, peerId, randomHash, eventually } from './helpers.mjs';

const freePort = () => new Promise((resolve) => {
  const s = createServer();
  s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
});

/** `npm start` on `port` with these `--var NAME:value` overrides: the child and its output so far (`log`). */
function npmStart(port, vars) {
  const child = spawn('npm', ['start', '--', ...vars.flatMap((v) => ['--var', v])], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), WRANGLER_SEND_METRICS: 'false', CI: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const started = { child, log: '' };
  child.stdout.on('data', (d) => { started.log += d; });
  child.stderr.on('data', (d) => { started.log += d; });
  return started;
}

/** Stops `npm start` and everything it spawned. */
async function stop(child) {
  process.kill(-child.pid, 'SIGTERM');
  await new Promise((res) => child.once('exit', res));
}

test('npm start serves the tracker on PORT and passes --var overrides through', { timeout: 180000 }, async () => {
  const port = await freePort();
  const started = npmStart(port, ['INTERVAL:123']);
  try {
    const base = `http://127.0.0.1:${port}`;
    const r = await eventually(async () => {
      try {
        return await announce(base, { infoHash: randomHash(), peerId: peerId('start'), event: 'started' });
      } catch {
        return null;
      }
    }, { ms: 150000, every: 500 });
    assert.equal(r.status, 200, started.log);
    assert.equal(r.body.interval, 123);
    assert.equal(r.body.incomplete, 1);
    // The site's static assets (wrangler.toml [assets]) are served too, and
    // `/` is still the Worker's (the dashboard in public mode).
    const root = await fetch(`${base}/`);
    assert.equal(root.status, 200);
    assert.match(await root.text(), /<script src="\/dashboard.js"/);
    const script = await fetch(`${base}/dashboard.js`);
    assert.equal(script.status, 200);
    assert.match(script.headers.get('content-security-policy') ?? '', /script-src 'self'/, 'site/_headers applies');
  } finally {
    await stop(started.child);
  }
});

test('npm start in private mode keeps uploaded .torrent files in its local R2 bucket', { timeout: 180000 }, async () => {
  const { makeLargeTorrent } = await import('./torrent.mjs');
  const { randomBytes } = await import('node:crypto');
  const port = await freePort();
  const started = npmStart(port, ['TRACKER_MODE:private', 'PASSWORD_ROUNDS:1000']);
  const base = `http://127.0.0.1:${port}`;
  const json = (path, body, token) => fetch(`${base}/api${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  try {
    const username = `start${randomBytes(4).toString('hex')}`;
    const reg = await eventually(async () => {
      try {
        return await json('/users', { username, password: 'long-password' });
      } catch {
        return null;
      }
    }, { ms: 150000, every: 500 });
    assert.equal(reg.status, 201, started.log);
    const { token } = await (await json('/login', { username, password: 'long-password' })).json();
    // Over D1's 2 MB row limit: only the bucket can hold it.
    // A name of its own: `npm start` keeps its state between runs.
    const made = makeLargeTorrent(2.5 * 1024 * 1024, 'http://x/announce', { name: `large-${username}` });
    const up = await fetch(`${base}/api/torrents`, { method: 'POST', headers: { authorization: `Bearer ${token}` }, body: made.torrent });
    assert.equal(up.status, 201, await up.text());
    const dl = await fetch(`${base}/api/torrents/${made.infoHash.toString('hex')}.torrent`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(dl.status, 200);
    const served = Buffer.from(await dl.arrayBuffer());
    assert.ok(served.includes(bencode.encode(made.info)), 'the info dictionary comes back byte for byte');
  } finally {
    await stop(started.child);
  }
});
