// Real BitTorrent clients for the tests (tests/clients.test.mjs, which has
// the full matrix, and the browser stories): start libtorrent, aria2,
// transmission or webtorrent as seeder or leecher of a .torrent, with DHT,
// PEX and local discovery off (the tracker is the only peer source), on a
// free port below Linux's ephemeral range: inside it, an outgoing
// connection of this machine could hold the port (aria2 once failed
// "Address already in use" on 41089 and never seeded).
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { ROOT } from '../helpers.mjs';

let nextPort = 20000 + Math.floor(Math.random() * 10000);

/** The next port from `nextPort` that nothing listens on now (below 32768). */
export async function freePort() {
  for (;;) {
    const port = nextPort++;
    if (nextPort >= 32000) nextPort = 20000;
    const free = await new Promise((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '0.0.0.0', () => srv.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

const COMMANDS = {
  libtorrent: ({ torrentPath, dir, port, seed, minAnnounceInterval }) => [
    '/usr/bin/python3',
    [join(ROOT, 'tests/clients/lt_client.py'), '--torrent', torrentPath, '--save', dir, '--port', String(port), ...(seed ? ['--seed'] : []),
      ...(minAnnounceInterval ? ['--min-announce-interval', String(minAnnounceInterval)] : [])],
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

/** Starts `name` (a key of `COMMANDS`); its output goes to `logPath`. */
export async function startPeer(name, { torrentPath, dir, seed = false, minAnnounceInterval }, logPath) {
  const [cmd, args] = COMMANDS[name]({ torrentPath, dir, seed, minAnnounceInterval, port: await freePort() });
  const log = createWriteStream(logPath);
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  child.on('error', (e) => log.write(`spawn error: ${e}\n`));
  return child;
}

/** Stops a peer and its process group: TERM, then KILL after 5 s. */
export function stopPeer(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch {} }, 5000);
    child.once('exit', () => { clearTimeout(timer); resolve(); });
    try { process.kill(-child.pid, 'SIGTERM'); } catch { resolve(); }
  });
}
