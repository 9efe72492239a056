// Generated bad requests for the battery. Every case is invalid in at least
// one way the tracker must name; none may change any state.
import { randomBytes } from 'node:crypto';
import { escapeBytes } from '../helpers.mjs';

const enc = encodeURIComponent;

/** SQL metacharacters, NUL, odd Unicode: used in every API field. */
export const NASTY = [
  "' OR 1=1 --",
  "' OR '1'='1",
  '"; DROP TABLE users; --',
  "'); DELETE FROM torrents; --",
  'admin\'--',
  '%',
  '_',
  '*',
  '\\',
  '\u0000',
  'a\u0000b',
  '\u202e\u0635\u0644\u0627\u0645',
  '\ud83d\udca3\ud83d\udca3\ud83d\udca3',
  '\uff41\uff4c\uff49\uff43\uff45',
  '\r\nSet-Cookie: x=1',
  '<script>alert(1)</script>',
  '${7*7}{{7*7}}',
  '../../../../etc/passwd',
  'x'.repeat(4096),
];

/** Announce fields in the order clients send them, values already escaped. */
export function announceFields(infoHash, peerId) {
  return [
    ['info_hash', escapeBytes(infoHash)],
    ['peer_id', escapeBytes(peerId)],
    ['port', '6881'],
    ['uploaded', '0'],
    ['downloaded', '0'],
    ['left', '10'],
  ];
}

/** The query with some fields replaced (`null`: left out) and raw text appended. */
export function query(fields, over = {}, extra = '') {
  const parts = fields
    .filter(([k]) => over[k] !== null)
    .map(([k, v]) => `${k}=${Object.hasOwn(over, k) ? over[k] : v}`);
  return parts.join('&') + extra;
}

const BAD_ESCAPES = ['%zz', '%4', '%', '%%', '%g0', '%u0041', '%-1', '%+1', '%0', '%%41', '%c'];
const BAD_PORTS = [
  '0', '00', '65536', '70000', '72417', '-1', '-0', '+1', '%2B1', '1e3', '0x1AE1', '6881.0', '+6881', '%206881',
  '6881%00', '%006881', enc('６８８１'), enc('١٢٣'), 'NaN', 'Infinity', '4294967297', '18446744073709551616',
  '18446744073709551617', '9'.repeat(40), '', '1_000', '0b1', '6%2C881', 'true', '[]', '6881%0A',
];
const BAD_COUNTERS = [
  '-1', '-0', '+1', '%2B1', '1e3', '1E3', '0x10', '1.0', '1.5', '%201', '1%00', '%001', 'NaN', 'Infinity',
  '18446744073709551616', '99999999999999999999999999', enc('١٢'), 'abc', '1_0', '1%2C0', '+', '',
  '9007199254740992', '18446744073709551615',
];
const BAD_NUMWANT = BAD_COUNTERS.filter((v) => v !== '' && !/^\d+$/.test(v));

/** Mutations of a valid announce; `fields` must name a real swarm and a fresh peer. */
export function announceMutations(fields) {
  const cases = [];
  const add = (name, q, reason) => cases.push({ name, q, reason });
  const get = (k) => fields.find(([key]) => key === k)[1];

  // Missing, empty, bare or misspelled required parameters.
  for (const k of ['info_hash', 'peer_id', 'port']) {
    add(`missing ${k}`, query(fields, { [k]: null }), new RegExp(`'${k}'`));
    add(`empty ${k}`, query(fields, { [k]: '' }), new RegExp(`'${k}'`));
    add(`bare ${k}`, query(fields, { [k]: null }, `&${k}`), new RegExp(`'${k}'`));
    for (const alias of new Set([k.toUpperCase(), `${k}%00`, `${k}+`, `%20${k}`, `${k}[]`, k.replace('_', '-'), k.replace('_', ''), `${k}s`])) {
      if (alias === k) continue;
      add(`${k} spelled ${alias}`, query(fields, { [k]: null }, `&${alias}=${get(k)}`), new RegExp(`missing parameter '${k}'`));
    }
  }
  // Broken percent-encoding in every value and in a key.
  for (const [k, v] of fields) {
    for (const bad of BAD_ESCAPES) add(`${k} ends in ${bad}`, query(fields, { [k]: v + bad }), /percent-encoding/);
    add(`${k} starts with %zz`, query(fields, { [k]: `%zz${v}` }), /percent-encoding/);
  }
  add('bad escape in a key', query(fields, {}, '&ke%zzy=1'), /percent-encoding/);
  add('bad escape in a key, no value', query(fields, {}, '&%'), /percent-encoding/);
  // Wrong lengths and odd encodings of the binary ids.
  for (const k of ['info_hash', 'peer_id']) {
    for (const n of [1, 19, 21, 39, 41, 100, 1000]) add(`${k} of ${n} bytes`, query(fields, { [k]: escapeBytes(randomBytes(n)) }), /expected 20 bytes/);
    add(`${k} as 40 hex characters`, query(fields, { [k]: randomBytes(20).toString('hex') }), /expected 20 bytes, got 40/);
    add(`${k} double-encoded`, query(fields, { [k]: get(k).replaceAll('%', '%25') }), /expected 20 bytes, got 60/);
    add(`${k} as 20 UTF-8 e-acutes`, query(fields, { [k]: enc('é'.repeat(20)) }), /expected 20 bytes, got 40/);
    add(`${k} as 19 '+'`, query(fields, { [k]: '+'.repeat(19) }), /expected 20 bytes, got 19/);
    add(`${k} as 21 NUL`, query(fields, { [k]: '%00'.repeat(21) }), /expected 20 bytes, got 21/);
    add(`${k} with lower-case escapes, 19 bytes`, query(fields, { [k]: escapeBytes(randomBytes(19), { lower: true }) }), /got 19/);
    add(`${k} with mixed escapes, 21 bytes`, query(fields, { [k]: `${get(k)}a` }), /got 21/);
    add(`${k} as 20 U+FFFD`, query(fields, { [k]: enc('\ufffd'.repeat(20)) }), /got 60/);
    add(`${k} as overlong UTF-8 (%C0%AF x20)`, query(fields, { [k]: '%C0%AF'.repeat(20) }), /got 40/);
  }
  // Numbers: the port and every counter.
  for (const v of BAD_PORTS) add(`port=${v.slice(0, 24)}`, query(fields, { port: v }), /'port'/);
  for (const k of ['uploaded', 'downloaded', 'left']) {
    for (const v of BAD_COUNTERS) {
      if (k === 'left' && (v === '9007199254740992' || v === '18446744073709551615')) continue;
      add(`${k}=${v.slice(0, 24)}`, query(fields, { [k]: v }), new RegExp(`'${k}'`));
    }
  }
  for (const v of BAD_NUMWANT) add(`numwant=${v.slice(0, 24)}`, query(fields, {}, `&numwant=${v}`), /'numwant'/);
  // The same parameter twice with different values: ambiguous, refused.
  const other = {
    info_hash: escapeBytes(randomBytes(20)),
    peer_id: escapeBytes(randomBytes(20)),
    port: '6882',
    uploaded: '5',
    downloaded: '5',
    left: '0',
  };
  for (const [k, v] of fields) {
    add(`${k} twice, second differs`, query(fields, {}, `&${k}=${other[k]}`), /more than once/);
    add(`${k} twice, first differs`, `${k}=${other[k]}&${query(fields)}`, /more than once/);
    add(`${k} twice, one empty`, query(fields, {}, `&${k}=`), /more than once/);
    add(`${k} thrice`, query(fields, {}, `&${k}=${v}&${k}=${other[k]}`), /more than once/);
  }
  add('event twice', query(fields, {}, '&event=started&event=stopped'), /more than once/);
  add('numwant twice', query(fields, {}, '&numwant=5&numwant=50'), /more than once/);
  add('compact twice', query(fields, {}, '&compact=1&compact=0'), /more than once/);
  add('port via ; twice', query(fields, {}, ';port=1'), /more than once/);
  // Oversized and odd shapes.
  add('query of 16 KiB + 1', query(fields, {}, `&pad=${'a'.repeat(16 * 1024)}`), /too long/);
  add('query of 64 KiB', query(fields, {}, `&pad=${'b'.repeat(64 * 1024)}`), /too long/);
  add('257 parameters', query(fields, {}, '&x=1'.repeat(251)), /too many query parameters/);
  add('5,000 bare keys', query(fields, {}, '&a'.repeat(5000)), /too many query parameters/);
  add('a 15 KB key', query(fields, {}, `&${'k'.repeat(15000)}=1&port=2`), /more than once/);
  add('a 15 KB peer_id', query(fields, { peer_id: 'p'.repeat(15000) }), /got 15000/);
  add('a 15 KB port', query(fields, { port: '6'.repeat(15000) }), /'port'/);
  for (const q of ['', '&', '&&&&', '=', '==', '=&=&=', '&=&', '?', '??', ';;;', '=6881', 'info_hash', '%26info_hash=x']) {
    add(`query ${JSON.stringify(q)}`, q, /missing parameter 'info_hash'|'info_hash'/);
  }
  return cases;
}

/** Scrape requests that must fail. */
export function scrapeMutations(known) {
  const h = (b) => `info_hash=${escapeBytes(b)}`;
  const cases = [];
  const add = (name, q, reason) => cases.push({ name, q, reason });
  for (const n of [0, 1, 19, 21, 40, 60]) add(`scrape: info_hash of ${n} bytes`, h(randomBytes(n)), /expected 20 bytes|full scrape/);
  add('scrape: hex info_hash', `info_hash=${known.toString('hex')}`, /got 40/);
  add('scrape: double-encoded', h(known).replaceAll('%', '%25'), /got 60/);
  for (const bad of BAD_ESCAPES) add(`scrape: info_hash ends in ${bad}`, h(known) + bad, /percent-encoding/);
  add('scrape: 65 distinct hashes', Array.from({ length: 65 }, () => h(randomBytes(20))).join('&'), /too many info_hash/);
  add('scrape: 200 distinct hashes', Array.from({ length: 200 }, () => h(randomBytes(20))).join('&'), /too many info_hash/);
  add('scrape: 300 hashes', Array.from({ length: 300 }, () => h(randomBytes(20))).join('&'), /too long|too many/);
  add('scrape: 64 good and one short', [...Array.from({ length: 64 }, () => h(randomBytes(20))), h(randomBytes(3))].join('&'), /got 3/);
  add('scrape: good then bare', `${h(known)}&info_hash`, /got 0/);
  add('scrape: nothing', '', /full scrape is disabled/);
  add('scrape: other names only', 'infohash=x&info_hash[]=y&hash=z', /full scrape is disabled/);
  add('scrape: 20 NUL then junk', `info_hash=${'%00'.repeat(20)}%zz`, /percent-encoding/);
  add('scrape: 16 KiB + 1', `${h(known)}&pad=${'a'.repeat(16 * 1024)}`, /too long/);
  return cases;
}

/** Paths that are not the announce or scrape endpoints, or are tricks on them. */
export const PATH_TRICKS = [
  '//announce', '///announce', '/announce//', '/announce//x', '/announce/../api/users', '/announce/..', '/announce/%2e%2e',
  '/announce/%2e%2e/api/users', '/%2e%2e/announce', '/%2E%2E/%2E%2E/etc/passwd', '/announce%2F', '/announce%2fx',
  '/announce%2F..%2Fapi', '/announce%00', '/announce%', '/announce%zz', '/ANNOUNCE', '/Announce', '/announce.php/',
  '/announce.PHP', '/announce;jsessionid=1', '/scrape/../announce', '/./announce', '/announce\\..\\api', '/announce%5C..%5Capi',
  '/api/../announce', '/.env', '/index.php', '/announce.php.bak', '/%61nnounce', '/announce%20', '/announce~', '/announce/x/y',
  '/scrape//', '/scrape%2F', '/SCRAPE', '/favicon.ico', '/robots.txt', '/wp-login.php', '/announce/' + 'k'.repeat(10000),
];
