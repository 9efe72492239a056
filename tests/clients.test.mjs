// End to end: real BitTorrent clients, written by others, find each other
// through the tracker and move a file. DHT, PEX and local discovery are off
// in every client, so the tracker is the only source of peers.
// Clients are installed by scripts/install-clients.sh (Debian) and npm.
// Each pair's logs stay in test-results/clients/<pair>/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, startTracker, scrape, scrapeEntry, eventually } from './helpers.mjs';
import { makeTorrent } from './torrent.mjs';
import { startPeer, stopPeer } from './clients/peers.mjs';

const FILE_SIZE = 5 * 1024 * 1024;
const OUT = join(ROOT, 'test-results', 'clients');
let tracker;

before(async () => {
  // Short intervals so a client that started alone learns of its partner soon.
  // Scrape follows every change: counters published to KV (SCRAPE_CACHE=0).
  tracker = await startTracker({ vars: { INTERVAL: '10', MIN_INTERVAL: '5', PUBLISH_WINDOW: '1', SCRAPE_CACHE: '0' } });
});
after(async () => { await tracker?.close(); });

const sha256 = (path) => createHash('sha256').update(readFileSync(path)).digest('hex');

async function transfer({ seeder, leecher, first }) {
  const name = `${seeder}-seeds-${leecher}-leeches-${first}-first`;
  const dir = join(OUT, name);
  rmSync(dir, { recursive: true, force: true });
  const seedDir = join(dir, 'seed');
  const leechDir = join(dir, 'leech');
  mkdirSync(seedDir, { recursive: true });
  mkdirSync(leechDir, { recursive: true });
  const file = join(seedDir, `${name}.bin`);
  writeFileSync(file, randomBytes(FILE_SIZE));
  const { torrent, infoHash, sha256: want } = makeTorrent(file, `${tracker.base}/announce`);
  const torrentPath = join(dir, `${name}.torrent`);
  writeFileSync(torrentPath, torrent);

  const counts = async () => scrapeEntry((await scrape(tracker.base, [infoHash])).body, infoHash);
  const start = async (role) => role === 'seeder'
    ? startPeer(seeder, { torrentPath, dir: seedDir, seed: true }, join(dir, `seeder-${seeder}.log`))
    : startPeer(leecher, { torrentPath, dir: leechDir, seed: false }, join(dir, `leecher-${leecher}.log`));
  const children = [];
  try {
    const firstRole = first;
    const secondRole = first === 'seeder' ? 'leecher' : 'seeder';
    children.push(await start(firstRole));
    // The first client is in the swarm before the second one starts.
    await eventually(async () => {
      const c = await counts();
      return c && (firstRole === 'seeder' ? c.complete === 1 : c.incomplete === 1);
    }, { ms: 60000, every: 250 });
    children.push(await start(secondRole));
    const got = join(leechDir, `${name}.bin`);
    await eventually(() => existsSync(got) && readFileSync(got).length === FILE_SIZE && sha256(got) === want,
      { ms: 120000, every: 500 });
    assert.equal(sha256(got), want);
    // Both now seed; the download is counted once.
    let last;
    const final = await eventually(async () => {
      const c = (last = await counts());
      return c && c.complete === 2 && c.incomplete === 0 && c.downloaded === 1 ? c : null;
    }, { ms: 60000, every: 500 }).catch(() => last);
    assert.deepEqual(final, { complete: 2, incomplete: 0, downloaded: 1 });
  } finally {
    await Promise.all(children.map(stopPeer));
  }
  rmSync(seedDir, { recursive: true, force: true });
  rmSync(leechDir, { recursive: true, force: true });
}

const pairs = [
  { seeder: 'libtorrent', leecher: 'aria2', first: 'seeder' },
  { seeder: 'aria2', leecher: 'libtorrent', first: 'leecher' },
  { seeder: 'webtorrent', leecher: 'libtorrent', first: 'seeder' },
  { seeder: 'libtorrent', leecher: 'webtorrent', first: 'leecher' },
  // Transmission never dials loopback peers, so it is the one dialled.
  { seeder: 'transmission', leecher: 'libtorrent', first: 'seeder' },
  { seeder: 'libtorrent', leecher: 'transmission', first: 'leecher' },
];

for (const pair of pairs) {
  test(`${pair.seeder} seeds, ${pair.leecher} downloads (${pair.first} starts first)`, { timeout: 240000 }, () => transfer(pair));
}
