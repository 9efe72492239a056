// Is a swarm object eligible for hibernation (so that idle time is never
// billed as duration)? Nothing in it may hold it in memory: no timer, no
// pending fetch, no standard WebSocket. Locally workerd evicts an idle
// object after about 10 s only if nothing holds it, so: announce into a
// few swarms, stay quiet past that, announce again, and see whether each
// answer comes from a new instance of its object (the `instance` in
// `x-swarm-usage`, a random id per in-memory instance). `vars` picks the
// objects: `SWARM_SHARDS: '0'` a torrent's own object, the default the
// shards of small swarms (whose flush alarm runs FLUSH_DELAY after the
// announces: the quiet spell then needs to be that much longer).
import { startTracker, escapeBytes } from '../tests/helpers.mjs';

const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 15);

export async function hibernationCheck({ swarms = 3, vars = {}, idle = IDLE_SECONDS } = {}) {
  const t = await startTracker({ vars: { EXPOSE_COSTS: 'true', ENFORCE_MIN_INTERVAL: 'false', ...vars } });
  try {
    const instanceOf = async (i, peer) => {
      const hash = Buffer.alloc(20, 0x40 + i);
      const url = `${t.base}/announce?info_hash=${escapeBytes(hash)}&peer_id=-HB0001-${String(peer).padStart(12, '0')}&port=${7000 + peer}&left=5`;
      const res = await fetch(url, { headers: { 'cf-connecting-ip': `10.9.0.${peer + 1}` } });
      await res.arrayBuffer();
      return JSON.parse(res.headers.get('x-swarm-usage')).instance;
    };
    const first = [];
    for (let i = 0; i < swarms; i++) first.push(await instanceOf(i, 1));
    // A second announce at once reaches the same instance (the object is in memory)...
    const warm = [];
    for (let i = 0; i < swarms; i++) warm.push(await instanceOf(i, 2));
    await new Promise((r) => setTimeout(r, idle * 1000));
    // ...and one after the quiet spell a new one: nothing held the old one.
    const after = [];
    for (let i = 0; i < swarms; i++) after.push(await instanceOf(i, 3));
    const sameWhileWarm = first.every((x, i) => x === warm[i]);
    const evicted = after.every((x, i) => x !== warm[i]);
    return { swarms, vars, idle_seconds: idle, same_instance_while_warm: sameWhileWarm, evicted_after_idle: evicted, eligible: sameWhileWarm && evicted };
  } finally {
    await t.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await hibernationCheck({ vars: { SWARM_SHARDS: '0' } })));
  console.log(JSON.stringify(await hibernationCheck({ idle: IDLE_SECONDS + 5 })));
}
