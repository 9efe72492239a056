// The private tracker's story, end to end, as people live it: members A
// and B register in the browser; A creates a torrent of a folder in the
// browser (/create), registers it and downloads the personal copy; a real
// client (libtorrent) seeds it; B finds it by search on /torrents, downloads
// the .torrent from its page, and a real client (aria2) downloads the data
// through the tracker (sha256 checked); after the credit flush, B's /me
// shows the bytes downloaded and A's the bytes uploaded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bencode from 'bencode';
import { ROOT, startTracker, eventually } from './helpers.mjs';
import { launch, newContext, checkAxe, screenshot, skipWithoutChromium } from './browser.mjs';
import { startPeer, stopPeer } from './clients/peers.mjs';

const VARS = {
  TRACKER_MODE: 'private', PASSWORD_ROUNDS: '1000', INTERVAL: '10', MIN_INTERVAL: '5', PUBLISH_WINDOW: '1',
  // Credit reaches D1 a second after it is earned.
  CREDIT_FLUSH: '1', ENFORCE_MIN_INTERVAL: 'false',
};
const FILES = { 'intro.txt': 2000, 'disc 1/track01.flac': 2 * 1024 * 1024 + 17, 'disc 1/track02.flac': 1536 * 1024, 'cover.jpg': 300 * 1024 };
const TOTAL = Object.values(FILES).reduce((a, b) => a + b, 0);
const sha256 = (b) => createHash('sha256').update(b).digest('hex');
const skip = skipWithoutChromium;
const OUT = join(ROOT, 'test-results', 'story');

let t;
let browser;
let work;
before(async () => {
  if (skip) return;
  t = await startTracker({ vars: VARS });
  browser = await launch();
  work = mkdtempSync(join(tmpdir(), 'edge-tracker-story-'));
});
after(async () => {
  await browser?.close();
  await t?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function ready(page) {
  await page.waitForSelector('body[data-ready="true"]');
}

async function register(context, username) {
  const page = await context.newPage();
  await page.goto(`${t.base}/`);
  await ready(page);
  const form = page.locator('#register');
  await form.getByLabel('Username').fill(username);
  await form.getByLabel('Password').fill(`${username}-password`);
  await form.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL(`${t.base}/me`);
  await ready(page);
  return page;
}

/** The member's totals as /me shows them (exact bytes ride on data attributes). */
async function totals(page) {
  await page.goto(`${t.base}/me`);
  await ready(page);
  return {
    uploaded: Number(await page.getAttribute('#uploaded', 'data-bytes')),
    downloaded: Number(await page.getAttribute('#downloaded', 'data-bytes')),
  };
}

/** Step 2: A creates the torrent of `album` on /create, registers it, downloads the personal copy. */
async function createAndRegister(a, album) {
  await a.goto(`${t.base}/create`);
  await ready(a);
  await a.setInputFiles('#folder', album);
  assert.equal(await a.inputValue('#name'), 'album');
  await a.click('#create');
  await a.waitForSelector('#result:not([hidden])', { timeout: 120000 });
  const infoHash = await a.textContent('#r-hash');
  await a.click('#register');
  await a.waitForSelector('#personal:not([hidden])');
  const [personal] = await Promise.all([a.waitForEvent('download'), a.click('#personal')]);
  const path = join(work, 'alice.torrent');
  await personal.saveAs(path);
  const me = await a.evaluate(() => fetch('/api/me').then((r) => r.json()));
  assert.equal(Buffer.from(bencode.decode(readFileSync(path)).announce).toString(), me.announce_url);
  return { infoHash, path };
}

/** Step 4: B finds it by search and downloads the .torrent from its page. */
async function findAndDownload(b, infoHash) {
  await b.goto(`${t.base}/torrents`);
  await ready(b);
  await b.getByLabel('Name').fill('albu');
  await b.getByRole('button', { name: 'Search' }).click();
  await b.waitForURL(/q=albu/);
  await ready(b);
  await b.getByRole('link', { name: 'album' }).click();
  await b.waitForURL(`${t.base}/torrents/${infoHash}`);
  await ready(b);
  assert.equal(await b.locator('#files tbody tr').count(), Object.keys(FILES).length, 'every file is listed');
  await checkAxe(b, 'torrent page in the story');
  const [download] = await Promise.all([b.waitForEvent('download'), b.getByRole('link', { name: 'Download .torrent' }).click()]);
  const path = join(work, 'bob.torrent');
  await download.saveAs(path);
  const me = await b.evaluate(() => fetch('/api/me').then((r) => r.json()));
  assert.equal(Buffer.from(bencode.decode(readFileSync(path)).announce).toString(), me.announce_url);
  return path;
}

/** A generated multi-file folder: { dir, files: { path: bytes } }. */
function makeAlbum() {
  const dir = join(work, 'seed', 'album');
  const files = {};
  for (const [path, size] of Object.entries(FILES)) {
    files[path] = randomBytes(size);
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), files[path]);
  }
  return { dir, files };
}

test('private story: register, create in the browser, seed, find by search, download, and see the credit on /me', { skip, timeout: 400000 }, async () => {
  const { dir: album, files } = makeAlbum();
  const alice = await newContext(browser, { acceptDownloads: true });
  const bob = await newContext(browser, { acceptDownloads: true });
  const peers = [];
  try {
    // 1. A and B register in the browser.
    const a = await register(alice, 'alice');
    const b = await register(bob, 'bob');
    // 2. A creates, registers and downloads the personal copy; 3. a real client seeds it.
    const made = await createAndRegister(a, album);
    mkdirSync(OUT, { recursive: true });
    peers.push(await startPeer('libtorrent', { torrentPath: made.path, dir: join(work, 'seed'), seed: true, minAnnounceInterval: 5 }, join(OUT, 'seeder-libtorrent.log')));
    // 4. B finds it and a real client downloads the data through the tracker.
    const bobTorrent = await findAndDownload(b, made.infoHash);
    const leech = join(work, 'leech');
    mkdirSync(leech, { recursive: true });
    peers.push(await startPeer('aria2', { torrentPath: bobTorrent, dir: leech }, join(OUT, 'leecher-aria2.log')));
    const got = (path) => join(leech, 'album', path);
    await eventually(() => Object.entries(files).every(([path, bytes]) =>
      existsSync(got(path)) && readFileSync(got(path)).length === bytes.length && sha256(readFileSync(got(path))) === sha256(bytes)),
    { ms: 180000, every: 500 });
    for (const [path, bytes] of Object.entries(files)) assert.equal(sha256(readFileSync(got(path))), sha256(bytes), path);

    // 5. After the credit flush, /me shows B's download and A's upload.
    const bobTotals = await eventually(async () => { const x = await totals(b); return x.downloaded >= TOTAL ? x : null; }, { ms: 90000, every: 1000 });
    const aliceTotals = await eventually(async () => { const x = await totals(a); return x.uploaded >= TOTAL ? x : null; }, { ms: 90000, every: 1000 });
    // Clients count what they moved; protocol overhead and re-requests stay small.
    assert.ok(bobTotals.downloaded < TOTAL * 1.2, `bob downloaded ${bobTotals.downloaded} of ${TOTAL}`);
    assert.ok(aliceTotals.uploaded < TOTAL * 1.2, `alice uploaded ${aliceTotals.uploaded} of ${TOTAL}`);
    assert.match(await a.locator('#may-leech').textContent(), /You may start new downloads/);
    await screenshot(a, 'site-story-alice-me');
    await screenshot(b, 'site-story-bob-me');
    await b.goto(`${t.base}/torrents?sort=seeders`);
    await ready(b);
    await screenshot(b, 'site-story-torrents');
    assert.deepEqual(alice.problems, []);
    assert.deepEqual(bob.problems, []);
  } finally {
    await Promise.all(peers.map(stopPeer));
    await alice.close();
    await bob.close();
  }
});
