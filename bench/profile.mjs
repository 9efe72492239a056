// A V8 CPU profile of the built tracker under load, through workerd's
// inspector: 10k peers join, then steady re-announces and 10% scrapes while
// the profiler samples. Prints self and inclusive time per function (wasm
// frames are unnamed: the name section is stripped). Not part of `npm run
// bench`; used to find where the time goes. node bench/profile.mjs [seconds]
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import WebSocket from 'ws';
import { Miniflare } from 'miniflare';
import { ROOT, wranglerVars } from '/work/main/tests/helpers.mjs';
const S = Number(process.argv[2] ?? 10);
const mf = new Miniflare({
  modules: true, scriptPath: join(ROOT, 'build/entry.mjs'), modulesRoot: join(ROOT, 'build'),
  modulesRules: [{ type: 'ESModule', include: ['**/*.js', '**/*.mjs'] }, { type: 'CompiledWasm', include: ['**/*.wasm'] }], compatibilityDate: '2026-04-20',
  durableObjects: { SWARMS: { className: 'SwarmObject', useSQLite: true }, STATS: { className: 'StatsObject', useSQLite: true }, GATEWAYS: { className: 'SocketGateway', useSQLite: true } },
  kvNamespaces: ['TRACKER_KV'], d1Databases: ['DB'], bindings: { ...wranglerVars(), ENFORCE_MIN_INTERVAL: 'false' },
  cf: false, host: '127.0.0.1', port: 0, inspectorPort: 9333,
});
const base = (await mf.ready).href.replace(/\/$/, '');
const run = (s) => new Promise((res) => { const p = spawn('wrk', ['-t1', '-c64', `-d${s}s`, '-s', join(ROOT, 'bench/announce.lua'), base, '--', '0.1', process.env.POP ? 'populate' : 'steady', '10000'], { stdio: 'pipe' }); let o=''; p.stdout.on('data', d=>o+=d); p.on('close', () => res(o)); });
process.env.POP='1'; await run(S); delete process.env.POP;
const targets = await (await fetch('http://127.0.0.1:9333/json')).json();
console.log(targets.map(t => t.id));
const t = targets.find(t => t.id.includes('core:user'));
const ws = new WebSocket(t.webSocketDebuggerUrl);
await new Promise(r => ws.on('open', r));
let id = 0; const pending = new Map();
ws.on('message', (m) => { const d = JSON.parse(m); if (pending.has(d.id)) { pending.get(d.id)(d); pending.delete(d.id); } });
const call = (method, params = {}) => new Promise(r => { const i = ++id; pending.set(i, r); ws.send(JSON.stringify({ id: i, method, params })); });
await call('Profiler.enable'); await call('Profiler.setSamplingInterval', { interval: 200 }); await call('Profiler.start');
const out = await run(S);
const prof = (await call('Profiler.stop')).result.profile;
console.log(out.match(/Requests\/sec.*/)?.[0]);
const self = new Map(); const byId = new Map(prof.nodes.map(n => [n.id, n]));
const counts = new Map(); for (const s of prof.samples) counts.set(s, (counts.get(s) ?? 0) + 1);
let total = 0;
for (const [nid, c] of counts) { const n = byId.get(nid); const f = n.callFrame; const key = `${f.functionName || '(anon)'} ${f.url.split('/').pop()}:${f.lineNumber}:${f.columnNumber}`; const k2 = f.url.includes('wasm') || f.functionName.startsWith('$') || f.functionName.startsWith('wasm') ? 'WASM' : key; self.set(k2, (self.get(k2) ?? 0) + c); total += c; }
for (const [k, c] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 45)) console.log((100 * c / total).toFixed(1).padStart(5), k);
// inclusive time for selected js functions
const parent = new Map(); for (const n of prof.nodes) for (const ch of n.children ?? []) parent.set(ch, n.id);
const incl = new Map();
for (const [nid, c] of counts) { const seen = new Set(); let x = nid; while (x) { const f = byId.get(x).callFrame; const k = `${f.functionName || '(anon)'}:${f.lineNumber}:${f.columnNumber}`; if (!seen.has(k)) { seen.add(k); incl.set(k, (incl.get(k) ?? 0) + c); } x = parent.get(x); } }
console.log('--- inclusive');
for (const [k, c] of [...incl].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log((100 * c / total).toFixed(1).padStart(5), k);
ws.close(); await mf.dispose();
