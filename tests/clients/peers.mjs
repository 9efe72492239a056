// Real BitTorrent clients for the browser stories (tests/create.test.mjs):
// start libtorrent or aria2 as seeder or leecher of a .torrent, with DHT,
// PEX and local discovery off (the tracker is the only peer source), on a
// free port below Linux's ephemeral range. The same switches as
// tests/clients.test.mjs, which has the full matrix.
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
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
};

/** Starts `name` ('libtorrent' or 'aria2'); its output goes to `logPath`. */
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
