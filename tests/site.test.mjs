// The site's static assets and routing: pages, scripts and styles come from
// site/ (wrangler.toml [assets]) with a strict CSP, while the tracker's own
// routes still reach the Worker.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTracker, announce, peerId, randomHash } from './helpers.mjs';
import { launch, newContext, shootEverywhere, skipWithoutChromium } from './browser.mjs';

test('public mode: / is the dashboard, linking to /create; assets carry the CSP; tracker routes still answer', async () => {
  const t = await startTracker();
  try {
    const root = await fetch(`${t.base}/`);
    assert.equal(root.status, 200);
    assert.match(root.headers.get('content-type'), /^text\/html/);
    assert.match(root.headers.get('content-security-policy'), /script-src 'self'/);
    const html = await root.text();
    assert.match(html, /<a href="\/create">/);
    assert.match(html, /src="\/dashboard.js"/);

    for (const [path, type] of [['/dashboard.js', /javascript/], ['/dashboard.css', /text\/css/], ['/dashboard', /text\/html/]]) {
      const r = await fetch(`${t.base}${path}`);
      assert.equal(r.status, 200, path);
      assert.match(r.headers.get('content-type'), type, path);
      assert.match(r.headers.get('content-security-policy') ?? '', /default-src 'none'/, `${path} has the CSP`);
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff', path);
    }

    // The tracker's routes are the Worker's, assets or not.
    const a = await announce(t.base, { infoHash: randomHash(), peerId: peerId('site'), event: 'started' });
    assert.equal(a.status, 200);
    assert.equal(typeof a.body.interval, 'number');
    assert.equal((await fetch(`${t.base}/stats`)).status, 200);
    const api = await fetch(`${t.base}/api/me`);
    assert.equal(api.status, 404);
    assert.match((await api.json()).error, /private mode only/);
    // A query on `/` is a misconfigured client: a bencoded reason, as before.
    const q = await fetch(`${t.base}/?info_hash=x`);
    assert.equal(q.status, 404);
    // An unknown path is still the tracker's 404.
    assert.equal((await fetch(`${t.base}/no-such-page`)).status, 404);
  } finally {
    await t.close();
  }
});

test('the dashboard passes axe-core in Chromium (phone and desktop)', { skip: skipWithoutChromium, timeout: 120000 }, async () => {
  const t = await startTracker();
  const browser = await launch();
  try {
    const context = await newContext(browser);
    await shootEverywhere(context, `${t.base}/`, 'site-dashboard');
    assert.deepEqual(context.problems, []);
  } finally {
    await browser.close();
    await t.close();
  }
});
