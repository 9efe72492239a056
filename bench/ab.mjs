// Interleaved A/B of tracker builds against the floor: the floor and each
// tracker (a checkout with its own build/, e.g. `git archive` of a commit
// plus a copy of its build/) run side by side in one process, every tracker
// keeps its state in /dev/shm, every target joins the same 100k-peer mix,
// then rounds of steady traffic, each after an uncounted warm-up (lib.mjs
// `steadyRound`), go to each target in turn (alternating the order) while
// the workerd process's CPU time is read from /proc. Prints each round's
// rate, CPU per request and RSS, then the medians and the best-round
// ratios. Not part of `npm run bench`; used to tell small
// changes apart on a noisy machine (BENCHMARKS.md).
// node bench/ab.mjs <peers> <join s> <round s> <rounds> <dir> [<dir> ...]
// (from a working directory the checkouts do not climb out of with "..",
// e.g. /tmp: Miniflare refuses such script paths).
import { readFileSync } from 'node:fs';
const [PEERS, POP, ROUND, ROUNDS, ...dirs] = process.argv.slice(2);
// AB_HOT=1: one hot swarm (every announce into one torrent, no scrapes), as
// bench/hot-swarm.mjs sends, instead of the 1,000-torrent mix.
const mix = (mode) => (process.env.AB_HOT === '1' ? ['0', mode, PEERS, '1'] : ['0.1', mode, PEERS]);
const { startFloor, runWrk, steadyRound, workerdCpu, workerdPids } = await import(`${dirs[0]}/bench/lib.mjs`);
const targets = [];
async function add(name, start) { const before = new Set(workerdPids()); const t = await start(); const pid = workerdPids().find((p) => !before.has(p)); targets.push({ name, t, pid, cpu: [], rps: [] }); }
await add('floor', () => startFloor());
const { mkdtempSync } = await import('node:fs');
for (const d of dirs) { const { startTracker } = await import(`${d}/tests/helpers.mjs`); await add(d, () => startTracker({ persistDir: mkdtempSync('/dev/shm/ab-'), assets: false, vars: { ENFORCE_MIN_INTERVAL: 'false', EXPOSE_COSTS: 'false' } })); }
try {
  for (const x of targets) { const r = runWrk({ base: x.t.base, seconds: Number(POP), connections: 64, args: mix('populate') }); console.log(x.name, 'populate', r.rps); }
  if (process.env.AB_TOGETHER === '1') {
    await together();
  } else for (let i = 0; i < Number(ROUNDS); i++) for (const x of (i % 2 ? [...targets].reverse() : targets)) {
    let c0; const r = steadyRound({ base: x.t.base, seconds: Number(ROUND), connections: 64, args: mix('steady'), before: () => { c0 = workerdCpu([x.pid]); } }); const c1 = workerdCpu([x.pid]);
    x.cpu.push(((c1 - c0) * 1e6) / r.requests); x.rps.push(r.rps);
    console.log(x.name.padEnd(12), `rps ${r.rps} cpu/req ${x.cpu.at(-1).toFixed(1)}us fail ${r.failures} non2xx ${r.non2xx} errors ${r.errors} rssMB ${(Number(readFileSync(`/proc/${x.pid}/statm`, "utf8").split(" ")[1]) * 4096 / 1e6).toFixed(0)}`);
  }
  report();
} finally { for (const x of targets) await x.t.close(); }

// AB_TOGETHER=1: every round loads all targets at once (wrk each, the
// connections split evenly), so whatever else the machine does in a round
// falls on all of them alike; each target's CPU per request is compared
// within the round. Slower to saturate, but far steadier than rates.
async function together() {
  const { spawn } = await import('node:child_process');
  const wrk = (x, seconds) => new Promise((done) => {
    const c = Math.max(1, Math.round(64 / targets.length));
    const p = spawn('wrk', ['-t1', `-c${c}`, `-d${seconds}s`, '-s', `${dirs[0]}/bench/announce.lua`, x.t.base, '--', ...mix('steady')]);
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.on('close', () => done(Number(out.match(/(\d+) requests in/)?.[1] ?? NaN)));
  });
  for (let i = 0; i < Number(ROUNDS); i++) {
    await Promise.all(targets.map((x) => wrk(x, 5)));
    const c0 = targets.map((x) => workerdCpu([x.pid]));
    const n = await Promise.all(targets.map((x) => wrk(x, Number(ROUND))));
    targets.forEach((x, j) => {
      x.cpu.push(((workerdCpu([x.pid]) - c0[j]) * 1e6) / n[j]);
      x.rps.push(n[j] / Number(ROUND));
    });
    console.log(`round ${i}:`, targets.map((x) => `${x.name} ${x.cpu.at(-1).toFixed(1)}us`).join('  '));
  }
}

function report() {
  const med = (a) => { const s = [...a].sort((p, q) => p - q); return s[Math.floor(s.length / 2)]; };
  const f = targets[0];
  for (const x of targets) console.log(x.name.padEnd(12), 'median cpu/req', med(x.cpu).toFixed(1), 'best rps', Math.max(...x.rps).toFixed(0), 'cpu ratio floor/x', (med(f.cpu) / med(x.cpu)).toFixed(3), 'rps ratio', (Math.max(...x.rps) / Math.max(...f.rps)).toFixed(3));
  // Within-round ratios to the first tracker (the A of an A/B).
  if (targets.length > 2) for (const x of targets.slice(2)) {
    const r = x.cpu.map((c, i) => c / targets[1].cpu[i]);
    console.log(x.name.padEnd(12), 'cpu/req against', targets[1].name, 'median', med(r).toFixed(3), 'rounds', r.map((v) => v.toFixed(3)).join(' '));
  }
}
