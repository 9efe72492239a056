// Bencoding (BEP 3), encoder only: what the torrent creator needs.
//
// Values: a safe integer, a string (encoded as UTF-8 bytes), a Uint8Array
// (raw bytes), an Array (list), a plain object or a Map (dictionary). Map
// keys may be strings or Uint8Arrays, for keys that are not text (BEP 52
// `piece layers` is keyed by raw 32-byte hashes). Dictionary keys are
// sorted by their raw bytes, as BEP 3 requires; a duplicate key, a
// non-integer number, undefined or null is an error, never a silent guess.

const utf8 = new TextEncoder();

/** Encodes `value` to a Uint8Array. */
export function encode(value) {
  const parts = [];
  let size = 0;
  const push = (bytes) => {
    parts.push(bytes);
    size += bytes.length;
  };
  write(value, push, 0);
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const MAX_DEPTH = 64;

function write(value, push, depth) {
  if (depth > MAX_DEPTH) throw new TypeError('bencode: nested too deeply');
  if (typeof value === 'number' || typeof value === 'bigint') {
    if (typeof value === 'number' && !Number.isSafeInteger(value)) {
      throw new TypeError(`bencode: ${value} is not a safe integer`);
    }
    push(utf8.encode(`i${value}e`));
  } else if (typeof value === 'string') {
    writeBytes(utf8.encode(value), push);
  } else if (value instanceof Uint8Array) {
    writeBytes(value, push);
  } else if (value instanceof ArrayBuffer) {
    writeBytes(new Uint8Array(value), push);
  } else if (Array.isArray(value)) {
    push(utf8.encode('l'));
    for (const item of value) write(item, push, depth + 1);
    push(utf8.encode('e'));
  } else if (value instanceof Map || (value !== null && typeof value === 'object')) {
    writeDict(value instanceof Map ? [...value] : Object.entries(value), push, depth);
  } else {
    throw new TypeError(`bencode: cannot encode ${value === null ? 'null' : typeof value}`);
  }
}

function writeBytes(bytes, push) {
  push(utf8.encode(`${bytes.length}:`));
  push(bytes);
}

function writeDict(entries, push, depth) {
  const keyed = entries.map(([k, v]) => {
    if (typeof k === 'string') return [utf8.encode(k), v];
    if (k instanceof Uint8Array) return [k, v];
    throw new TypeError('bencode: a dictionary key must be a string or a Uint8Array');
  });
  keyed.sort((a, b) => compareBytes(a[0], b[0]));
  push(utf8.encode('d'));
  for (let i = 0; i < keyed.length; i++) {
    if (i > 0 && compareBytes(keyed[i - 1][0], keyed[i][0]) === 0) {
      throw new TypeError('bencode: duplicate dictionary key');
    }
    if (keyed[i][1] === undefined) throw new TypeError('bencode: undefined dictionary value');
    writeBytes(keyed[i][0], push);
    write(keyed[i][1], push, depth + 1);
  }
  push(utf8.encode('e'));
}

/** Byte-wise comparison: negative, zero or positive. */
export function compareBytes(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i] - b[i];
  }
  return a.length - b.length;
}
