// The platform floor for an announce: a minimal Worker that forwards each
// announce to a Durable Object named by its info hash (or, with the var
// SHARDS = N, to one of N objects, as the tracker's shared small swarms
// are) and returns a fixed reply; a scrape reads one KV key and returns a
// fixed reply. No parsing beyond finding info_hash, no storage, no peer list.
// With the var RPC = 1, the Worker asks the object by JS RPC instead
// (`FloorSwarmRpc.announce`, the reply's bytes) and makes the Response
// itself, as the tracker does. With RPC = 'sized', the message and the
// reply are the tracker's sizes (a 248-character swarm URL; a 360-byte
// answer, 50 compact peers): what the runtime charges for the payloads.
// With RPC = 'batched', it asks as the tracker does, several announces to
// a call while one is in flight (the tracker's own `ask`, SWARM_BATCH 32).
import { DurableObject } from 'cloudflare:workers';
import { ask } from '../../src/worker/coalesce.mjs';

const REPLY = 'd8:completei0e10:incompletei0e8:intervali1800e5:peers0:e';
const SCRAPE = 'd5:filesdee';

export class FloorSwarm {
  constructor(state, env) {
    this.state = state;
  }

  async fetch() {
    return new Response(REPLY);
  }
}

const REPLY_BYTES = new TextEncoder().encode(REPLY);

const PEERS_50 = 'x'.repeat(300);
const SIZED_REPLY_BYTES = new TextEncoder().encode(`d8:completei0e10:incompletei0e8:intervali1800e12:min intervali900e5:peers300:${PEERS_50}e`);
const SIZED_PREFIX = 'https://swarm/a?';

export class FloorSwarmRpc extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.reply = env.RPC === 'sized' ? SIZED_REPLY_BYTES : REPLY_BYTES;
  }

  announce() {
    return this.reply;
  }

  announceBatch(urls) {
    return urls.map(() => this.reply);
  }
}

export default {
  async fetch(request, env, ctx) {
    const url = request.url;
    const q = url.slice(url.indexOf('?') + 1);
    // A scrape served from KV costs at least one KV read.
    if (url.includes('/scrape')) {
      await env.KV.get(`scrape:${q.slice(0, 80)}`);
      return new Response(SCRAPE);
    }
    let hash = null;
    for (const part of q.split('&')) {
      if (part.startsWith('info_hash=')) {
        hash = part.slice(10);
        break;
      }
    }
    if (!hash) return new Response('d14:failure reason17:missing info_hashe');
    const shards = Number(env.SHARDS ?? 0);
    const stub = env.FLOOR.get(env.FLOOR.idFromName(shards > 0 ? `shard-${fnv(hash) % shards}` : hash));
    if (env.RPC === '1') return new Response(await stub.announce(hash));
    if (env.RPC === 'batched') return new Response((await ask(ctx, stub, hash, hash, 32)).out);
    if (env.RPC === 'sized') return new Response(await stub.announce(SIZED_PREFIX + hash.padEnd(232, '0').slice(0, 232)));
    return stub.fetch('https://floor/announce');
  },
};

function fnv(text) {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}
