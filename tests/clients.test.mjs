// End to end: real BitTorrent clients, written by others, find each other
// through the tracker and move a file. DHT, PEX and local discovery are off
// in every client, so the tracker is the only source of peers.
// Clients are installed by scripts/install-clients.sh (Debian) and npm.
// Each pair's logs stay in test-results/clients/<pair>/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { ROOT, startTracker, scrape, scrapeEntry, eventually } from './helpers.mjs';
import { makeTorrent } from './torrent.mjs';

const FILE_SIZE = 5 * 1024 * 1024;
const OUT = join(ROOT, 'test-results', 'clients');
let tracker;
// Client listen ports come from below Linux's ephemeral range (32768+):
// inside it, an outgoing connection of this machine could hold the port
// (aria2 once failed "Address already in use" on 41089 and never seeded).
let nextPort = 20000 + Math.floor(Math.random() * 10000);

/** The next port at or after `nextPort` that nothing listens on now. */
async function freePort() {
  for (;;) {
    const port = nextPort++;
    const free = await new Promise((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '0.0.0.0', () => srv.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

before(async () => {
  // Short intervals so a client that started alone learns of its partner soon.
  // Scrape follows every change: counters published to KV (SCRAPE_CACHE=0).
  tracker = await startTracker({ vars: { INTERVAL: '10', MIN_INTERVAL: '5', PUBLISH_WINDOW: '1', SCRAPE_CACHE: '0' } });
});
after(async () => { await tracker?.close(); });

/** Each client: how to start it as seeder or leecher of `torrentPath`. */
const CLIENTS = {
  libtorrent: ({ torrentPath, dir, port, seed }) => [
    '/usr/bin/python3',
    [join(ROOT, 'tests/clients/lt_client.py'), '--torrent', torrentPath, '--save', dir, '--port', String(port), ...(seed ? ['--seed'] : [])],
  ],
  aria2: ({ torrentPath, dir, port }) => [
    'aria2c',
    [
      `--dir=${dir}`, `--listen-port=${port}`, '--enable-dht=false', '--enable-dht6=false',
      '--enable-peer-exchange=false', '--bt-enable-lpd=false', '--check-integrity=true',
      '--bt-hash-check-seed=true', '--seed-ratio=0.0', '--bt-tracker-interval=5',
      '--file-allocation=none', '--summary-interval=1', '--disable-ipv6=true',
      '--console-log-level=info', '--no-conf=true', torrentPath,
    ],
  ],
  // transmission-cli reads DHT/PEX/LPD/uTP switches from settings.json in its config dir.
  transmission: ({ torrentPath, dir, port }) => {
    const config = join(dir, '..', `transmission-${port}`);
    mkdirSync(config, { recursive: true });
    writeFileSync(join(config, 'settings.json'), JSON.stringify({
      'dht-enabled': false, 'lpd-enabled': false, 'pex-enabled': false, 'utp-enabled': false,
      'port-forwarding-enabled': false, 'peer-port': port, 'bind-address-ipv4': '127.0.0.1',
      'ratio-limit-enabled': false, 'download-dir': dir,
    }));
    return ['transmission-cli', ['-g', config, '-w', dir, '-p', String(port), '-M', torrentPath]];
  },
  webtorrent: ({ torrentPath, dir, port, seed }) => [
    process.execPath,
    [join(ROOT, 'tests/clients/webtorrent_client.mjs'), '--torrent', torrentPath, '--dir', dir, '--port', String(port), ...(seed ? ['--seed'] : [])],
  ],
};

function startClient(name, opts, logPath) {
  const [cmd, args] = CLIENTS[name](opts);
  const log = createWriteStream(logPath);
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  child.on('error', (e) => log.write(`spawn error: ${e}\n`));
  return child;
}

function stopClient(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch {} }, 5000);
    child.once('exit', () => { clearTimeout(timer); resolve(); });
    try { process.kill(-child.pid, 'SIGTERM'); } catch { resolve(); }
  });
}

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
    ? startClient(seeder, { torrentPath, dir: seedDir, port: await freePort(), seed: true }, join(dir, `seeder-${seeder}.log`))
    : startClient(leecher, { torrentPath, dir: leechDir, port: await freePort(), seed: false }, join(dir, `leecher-${leecher}.log`));
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
    await Promise.all(children.map(stopClient));
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
