// The dashboard at / in headless Chromium (Debian `chromium`): it renders
// the numbers /stats reports, and a screenshot lands in test-results/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, startTracker, announce, scrape, get, peerId, randomHash, eventually } from './helpers.mjs';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
// scripts/install-clients.sh installs it; outside CI a machine without it skips.
const skip = !CHROMIUM && !process.env.CI ? 'chromium is not installed (bash scripts/install-clients.sh)' : false;

/** Runs headless Chromium on `url` with no network of its own beyond the page. */
function chromium(args, url) {
  const profile = mkdtempSync(join(tmpdir(), 'edge-tracker-chromium-'));
  try {
    const r = spawnSync(CHROMIUM, [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-extensions', '--disable-default-apps', '--no-first-run', '--no-default-browser-check',
      '--metrics-recording-only', '--mute-audio', `--user-data-dir=${profile}`,
      // Virtual time runs the page's script and its /stats fetch to completion, then stops.
      '--virtual-time-budget=10000', '--run-all-compositor-stages-before-draw',
      ...args, url,
    ], { encoding: 'utf8', timeout: 90000, maxBuffer: 16 * 1024 * 1024 });
    assert.equal(r.status, 0, `chromium failed: ${r.error ?? ''}\n${r.stderr}`);
    return r.stdout;
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

const decode = (s) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&amp;/g, '&');
const number = (s) => Number(s.replace(/,/g, ''));

test('the dashboard shows what /stats reports, in headless Chromium', { skip, timeout: 180000 }, async () => {
  const t = await startTracker({ vars: { PUBLISH_WINDOW: '1', STATS_REFRESH: '0' } });
  try {
    const busy = randomHash();
    const quiet = randomHash();
    for (let i = 0; i < 3; i++) await announce(t.base, { infoHash: busy, peerId: peerId(`seed${i}`), event: 'started', left: 0 });
    await announce(t.base, { infoHash: busy, peerId: peerId('leech'), event: 'started' });
    await announce(t.base, { infoHash: busy, peerId: peerId('leech'), event: 'completed', left: 0 });
    await announce(t.base, { infoHash: quiet, peerId: peerId('q'), event: 'started' });
    await scrape(t.base, [busy, quiet]);
    await get(`${t.base}/announce?info_hash=short`);
    const expected = await eventually(async () => {
      const s = await (await fetch(`${t.base}/stats`)).json();
      return s.torrents === 2 && s.seeders === 4 && s.leechers === 1 ? s : null;
    });

    const dom = chromium(['--dump-dom'], `${t.base}/`);
    const after = await (await fetch(`${t.base}/stats`)).json();
    assert.match(dom, /<body[^>]*data-ready="true"/, 'the page rendered /stats');
    const shown = Object.fromEntries([...dom.matchAll(/data-stat="([a-z_]+)">([^<]*)</g)].map((m) => [m[1], m[2]]));
    for (const name of ['torrents', 'peers', 'seeders', 'leechers', 'completed', 'announces', 'scrapes']) {
      assert.equal(number(shown[name]), after[name], `${name}: page shows ${shown[name]}, /stats says ${after[name]}`);
      assert.equal(after[name], expected[name], `${name} changed while the page loaded`);
    }
    assert.equal(number(shown.failures), 1);
    assert.equal([...dom.matchAll(/class="card private" hidden/g)].length, 2, 'no private-mode cards on a public tracker');
    assert.deepEqual([after.announces, after.scrapes, after.completed], [7, 1, 1]);
    // How to use it: the announce URL of this very host.
    assert.match(decode(dom), new RegExp(`<code id="announce-url">${t.base}/announce</code>`));
    // Busiest torrents, busiest first, with seeders and leechers.
    const rows = [...dom.matchAll(/<tr><td class="hash">([0-9a-f]{40})<\/td><td>([\d,]+)<\/td><td>([\d,]+)<\/td><td>([\d,]+)<\/td><\/tr>/g)]
      .map((m) => [m[1], number(m[2]), number(m[3]), number(m[4])]);
    assert.deepEqual(rows, after.busiest.map((b) => [b.info_hash, b.seeders, b.leechers, b.completed]));
    assert.deepEqual(rows[0], [busy.toString('hex'), 4, 0, 1]);
    // The chart: one bar per minute, adding up to the announces.
    const bars = [...dom.matchAll(/<rect class="bar"[^>]*data-announces="(\d+)"/g)].map((m) => Number(m[1]));
    assert.equal(bars.length, after.history.length);
    assert.equal(bars.reduce((a, b) => a + b, 0), after.announces);
    assert.ok(!/https?:\/\/(?!127\.0\.0\.1)/.test(dom.replace(/http:\/\/www\.w3\.org\/2000\/svg/g, '')), 'nothing loads from elsewhere');

    mkdirSync(join(ROOT, 'test-results'), { recursive: true });
    const png = join(ROOT, 'test-results', 'dashboard.png');
    rmSync(png, { force: true });
    chromium([`--screenshot=${png}`, '--window-size=1200,1250', '--hide-scrollbars'], `${t.base}/`);
    assert.ok(statSync(png).size > 10000, 'a screenshot was saved');
  } finally {
    await t.close();
  }
});
