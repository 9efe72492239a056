// The torrent creator's plan and metainfo, without I/O: which files in
// which order, the piece length, the info dictionary (BEP 3 v1, or BEP 52
// hybrid v1+v2 with BEP 47 pad files), the .torrent and the magnet link.
// Hashing is create-hash.js's; both run in the browser and in node tests.
import { encode, compareBytes } from './create-bencode.js';

export const MIN_PIECE = 16 * 1024;
export const MAX_PIECE = 16 * 1024 * 1024;
/** Pieces aimed at: libtorrent's default is at most 2,048 (40 KiB of SHA-1s). */
export const TARGET_PIECES = 2048;

/** The smallest power of two from 16 KiB to 16 MiB giving at most 2,048 pieces. */
export function pickPieceLength(total) {
  let length = MIN_PIECE;
  while (length < MAX_PIECE && total / length > TARGET_PIECES) length *= 2;
  return length;
}

const utf8 = new TextEncoder();

/**
 * The torrent's name and files from what the browser gives: `picked` is
 * [{ blob, path }], the path "folder/sub/file" from a folder pick or a
 * drop (webkitRelativePath), or a bare name from a multiple-file pick.
 * Files are sorted by path, byte-wise, as BEP 52 orders its file tree.
 * Returns { name, single, files: [{ path: [components], length, blob }] }.
 */
export function planFiles(picked, fallbackName = 'new torrent') {
  const entries = picked.map((f) => ({
    parts: f.path.split('/').filter((p) => p !== ''),
    length: f.blob.size,
    blob: f.blob,
  }));
  if (entries.length === 0) throw new Error('no files chosen');
  for (const e of entries) {
    if (e.parts.length === 0 || e.parts.some((p) => p === '.' || p === '..')) {
      throw new Error(`a file has an unusable path: ${JSON.stringify(e.parts.join('/'))}`);
    }
  }
  const roots = new Set(entries.map((e) => e.parts[0]));
  const inFolder = entries.every((e) => e.parts.length > 1) && roots.size === 1;
  if (entries.length === 1 && entries[0].parts.length === 1) {
    const [e] = entries;
    return { name: e.parts[0], single: true, files: [{ path: [], length: e.length, blob: e.blob }] };
  }
  const name = inFolder ? entries[0].parts[0] : fallbackName;
  const files = entries.map((e) => ({ path: inFolder ? e.parts.slice(1) : e.parts, length: e.length, blob: e.blob }));
  files.sort((a, b) => comparePaths(a.path, b.path));
  for (let i = 1; i < files.length; i++) {
    if (comparePaths(files[i - 1].path, files[i].path) === 0) {
      throw new Error(`the same path twice: ${files[i].path.join('/')}`);
    }
  }
  return { name, single: false, files };
}

function comparePaths(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const c = compareBytes(utf8.encode(a[i]), utf8.encode(b[i]));
    if (c !== 0) return c;
  }
  return a.length - b.length;
}

/**
 * BEP 47 pad files for a hybrid torrent: after every file but the last
 * whose end is not on a piece boundary, zeros up to the boundary, so each
 * file starts a piece (as BEP 52 requires of hybrid torrents).
 */
export function padLengths(files, pieceLength) {
  return files.map((f, i) => {
    const rest = f.length % pieceLength;
    return i === files.length - 1 || rest === 0 ? 0 : pieceLength - rest;
  });
}

/**
 * The info dictionary. `hashes` is create-hash.js's result: `pieces` (the
 * v1 SHA-1s) and, for a hybrid, `roots` (each file's 32-byte pieces root,
 * null when empty). Optional: `private`, `source`.
 */
export function buildInfo(plan, pieceLength, hashes, { private: isPrivate = false, source = '' } = {}) {
  const info = { name: plan.name, 'piece length': pieceLength, pieces: hashes.pieces };
  if (plan.single) {
    info.length = plan.files[0].length;
  } else {
    const pads = hashes.roots ? padLengths(plan.files, pieceLength) : plan.files.map(() => 0);
    info.files = [];
    plan.files.forEach((f, i) => {
      info.files.push({ length: f.length, path: f.path });
      if (pads[i] > 0) info.files.push({ attr: 'p', length: pads[i], path: ['.pad', String(pads[i])] });
    });
  }
  if (hashes.roots) {
    info['meta version'] = 2;
    info['file tree'] = fileTree(plan, hashes.roots);
  }
  if (isPrivate) info.private = 1;
  if (source) info.source = source;
  return info;
}

function fileTree(plan, roots) {
  // Maps, not objects: a file may be called "__proto__".
  const tree = new Map();
  plan.files.forEach((f, i) => {
    const path = plan.single ? [plan.name] : f.path;
    let node = tree;
    for (const part of path) {
      if (!node.has(part)) node.set(part, new Map());
      node = node.get(part);
    }
    node.set('', roots[i] ? { length: f.length, 'pieces root': roots[i] } : { length: f.length });
  });
  return tree;
}

/**
 * The .torrent bytes and its hashes. `layers` (hybrid) maps each pieces
 * root to its piece layer, for files longer than one piece.
 */
export async function buildTorrent(info, { announce, comment = '', webSeeds = [], layers = null, createdBy = 'edge-tracker /create', now = Date.now() }) {
  const infoBytes = encode(info);
  const torrent = { announce, 'created by': createdBy, 'creation date': Math.floor(now / 1000), info };
  if (comment) torrent.comment = comment;
  if (webSeeds.length > 0) torrent['url-list'] = webSeeds;
  if (layers && layers.size > 0) torrent['piece layers'] = layers;
  const v1 = new Uint8Array(await crypto.subtle.digest('SHA-1', infoBytes));
  const v2 = info['meta version'] === 2 ? new Uint8Array(await crypto.subtle.digest('SHA-256', infoBytes)) : null;
  return { bytes: encode(torrent), infoHash: hex(v1), v2Hash: v2 ? hex(v2) : null };
}

/** A magnet link: v1 btih, v2 btmh (multihash sha2-256) for a hybrid, name, tracker. */
export function magnet({ infoHash, v2Hash }, name, announce) {
  const parts = [`xt=urn:btih:${infoHash}`];
  if (v2Hash) parts.push(`xt=urn:btmh:1220${v2Hash}`);
  parts.push(`dn=${encodeURIComponent(name)}`, `tr=${encodeURIComponent(announce)}`);
  return `magnet:?${parts.join('&')}`;
}

export function hex(bytes) {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

/** Web seed URLs from a textarea: one per line, http(s) only. */
export function parseWebSeeds(text) {
  const urls = text.split(/\s+/).filter(Boolean);
  for (const u of urls) {
    let parsed;
    try {
      parsed = new URL(u);
    } catch {
      throw new Error(`not a URL: ${u}`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error(`a web seed must be http or https: ${u}`);
  }
  return urls;
}
