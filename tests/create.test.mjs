// /create, the torrent creator, in headless Chromium (playwright-core
// driving Debian's chromium): files are hashed in the browser, the
// .torrent comes down as a download, is checked against references that
// know nothing of the page (npm bencode, node:crypto), and real clients
// move the files through the tracker with it (libtorrent seeds; aria2,
// or libtorrent for v2, downloads). axe-core checks the page; screenshots
// land in test-results/create-*.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bencode from 'bencode';
import { ROOT, startTracker, eventually } from './helpers.mjs';
import { launch, newContext, checkAxe, screenshot, skipWithoutChromium, VIEWPORTS } from './browser.mjs';
import { startPeer, stopPeer } from './clients/peers.mjs';

const OUT = join(ROOT, 'test-results', 'create');
// A folder of several files: sizes that straddle pieces, a sub-folder, a tiny file.
const FILES = { 'a.bin': 3 * 1024 * 1024 + 123, 'b/c.bin': 1536 * 1024, 'b/d.txt': 1000, 'e.bin': 700 * 1024 };
const sha1 = (b) => createHash('sha1').update(b).digest();
const sha256 = (b) => createHash('sha256').update(b).digest('hex');
const str = (b) => Buffer.from(b).toString();

let tracker;
let browser;
let work;
before(async () => {
  if (skipWithoutChromium) return;
  // Short intervals so a client that started alone learns of its partner soon.
  tracker = await startTracker({ vars: { INTERVAL: '10', MIN_INTERVAL: '5', PUBLISH_WINDOW: '1' } });
  browser = await launch();
  work = mkdtempSync(join(tmpdir(), 'edge-tracker-create-'));
});
after(async () => {
  await browser?.close();
  await tracker?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Writes `album/` of random files under `root`; returns { dir, files: { path: bytes } }. */
function makeAlbum(root) {
  const dir = join(root, 'album');
  const files = {};
  for (const [path, size] of Object.entries(FILES)) {
    const bytes = randomBytes(size);
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), bytes);
    files[path] = bytes;
  }
  return { dir, files };
}

async function openCreator(context, query = '') {
  const page = await context.newPage();
  await page.goto(`${tracker.base}/create${query}`);
  await page.waitForSelector('body[data-ready="true"]');
  return page;
}

/** Picks `folder`, creates with `format`, saves the download to `torrentPath`; returns what the page showed. */
async function createInBrowser(page, folder, format, torrentPath) {
  await page.setInputFiles('#folder', folder);
  assert.equal(await page.inputValue('#name'), 'album');
  await page.selectOption('#format', format);
  await page.click('#create');
  await page.waitForSelector('#result:not([hidden])', { timeout: 60000 });
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
  assert.equal(download.suggestedFilename(), 'album.torrent');
  await download.saveAs(torrentPath);
  return {
    infoHash: await page.textContent('#r-hash'),
    v2Hash: await page.textContent('#r-v2'),
    magnet: await page.inputValue('#magnet'),
    status: await page.textContent('#status'),
  };
}

/**
 * Checks the .torrent with npm bencode and node:crypto over the same bytes:
 * announce, files, every piece hash, the info hashes the page showed.
 */
function checkTorrent(torrentPath, files, shown, { hybrid, announce = `${tracker.base}/announce` }) {
  const t = bencode.decode(readFileSync(torrentPath));
  const info = t.info;
  assert.equal(str(t.announce), announce);
  assert.equal(str(info.name), 'album');
  assert.equal(info.private, announce.includes('/announce/') ? 1 : undefined, 'private torrents on a private tracker only');
  const pl = info['piece length'];
  const total = Object.values(files).reduce((n, b) => n + b.length, 0);
  assert.equal(pl, 16384, `${total} bytes: the smallest piece that keeps to 2,048 pieces`);
  // Files in byte-wise path order; a hybrid pads each but the last to a piece boundary.
  const listed = info.files.map((f) => [f.path.map(str).join('/'), f.length, f.attr ? str(f.attr) : '']);
  const real = listed.filter((f) => f[2] !== 'p');
  assert.deepEqual(real.map((f) => f[0]), Object.keys(files).sort());
  assert.deepEqual(real.map((f) => f[1]), Object.keys(files).sort().map((p) => files[p].length));
  const unaligned = Object.keys(files).sort().slice(0, -1).filter((p) => files[p].length % pl !== 0).length;
  assert.equal(listed.length - real.length, hybrid ? unaligned : 0, 'pad files');
  const stream = Buffer.concat(listed.map(([path, length, attr]) => (attr === 'p' ? Buffer.alloc(length) : files[path])));
  const want = [];
  for (let i = 0; i < stream.length; i += pl) want.push(sha1(stream.subarray(i, i + pl)));
  assert.ok(Buffer.from(info.pieces).equals(Buffer.concat(want)), 'every v1 piece hash matches the bytes');
  const infoBytes = bencode.encode(info);
  assert.equal(shown.infoHash, sha1(infoBytes).toString('hex'));
  assert.match(shown.magnet, new RegExp(`^magnet:\\?xt=urn:btih:${shown.infoHash}&`));
  if (hybrid) {
    assert.equal(info['meta version'], 2);
    assert.equal(shown.v2Hash, createHash('sha256').update(infoBytes).digest('hex'));
    assert.ok(shown.magnet.includes(`xt=urn:btmh:1220${shown.v2Hash}`));
    // Files over one piece have a layer: a.bin, b/c.bin and e.bin.
    assert.equal(Object.keys(t['piece layers']).length, 3);
  } else {
    assert.equal(info['meta version'], undefined);
    assert.equal(t['piece layers'], undefined);
  }
}

/** One client seeds `album/` from `seedRoot`, another downloads it; every file's sha256 matches. */
function transfer(name, torrentPath, seedRoot, files, clients) {
  return transferPair(name, { seedTorrent: torrentPath, leechTorrent: torrentPath }, seedRoot, files, clients);
}

async function transferPair(name, { seedTorrent, leechTorrent }, seedRoot, files, { seeder = 'libtorrent', leecher = 'aria2' } = {}) {
  const dir = join(OUT, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'leech'), { recursive: true });
  const peers = [];
  try {
    peers.push(await startPeer(seeder, { torrentPath: seedTorrent, dir: seedRoot, seed: true }, join(dir, `seeder-${seeder}.log`)));
    peers.push(await startPeer(leecher, { torrentPath: leechTorrent, dir: join(dir, 'leech') }, join(dir, `leecher-${leecher}.log`)));
    const got = (path) => join(dir, 'leech', 'album', path);
    const complete = () => Object.entries(files).every(([path, bytes]) =>
      existsSync(got(path)) && readFileSync(got(path)).length === bytes.length && sha256(readFileSync(got(path))) === sha256(bytes));
    await eventually(complete, { ms: 120000, every: 500 });
    for (const [path, bytes] of Object.entries(files)) assert.equal(sha256(readFileSync(got(path))), sha256(bytes), path);
  } finally {
    await Promise.all(peers.map(stopPeer));
  }
  rmSync(join(dir, 'leech'), { recursive: true, force: true });
}

const skip = skipWithoutChromium;

test('public: a v1 torrent made in the browser moves a folder from libtorrent to aria2', { skip, timeout: 300000 }, async () => {
  const root = join(work, 'v1');
  const { dir, files } = makeAlbum(root);
  const context = await newContext(browser, { viewport: VIEWPORTS.desktop, acceptDownloads: true });
  try {
    // The dashboard links here; the page comes with the site's strict CSP.
    assert.match(await (await fetch(`${tracker.base}/`)).text(), /href="\/create"/);
    const csp = (await fetch(`${tracker.base}/create`)).headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/);
    const page = await openCreator(context);
    assert.equal(await page.textContent('#announce'), `${tracker.base}/announce`);
    await checkAxe(page, '/create (empty)');
    await screenshot(page, 'create-empty-desktop');
    const torrentPath = join(root, 'album.torrent');
    const shown = await createInBrowser(page, dir, 'v1', torrentPath);
    assert.match(shown.status, /^Done: 5\.\d\d MiB hashed/);
    checkTorrent(torrentPath, files, shown, { hybrid: false });
    await checkAxe(page, '/create (result)');
    for (const [width, viewport] of Object.entries(VIEWPORTS)) {
      await page.setViewportSize(viewport);
      await screenshot(page, `create-${width}`);
    }
    // The page at a medium width, for the README (docs/create.png).
    await page.setViewportSize({ width: 800, height: 900 });
    await page.locator('main').screenshot({ path: join(ROOT, 'test-results', 'create-main.png') });
    assert.deepEqual(context.problems, [], 'no script error, no CSP violation');
    await transfer('v1-libtorrent-seeds-aria2-leeches', torrentPath, root, files, { seeder: 'libtorrent', leecher: 'aria2' });
  } finally {
    await context.close();
  }
});

test('public: a hybrid v1+v2 torrent made in the browser moves a folder between libtorrent peers', { skip, timeout: 300000 }, async () => {
  const root = join(work, 'hybrid');
  const { dir, files } = makeAlbum(root);
  const context = await newContext(browser, { acceptDownloads: true });
  try {
    const page = await openCreator(context);
    const torrentPath = join(root, 'album.torrent');
    const shown = await createInBrowser(page, dir, 'hybrid', torrentPath);
    checkTorrent(torrentPath, files, shown, { hybrid: true });
    assert.deepEqual(context.problems, []);
    // libtorrent 2 checks the v2 merkle hashes of what it downloads.
    await transfer('hybrid-libtorrent-seeds-libtorrent-leeches', torrentPath, root, files, { seeder: 'libtorrent', leecher: 'libtorrent' });
  } finally {
    await context.close();
  }
});

test('files dropped on the page are taken; hashing can be cancelled; a form without files says what is missing', { skip, timeout: 120000 }, async () => {
  const root = join(work, 'cancel');
  mkdirSync(root, { recursive: true });
  // A sparse 4 GiB file: no disk, and seconds of hashing to cancel in.
  const big = join(root, 'big.iso');
  writeFileSync(big, '');
  truncateSync(big, 4 * 1024 ** 3);
  const context = await newContext(browser);
  try {
    const page = await openCreator(context);
    await page.click('#create');
    assert.equal(await page.textContent('#error'), 'Choose files or a folder first.');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'files', 'focus goes to what is missing');
    await page.evaluate(() => {
      const dt = new DataTransfer();
      dt.items.add(new File(['hello'], 'a.txt'));
      dt.items.add(new File(['world!'], 'b.txt'));
      document.getElementById('drop').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    });
    await page.waitForFunction(() => document.getElementById('chosen').textContent === '2 files, 11 bytes.');
    assert.equal(await page.inputValue('#name'), 'new torrent', 'loose files get a name to edit');
    assert.equal(await page.textContent('#error'), '');
    await page.setInputFiles('#files', big);
    assert.equal(await page.inputValue('#name'), 'big.iso');
    await page.selectOption('#piece', '16384');
    await page.click('#create');
    assert.match(await page.textContent('#error'), /^16\.0 KiB pieces are too small for 4\.00 GiB \(262,144 pieces\)/);
    await page.selectOption('#piece', 'auto');
    await page.click('#create');
    await page.waitForFunction(() => document.getElementById('progress').value > 0);
    assert.equal(await page.evaluate(() => document.activeElement.id), 'cancel', 'focus moves to Cancel');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#cancel', { state: 'hidden' });
    assert.equal(await page.textContent('#status'), 'Cancelled. Nothing was created.');
    assert.equal(await page.isVisible('#result'), false);
    assert.equal(await page.isEnabled('#create'), true);
    assert.equal(await page.evaluate(() => document.activeElement.id), 'create', 'focus returns to Create');
    assert.deepEqual(context.problems, []);
  } finally {
    await context.close();
  }
});

async function api(base, method, path, { token, json } = {}) {
  const headers = { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(json ? { 'content-type': 'application/json' } : {}) };
  const res = await fetch(`${base}/api${path}`, { method, headers, body: json ? JSON.stringify(json) : undefined });
  return { status: res.status, buf: Buffer.from(await res.arrayBuffer()) };
}

async function member(base, username) {
  const password = `pw-${username}-secret`;
  assert.equal((await api(base, 'POST', '/users', { json: { username, password } })).status, 201);
  const token = JSON.parse((await api(base, 'POST', '/login', { json: { username, password } })).buf).token;
  const me = JSON.parse((await api(base, 'GET', '/me', { token })).buf);
  return { token, announce: me.announce_url };
}

const PRIVATE = { TRACKER_MODE: 'private', PASSWORD_ROUNDS: '1000', INTERVAL: '10', MIN_INTERVAL: '5', PUBLISH_WINDOW: '1', CREDIT_FLUSH: '1' };

test('private: a member creates, registers in one click, and seeds the personal copy to another member', { skip, timeout: 300000 }, async () => {
  const priv = await startTracker({ vars: PRIVATE });
  const root = join(work, 'private');
  const { dir, files } = makeAlbum(root);
  const alice = await member(priv.base, 'alice');
  const bob = await member(priv.base, 'bob');
  const context = await newContext(browser, { acceptDownloads: true });
  try {
    // Signed out: the page asks for a sign-in and creates nothing.
    const page = await context.newPage();
    await page.goto(`${priv.base}/create`);
    await page.waitForSelector('body[data-ready="true"]');
    assert.equal(await page.isVisible('#signin'), true);
    assert.equal(await page.isEnabled('#create'), false);
    await checkAxe(page, '/create (private, signed out)');
    // Signed in with the site's session cookie (HttpOnly: the page never sees it).
    const signedIn = await page.evaluate(async (body) => (await fetch('/api/session', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
    })).status, { username: 'alice', password: 'pw-alice-secret' });
    assert.equal(signedIn, 200);
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    assert.equal(await page.isVisible('#signin'), false);
    assert.equal(await page.textContent('#announce'), `${priv.base}/announce/<your passkey>`);
    assert.equal(await page.isVisible('#webseeds'), false, 'no web seeds on a private tracker');
    const made = join(root, 'made.torrent');
    const shown = await createInBrowser(page, dir, 'v1', made);
    checkTorrent(made, files, shown, { hybrid: false, announce: alice.announce });
    await checkAxe(page, '/create (private, result)');
    for (const [width, viewport] of Object.entries(VIEWPORTS)) {
      await page.setViewportSize(viewport);
      await screenshot(page, `create-private-${width}`);
    }

    await page.click('#register');
    await page.waitForSelector('#personal:not([hidden])');
    assert.match(await page.textContent('#status'), /^Registered\./);
    const personal = join(root, 'alice.torrent');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#personal')]);
    await download.saveAs(personal);
    const copy = bencode.decode(readFileSync(personal));
    assert.equal(str(copy.announce), alice.announce);
    assert.equal(sha1(bencode.encode(copy.info)).toString('hex'), shown.infoHash, 'the personal copy is the same torrent');
    assert.deepEqual(context.problems, []);

    const bobs = join(root, 'bob.torrent');
    const fetched = await api(priv.base, 'GET', `/torrents/${shown.infoHash}.torrent`, { token: bob.token });
    assert.equal(fetched.status, 200);
    writeFileSync(bobs, fetched.buf);
    await transferPair('private-libtorrent-seeds-aria2-leeches', { seedTorrent: personal, leechTorrent: bobs }, root, files);
  } finally {
    await context.close();
    await priv.close();
  }
});
