// The configuration bundles for deployment, and every documented tunable
// is in wrangler.toml with the default the code uses.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, wranglerVars } from './helpers.mjs';

test('wrangler deploy --dry-run bundles the Worker with its bindings', () => {
  const out = mkdtempSync(join(tmpdir(), 'edge-tracker-dry-'));
  try {
    const r = spawnSync(join(ROOT, 'node_modules/.bin/wrangler'), ['deploy', '--dry-run', '--outdir', out], {
      cwd: ROOT,
      env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: 'true' },
      encoding: 'utf8',
      input: '',
    });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    for (const binding of ['env.SWARMS (SwarmObject)', 'env.GATEWAYS (SocketGateway)', 'env.STATS (StatsObject)', 'env.TRACKER_KV', 'env.DB', 'env.TORRENT_FILES', 'env.ASSETS']) assert.ok(r.stdout.includes(binding), binding);
    const files = readdirSync(out);
    assert.ok(files.some((f) => f.endsWith('.wasm')), files.join(','));
    // One bundle: the JS entry with worker-build's module and its hot paths.
    assert.ok(files.includes('entry.js'), files.join(','));
    const bundle = readFileSync(join(out, 'entry.js'), 'utf8');
    for (const name of ['announceNow', 'SwarmObject', 'SocketGateway', 'StatsObject']) assert.ok(bundle.includes(name), name);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('README documents every var in wrangler.toml, with the same default', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const table = new Map([...readme.matchAll(/^\| `([A-Z_]+)` \| ([^|]+) \|/gm)].map((m) => [m[1], m[2].trim()]));
  const vars = wranglerVars();
  for (const [name, value] of Object.entries(vars)) {
    assert.ok(table.has(name), `${name} is not in README's configuration table`);
    assert.equal(table.get(name), value, `${name}: README says ${table.get(name)}, wrangler.toml ${value}`);
  }
});
