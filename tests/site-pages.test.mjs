// Every page of the private site in headless Chromium: a member registers,
// signs in, uploads, browses, opens a torrent, manages the account; an
// admin member uses the admin pages. axe-core must find no serious or
// critical violation on any page, signed in or out, at phone and desktop
// widths; screenshots of each land in test-results/site-*.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import bencode from 'bencode';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTracker, ADMIN_TOKEN } from './helpers.mjs';
import { makeTorrentFromData } from './torrent.mjs';
import { launch, newContext, shootEverywhere, checkAxe, screenshot, skipWithoutChromium } from './browser.mjs';

const VARS = { TRACKER_MODE: 'private', PASSWORD_ROUNDS: '1000', PUBLISH_WINDOW: '1' };
const skip = skipWithoutChromium;
const NAMES = ['Ubuntu 24.04 Desktop.iso', 'Big Buck Bunny (1080p).mkv', 'Sintel soundtrack.flac'];

let t;
let browser;
const dir = mkdtempSync(join(tmpdir(), 'edge-tracker-site-'));
before(async () => {
  if (skip) return;
  t = await startTracker({ vars: VARS });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await t?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function register(page, username, password) {
  await page.goto(`${t.base}/`);
  await page.waitForSelector('body[data-ready="true"]');
  const form = page.locator('#register');
  await form.getByLabel('Username').fill(username);
  await form.getByLabel('Password').fill(password);
  await form.getByRole('button', { name: 'Create account' }).click();
  await page.waitForURL(`${t.base}/me`);
  await page.waitForSelector('body[data-ready="true"]');
}

test('signed out: / is sign-in and registration; a wrong password is said in words; pages send visitors to sign in', { skip, timeout: 120000 }, async () => {
  const context = await newContext(browser);
  await shootEverywhere(context, `${t.base}/`, 'site-signin');
  const page = await context.newPage();
  await page.goto(`${t.base}/`);
  await page.waitForSelector('body[data-ready="true"]');
  assert.equal(await page.locator('#invite-label').isHidden(), true, 'no invite field unless INVITE_ONLY');
  // By keyboard alone: type, Tab to the password, Enter submits.
  await page.locator('#signin').getByLabel('Username').focus();
  await page.keyboard.type('nobody');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.name), 'password');
  await page.keyboard.type('not-the-password');
  await page.keyboard.press('Enter');
  const alert = page.locator('#signin-status[role="alert"]');
  await alert.filter({ hasText: 'Wrong username or password.' }).waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.name), 'password', 'focus stays on the password to retry');
  await checkAxe(page, 'sign-in with an error');
  for (const path of ['/torrents', '/me', '/upload', '/admin']) {
    await page.goto(`${t.base}${path}`);
    await page.waitForURL(`${t.base}/`);
  }
  assert.deepEqual(context.problems.filter((p) => !/401/.test(p)), []);
  await context.close();
});

/** Upload: a torrent that is not private is refused in words, private ones registered. Returns their hashes. */
async function uploadSteps(context, page) {
  await shootEverywhere(context, `${t.base}/upload`, 'site-upload');
  await page.goto(`${t.base}/upload`);
  await page.waitForSelector('body[data-ready="true"]');
  const publicOne = makeTorrentFromData('public.bin', randomBytes(1000), 'http://x/announce');
  writeFileSync(join(dir, 'public.torrent'), publicOne.torrent);
  await page.getByLabel('Torrent file').setInputFiles(join(dir, 'public.torrent'));
  await page.getByRole('button', { name: 'Upload' }).click();
  await page.locator('#upload-status').filter({ hasText: 'must be marked private' }).waitFor();
  await checkAxe(page, 'upload with an error');
  const hashes = [];
  for (const [i, name] of NAMES.entries()) {
    const made = makeTorrentFromData(name, randomBytes(1000 * (i + 1) * 1024), 'http://x/announce', { private: true });
    writeFileSync(join(dir, `${i}.torrent`), made.torrent);
    await page.getByLabel('Torrent file').setInputFiles(join(dir, `${i}.torrent`));
    await page.getByRole('button', { name: 'Upload' }).click();
    await page.locator('#upload-status').filter({ hasText: `“${name}” is registered.` }).waitFor();
    hashes.push(made.infoHash.toString('hex'));
  }
  await screenshot(page, 'site-upload-done');
  return hashes;
}

/** Browse, search by name, sort by size. */
async function browseSteps(context, page) {
  await shootEverywhere(context, `${t.base}/torrents`, 'site-torrents');
  await page.goto(`${t.base}/torrents`);
  await page.waitForSelector('body[data-ready="true"]');
  assert.equal(await page.locator('#list tbody tr').count(), 3);
  await page.getByLabel('Name').fill('bunny');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.waitForURL(/q=bunny/);
  await page.waitForSelector('body[data-ready="true"]');
  assert.deepEqual(await page.locator('#list tbody tr td.name a').allTextContents(), ['Big Buck Bunny (1080p).mkv']);
  await page.getByLabel('Name').fill('');
  await page.getByLabel('Sort by').selectOption('size');
  await page.getByLabel('Order').selectOption('asc');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.waitForURL(/sort=size/);
  await page.waitForSelector('body[data-ready="true"]');
  assert.deepEqual(await page.locator('#list tbody tr td.name a').allTextContents(), NAMES);
}

/** One torrent (made freeleech): details, files, magnet, the personal download. Returns /api/me. */
async function torrentSteps(context, page, hash) {
  const r = await fetch(`${t.base}/api/admin/torrents/${hash}/freeleech`, {
    method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: '{"freeleech":true}' });
  assert.equal(r.status, 200);
  await shootEverywhere(context, `${t.base}/torrents/${hash}`, 'site-torrent');
  await page.goto(`${t.base}/torrents/${hash}`);
  await page.waitForSelector('body[data-ready="true"]');
  assert.equal(await page.locator('h1').textContent(), NAMES[0]);
  assert.equal(await page.locator('#freeleech').isVisible(), true);
  const me = await page.evaluate(() => fetch('/api/me').then((x) => x.json()));
  assert.match(await page.locator('#magnet').inputValue(), new RegExp(`xt=urn:btih:${hash}.*${me.passkey}`));
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download .torrent' }).click()]);
  const saved = join(dir, 'personal.torrent');
  await download.saveAs(saved);
  assert.equal(Buffer.from(bencode.decode(readFileSync(saved)).announce).toString(), `${t.base}/announce/${me.passkey}`);
  return me;
}

/** The account page: totals, the rule in words, the announce URL, own torrents, password, passkey. */
async function accountSteps(context, page, me) {
  await shootEverywhere(context, `${t.base}/me`, 'site-me');
  await page.goto(`${t.base}/me`);
  await page.waitForSelector('body[data-ready="true"]');
  assert.match(await page.locator('#may-leech').textContent(), /You may start new downloads\. The rule: after your first 10\.0 GiB downloaded/);
  assert.equal(await page.locator('#announce').inputValue(), `${t.base}/announce/${me.passkey}`);
  assert.equal(await page.locator('#mine tbody tr').count(), 3);
  const pw = page.locator('#password');
  await pw.getByLabel('Current password').fill('wrong-password');
  await pw.getByLabel('New password').fill('alice-password-2');
  await pw.getByRole('button', { name: 'Change password' }).click();
  await page.locator('#password-status').filter({ hasText: 'Wrong password.' }).waitFor();
  await pw.getByLabel('Current password').fill('alice-password');
  await pw.getByRole('button', { name: 'Change password' }).click();
  await page.locator('#password-status').filter({ hasText: 'Password changed.' }).waitFor();
  page.once('dialog', (d) => d.accept());
  await page.getByRole('button', { name: 'Get a new passkey' }).click();
  await page.locator('#announce-status').filter({ hasText: 'New passkey made.' }).waitFor();
  assert.notEqual(await page.locator('#announce').inputValue(), `${t.base}/announce/${me.passkey}`);
  await checkAxe(page, 'account after changes');
}

test('a member: registers, uploads, finds, opens and downloads a torrent, manages the account; every page passes axe', { skip, timeout: 240000 }, async () => {
  const context = await newContext(browser);
  const page = await context.newPage();
  await register(page, 'alice', 'alice-password');
  // The session cookie is HttpOnly, Secure, SameSite=Strict: no script sees it.
  const session = (await context.cookies(t.base)).find((c) => c.name === '__Host-session');
  assert.ok(session, 'cookie set');
  assert.deepEqual([session.httpOnly, session.secure, session.sameSite], [true, true, 'Strict']);
  assert.equal(await page.evaluate(() => document.cookie), '');

  const hashes = await uploadSteps(context, page);
  await browseSteps(context, page);
  const me = await torrentSteps(context, page, hashes[0]);
  await accountSteps(context, page, me);

  // Sign out: back to /, and the cookie no longer opens anything.
  const current = (await context.cookies(t.base)).find((c) => c.name === '__Host-session');
  await page.getByRole('button', { name: /^Sign out \(alice\)$/ }).click();
  await page.waitForURL(`${t.base}/`);
  const dead = await fetch(`${t.base}/api/me`, { headers: { cookie: `__Host-session=${current.value}` } });
  assert.equal(dead.status, 401, 'the old cookie is dead after sign-out');
  assert.deepEqual(context.problems, []);
  await context.close();
});

test('private mode: the operator dashboard at /dashboard passes axe', { skip, timeout: 120000 }, async () => {
  const context = await newContext(browser);
  await shootEverywhere(context, `${t.base}/dashboard`, 'site-dashboard-private');
  assert.deepEqual(context.problems, []);
  await context.close();
});

test('an admin member: the admin pages work with the cookie alone; a non-admin is told so', { skip, timeout: 180000 }, async () => {
  const context = await newContext(browser);
  const page = await context.newPage();
  await register(page, 'root-admin', 'admin-password');
  await page.goto(`${t.base}/admin`);
  await page.getByRole('alert').filter({ hasText: 'This page is for admin members.' }).waitFor();
  await checkAxe(page, 'admin page, not an admin');
  const r = await fetch(`${t.base}/api/admin/users/root-admin/admin`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  assert.equal(r.status, 200);
  await page.goto(`${t.base}/admin`);
  await page.waitForSelector('body[data-ready="true"]');
  assert.equal(await page.getByRole('link', { name: 'Admin' }).count(), 1, 'the menu shows Admin');
  // Invite, client ban, block, freeleech, ban and adjust a user: all by cookie.
  await page.getByRole('button', { name: 'Create an invite code' }).click();
  await page.locator('#invite-status').filter({ hasText: 'Invite code created.' }).waitFor();
  assert.match(await page.locator('#invite-code').inputValue(), /^[0-9a-f]{32}$/);
  await page.locator('#ban').getByLabel('Prefix').fill('-XX0001-');
  await page.getByRole('button', { name: 'Ban client' }).click();
  await page.getByRole('button', { name: 'Unban -XX0001-' }).waitFor();
  const hash = 'ab'.repeat(20);
  await page.locator('#block').getByLabel('Info hash').fill(hash);
  await page.getByRole('button', { name: 'Block torrent' }).click();
  await page.locator('#blocked code').filter({ hasText: hash }).waitFor();
  await page.locator('#freeleech').getByLabel('Info hash').fill('cd'.repeat(20));
  await page.locator('#freeleech').getByRole('button', { name: 'Set' }).click();
  await page.locator('#freeleech-status').filter({ hasText: 'No such torrent.' }).waitFor();
  await page.getByRole('button', { name: 'Ban alice' }).click();
  await page.getByRole('button', { name: 'Unban alice' }).waitFor();
  const adjust = page.locator('#adjust');
  await adjust.getByLabel('Username').fill('alice');
  await adjust.getByLabel('Add to uploaded (bytes)').fill('1048576');
  await adjust.getByRole('button', { name: 'Adjust' }).click();
  await page.locator('#users-status').filter({ hasText: 'alice now has 1.00 MiB uploaded' }).waitFor();
  await page.getByRole('button', { name: 'Unban alice' }).click();
  await page.getByRole('button', { name: 'Ban alice' }).waitFor();
  assert.ok(await page.locator('#flags-status').textContent(), 'the flags section says something');
  await checkAxe(page, 'admin after actions');
  await shootEverywhere(context, `${t.base}/admin`, 'site-admin');
  assert.deepEqual(context.problems.filter((p) => !/40[34]/.test(p)), []);
  await context.close();
});

test('cookie and CSRF in the browser: a form posted from another origin is refused, even with the cookie', { skip, timeout: 120000 }, async () => {
  const context = await newContext(browser);
  const page = await context.newPage();
  await register(page, 'victim', 'victim-password');
  const before = await page.evaluate(() => fetch('/api/me').then((x) => x.json()));
  // Another origin on the same machine (same site: the SameSite cookie IS
  // sent), whose page posts a form to the tracker.
  const evil = createServer((req, res) => {
    res.setHeader('content-type', 'text/html');
    res.end(`<!doctype html><title>evil</title><form id="f" method="post" action="${t.base}/api/me/passkey" enctype="text/plain">
      <input name="x" value="y"></form><script>document.getElementById('f').submit()</script>`);
  });
  await new Promise((res) => evil.listen(0, '127.0.0.1', res));
  try {
    const answer = page.waitForResponse((r) => r.url() === `${t.base}/api/me/passkey`);
    await page.goto(`http://127.0.0.1:${evil.address().port}/`);
    const resp = await answer;
    assert.equal(resp.status(), 403);
    assert.match((await resp.json()).error, /cross-origin/);
  } finally {
    evil.close();
  }
  await page.goto(`${t.base}/me`);
  await page.waitForSelector('body[data-ready="true"]');
  const afterwards = await page.evaluate(() => fetch('/api/me').then((x) => x.json()));
  assert.equal(afterwards.passkey, before.passkey, 'the passkey did not change');
  await context.close();
});

test('invite-only: / asks for an invite code; a wrong one is said in words, a good one lets the visitor in', { skip, timeout: 120000 }, async () => {
  const inv = await startTracker({ vars: { ...VARS, INVITE_ONLY: 'true' } });
  const context = await newContext(browser);
  try {
    const page = await context.newPage();
    await page.goto(`${inv.base}/`);
    await page.waitForSelector('body[data-ready="true"]');
    const form = page.locator('#register');
    assert.equal(await form.getByLabel('Invite code').isVisible(), true);
    await checkAxe(page, 'sign-in, invite-only');
    await form.getByLabel('Username').fill('newbie');
    await form.getByLabel('Password').fill('newbie-password');
    await form.getByLabel('Invite code').fill('0'.repeat(32));
    await form.getByRole('button', { name: 'Create account' }).click();
    await page.locator('#register-status').filter({ hasText: 'Invalid or already used invite code.' }).waitFor();
    const r = await fetch(`${inv.base}/api/admin/invites`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    const { invite } = await r.json();
    await form.getByLabel('Invite code').fill(invite);
    await form.getByRole('button', { name: 'Create account' }).click();
    await page.waitForURL(`${inv.base}/me`);
    assert.deepEqual(context.problems.filter((p) => !/40[13]/.test(p)), []);
  } finally {
    await context.close();
    await inv.close();
  }
});
