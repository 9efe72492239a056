// Raw HTTP for the bad-input battery: requests exactly as written (no URL
// normalisation, any method, any header, any body), and a judge of answers.
import http from 'node:http';
import net from 'node:net';
import zlib from 'node:zlib';
import bencode from 'bencode';

const TIMEOUT_MS = 20000;
// One connection per case, so a request the runtime half-reads cannot spill into the next.
const agent = new http.Agent({ keepAlive: false });

/** Sends one request; `target` goes on the request line as given. */
export function send(base, { method = 'GET', target, headers = {}, body }) {
  const { hostname, port } = new URL(base);
  headers = { ...headers };
  const framed = Object.keys(headers).some((h) => /^(content-length|transfer-encoding)$/i.test(h));
  if (body !== undefined && !framed) headers['content-length'] = Buffer.byteLength(body);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: hostname, port, method, path: target, headers, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, raw: decoded(res.headers['content-encoding'], Buffer.concat(chunks)) }));
      res.on('error', reject);
    });
    req.setTimeout(TIMEOUT_MS, () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Writes `bytes` on a fresh socket (for what no HTTP client would send) and reads the answer. */
export function sendRaw(base, bytes) {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const chunks = [];
    const sock = net.connect({ host: hostname, port: Number(port) }, () => sock.end(bytes));
    sock.setTimeout(TIMEOUT_MS, () => sock.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
    sock.on('data', (c) => chunks.push(c));
    sock.on('error', reject);
    sock.on('close', () => {
      const all = Buffer.concat(chunks);
      const split = all.indexOf('\r\n\r\n');
      const head = all.subarray(0, split < 0 ? all.length : split).toString('latin1');
      const status = Number(head.match(/^HTTP\/1\.[01] (\d{3})/)?.[1] ?? 0);
      let raw = split < 0 ? Buffer.alloc(0) : all.subarray(split + 4);
      if (/^transfer-encoding:\s*chunked/im.test(head)) raw = unchunk(raw);
      resolve({ status, headers: {}, raw });
    });
  });
}

function decoded(encoding, raw) {
  if (encoding === 'gzip') return zlib.gunzipSync(raw);
  if (encoding === 'br') return zlib.brotliDecompressSync(raw);
  if (encoding === 'deflate') return zlib.inflateSync(raw);
  return raw;
}

function unchunk(buf) {
  const out = [];
  let at = 0;
  for (;;) {
    const eol = buf.indexOf('\r\n', at);
    if (eol < 0) break;
    const size = parseInt(buf.subarray(at, eol).toString(), 16);
    if (!size) break;
    out.push(buf.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(out);
}

/** What kind of error an answer is: a bencoded failure, a JSON error, or neither. */
export function errorOf(raw) {
  try {
    const d = bencode.decode(raw);
    if (d && d['failure reason'] !== undefined) return { kind: 'bencode', reason: Buffer.from(d['failure reason']).toString() };
  } catch {}
  try {
    const j = JSON.parse(raw.toString());
    if (j && typeof j.error === 'string') return { kind: 'json', reason: j.error };
  } catch {}
  return { kind: 'none', reason: null };
}

/**
 * Judges one answer against its case; returns a problem or null.
 * `expect`: 'tracker' (bencoded failure reason, status 200 unless given),
 * 'api' (JSON error, 4xx), 'error' (either), or 'edge' (the request may be
 * refused by the runtime's HTTP parser before the Worker sees it: any 4xx).
 */
export function judge(c, r, secrets = []) {
  // workerd answers 501 itself to a method it does not know, before any Worker runs.
  if (c.unknownMethod && r.status === 501) return null;
  // workerd's own HTTP front (not a Worker) fails with a bare 500 on a few
  // malformed requests (unparseable target or Host, negative Content-Length);
  // the Worker never sees them. Accepted only where a case says so.
  if (c.runtime500 && r.status === 500 && r.raw.toString() === 'Internal Server Error') return null;
  // A connection that never spoke HTTP may just be closed.
  if (c.mayClose && r.status === 0) return null;
  if (r.status >= 500) return `status ${r.status}: ${r.raw.toString().slice(0, 200)}`;
  const { kind, reason } = errorOf(r.raw);
  const shown = `${r.status} ${kind} ${JSON.stringify(reason ?? r.raw.toString().slice(0, 120))}`;
  const sent = `${c.target ?? ''}${c.body ?? ''}${c.raw ?? ''}${JSON.stringify(c.headers ?? {})}`;
  const leaked = secrets.find((s) => r.raw.includes(s) && !sent.includes(s));
  if (leaked) return `answer reveals a secret: ${shown}`;
  if (c.status !== undefined && ![c.status].flat().includes(r.status)) return `expected status ${c.status}, got ${shown}`;
  if (c.reason && !(reason && c.reason.test(reason))) return `expected a reason matching ${c.reason}, got ${shown}`;
  switch (c.expect) {
    case 'tracker':
      if (kind !== 'bencode' || !reason) return `expected a bencoded failure reason, got ${shown}`;
      if (c.status === undefined && ![200, 404].includes(r.status)) return `expected status 200 or 404, got ${shown}`;
      return null;
    case 'api':
      if (kind !== 'json' || !reason) return `expected a JSON error, got ${shown}`;
      if (r.status < 400) return `expected a 4xx status, got ${shown}`;
      return null;
    case 'error':
      if (kind === 'none' || !reason) return `expected a bencoded or JSON error, got ${shown}`;
      return null;
    case 'edge':
      if (kind !== 'none' && reason) return null;
      if (r.status >= 400 && r.status < 500) return null;
      if (c.method === 'HEAD' && r.status < 500) return null;
      return `expected an error, got ${shown}`;
    default:
      return `unknown expectation ${c.expect}`;
  }
}

/** Runs every case with modest concurrency; returns the problems found. */
export async function runBattery(base, cases, { concurrency = 8, secrets = [] } = {}) {
  const problems = [];
  let next = 0;
  const worker = async () => {
    while (next < cases.length) {
      const c = cases[next++];
      let r;
      try {
        r = c.raw !== undefined ? await sendRaw(base, c.raw) : await send(base, c);
      } catch (e) {
        // The runtime may drop a connection it refuses to parse; a hang is never fine.
        if (c.expect === 'edge' && !/no answer/.test(e.message)) continue;
        problems.push(`${c.name}: ${e.message}`);
        continue;
      }
      const problem = judge(c, r, secrets);
      if (problem) problems.push(`${c.name}: ${problem}`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return problems;
}
