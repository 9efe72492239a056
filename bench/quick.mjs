// A quick throughput check while working (not the published figure, see
// bench/run.mjs): floor vs tracker on 10,000 peers, two short rounds each.
// node bench/quick.mjs [seconds]
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Miniflare } from 'miniflare';
import { ROOT, startTracker } from '../tests/helpers.mjs';

const S = Number(process.argv[2] ?? 10);
function wrk(base, seconds, mode = 'steady') {
  const r = spawnSync('wrk', ['-t1', '-c64', `-d${seconds}s`, '-s', join(ROOT, 'bench/announce.lua'), base, '--', '0.1', mode, '10000'], { encoding: 'utf8' });
  const out = r.stdout + r.stderr;
  return { rps: Number(out.match(/Requests\/sec:\s+([\d.]+)/)?.[1]), failures: out.match(/FAILURES (\d+)/)?.[1], non2xx: out.match(/Non-2xx.*: (\d+)/)?.[1] ?? 0 };
}
const floor = new Miniflare({ modules: true, scriptPath: join(ROOT, 'bench/floor/worker.js'), compatibilityDate: '2026-04-20',
  durableObjects: { FLOOR: { className: 'FloorSwarm', useSQLite: true } }, kvNamespaces: ['KV'], cf: false, host: '127.0.0.1', port: 0 });
const fbase = (await floor.ready).href.replace(/\/$/, '');
const tracker = await startTracker({ vars: { ENFORCE_MIN_INTERVAL: 'false', EXPOSE_COSTS: 'false' } });
for (const [n, b] of [['floor', fbase], ['tracker', tracker.base]]) wrk(b, 10, 'populate'); // warm: 10k joins
const res = {};
for (let i = 0; i < 2; i++) for (const [n, b] of [['floor', fbase], ['tracker', tracker.base]]) {
  const r = wrk(b, S); console.log(n, JSON.stringify(r)); res[n] = Math.max(res[n] ?? 0, r.rps);
}
console.log('ratio', (res.tracker / res.floor).toFixed(2), res);
await tracker.close(); await floor.dispose();
