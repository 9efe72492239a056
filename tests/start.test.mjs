// `npm start` is the operator's entry point: it must build and serve the
// tracker on PORT with state persisted under .wrangler/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { ROOT, announce, peerId, randomHash, eventually } from './helpers.mjs';

const freePort = () => new Promise((resolve) => {
  const s = createServer();
  s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
});

test('npm start serves the tracker on PORT and passes --var overrides through', { timeout: 180000 }, async () => {
  const port = await freePort();
  const child = spawn('npm', ['start', '--', '--var', 'INTERVAL:123'], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), WRANGLER_SEND_METRICS: 'false', CI: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let log = '';
  child.stdout.on('data', (d) => { log += d; });
  child.stderr.on('data', (d) => { log += d; });
  try {
    const base = `http://127.0.0.1:${port}`;
    const r = await eventually(async () => {
      try {
        return await announce(base, { infoHash: randomHash(), peerId: peerId('start'), event: 'started' });
      } catch {
        return null;
      }
    }, { ms: 150000, every: 500 });
    assert.equal(r.status, 200, log);
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
    process.kill(-child.pid, 'SIGTERM');
    await new Promise((res) => child.once('exit', res));
  }
});
