// npm run bench, torrent creation: hashing a 1 GiB file in headless
// Chromium on /create (Debian chromium via playwright-core), as v1 with 1
// and 2 Web Workers and as hybrid v1+v2. The file is on disk in a temp
// dir (in the page cache after the first read, as a recently written file
// is). Each run is bounded (CREATE_BENCH_TIMEOUT seconds). The v1 info hash
// is checked against node:crypto over the same file. Writes
// bench-results/create.json and bench-results/create.md.
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir, cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import bencode from 'bencode';
import { ROOT, startTracker } from '../tests/helpers.mjs';
import { launch, newContext } from '../tests/browser.mjs';

const OUT = join(ROOT, 'bench-results');
const SIZE = Number(process.env.CREATE_BENCH_BYTES ?? 2 ** 30);
const TIMEOUT = Number(process.env.CREATE_BENCH_TIMEOUT ?? 180) * 1000;
const RUNS = [
  { label: 'v1, 1 worker', format: 'v1', workers: 1 },
  { label: 'v1, 2 workers', format: 'v1', workers: 2 },
  { label: 'v1, automatic (one worker per core, up to 4)', format: 'v1', workers: 0 },
  { label: 'hybrid v1+v2', format: 'hybrid', workers: 0 },
];
const log = (...a) => console.log('[bench:create]', ...a);

/** The file: 1 GiB of a random 16 MiB block, repeated. */
function makeFile(dir) {
  const path = join(dir, 'one-gib.bin');
  const block = randomBytes(16 * 1024 * 1024);
  const fd = openSync(path, 'w');
  for (let at = 0; at < SIZE; at += block.length) writeSync(fd, block, 0, Math.min(block.length, SIZE - at));
  closeSync(fd);
  return path;
}

/** The v1 info hash node computes for the file, with the page's piece length. */
function referenceHash(path, torrent) {
  const info = bencode.decode(torrent).info;
  const pl = info['piece length'];
  const data = readFileSync(path);
  const pieces = [];
  for (let i = 0; i < data.length; i += pl) pieces.push(createHash('sha1').update(data.subarray(i, i + pl)).digest());
  const mine = { ...info, pieces: Buffer.concat(pieces) };
  return createHash('sha1').update(bencode.encode(mine)).digest('hex');
}

async function run(page, base, file, { format, workers }) {
  await page.goto(`${base}/create${workers ? `?workers=${workers}` : ''}`);
  await page.waitForSelector('body[data-ready="true"]');
  await page.setInputFiles('#files', file);
  await page.selectOption('#format', format);
  await page.click('#create');
  await page.waitForSelector('#status[data-mbps]', { timeout: TIMEOUT });
  const mbps = Number(await page.getAttribute('#status', 'data-mbps'));
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
  const torrent = readFileSync(await download.path());
  return { mbps, infoHash: await page.textContent('#r-hash'), torrent };
}

const dir = mkdtempSync(join(tmpdir(), 'edge-tracker-create-bench-'));
const tracker = await startTracker();
const browser = await launch();
// The load average says how much else ran on the cores meanwhile.
const results = { date: new Date().toISOString(), machine: `${cpus().length} cores`, bytes: SIZE, load_before: loadavg()[0], runs: [] };
try {
  const file = makeFile(dir);
  const context = await newContext(browser, { acceptDownloads: true });
  const page = await context.newPage();
  // A first pass warms the page cache and the browser's code caches.
  await run(page, tracker.base, file, RUNS[1]);
  for (const r of RUNS) {
    const got = await run(page, tracker.base, file, r);
    const checked = r.format === 'v1' ? referenceHash(file, got.torrent) === got.infoHash : null;
    if (checked === false) throw new Error(`${r.label}: the page's info hash differs from node's`);
    results.runs.push({ ...r, mb_per_s: got.mbps, info_hash_checked: checked });
    log(`${r.label}: ${got.mbps} MB/s`);
  }
  results.hardware_concurrency = await page.evaluate(() => navigator.hardwareConcurrency);
  results.load_after = loadavg()[0];
  await context.close();
} finally {
  await browser.close();
  await tracker.close();
  rmSync(dir, { recursive: true, force: true });
}
mkdirSync(OUT, { recursive: true });
writeFileSync(join(OUT, 'create.json'), JSON.stringify(results, null, 2) + '\n');
const md = `# Torrent creation in the browser (${results.date}, ${results.machine})

Hashing a ${(SIZE / 2 ** 30).toFixed(2)} GiB file on /create in headless Chromium (MB = 10^6 bytes; goal >= 300 MB/s).
Load average (1 min) before / after: ${results.load_before.toFixed(1)} / ${results.load_after?.toFixed(1)}.

| run | MB/s |
|---|---|
${results.runs.map((r) => `| ${r.label} | ${r.mb_per_s.toFixed(0)} |`).join('\n')}
`;
writeFileSync(join(OUT, 'create.md'), md);
console.log(md);
