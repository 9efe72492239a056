// Hashing for the torrent creator, with WebCrypto (crypto.subtle), in a
// Web Worker in the browser (create-worker.js) and in node tests alike.
// Files are read in slices (Blob.slice + arrayBuffer), one slice ahead of
// the one being hashed, never whole: memory stays at ~2 slices.
//
// v1 (BEP 3): SHA-1 of each piece of the files laid end to end.
// Hybrid (BEP 52 + BEP 47): each file starts a piece (pad files of zeros
// between files), so one pass over each file gives both the v1 piece
// SHA-1s and the v2 SHA-256 merkle tree of its 16 KiB blocks.

export const BLOCK = 16 * 1024;
/** Bytes read at once (a multiple of every piece length up to 16 MiB). */
export const SLICE = 16 * 1024 * 1024;

const subtle = globalThis.crypto.subtle;

async function digest(algorithm, data) {
  return new Uint8Array(await subtle.digest(algorithm, data));
}

/** Reads [start, end) of `blob` as bytes. */
async function read(blob, start, end) {
  return new Uint8Array(await blob.slice(start, end).arrayBuffer());
}

/**
 * Calls `each(bytes, offset)` on consecutive slices of `blob` (each a
 * multiple of `unit` long but the last), reading the next slice while
 * `each` works on this one. `progress(bytesDone)` after each slice.
 */
async function sliced(blob, unit, each, progress) {
  const step = Math.max(unit, SLICE - (SLICE % unit));
  const size = blob.size;
  let next = size > 0 ? read(blob, 0, Math.min(step, size)) : null;
  for (let at = 0; at < size; at += step) {
    const bytes = await next;
    const following = at + step;
    next = following < size ? read(blob, following, Math.min(following + step, size)) : null;
    await each(bytes, at);
    progress?.(bytes.length);
  }
}

/**
 * v1 piece hashes of pieces [first, end) of `blob` (the files end to end).
 * Returns (end - first) * 20 bytes. Parallel workers each take a range.
 */
export async function hashPiecesV1(blob, pieceLength, { first = 0, end = Math.ceil(blob.size / pieceLength), progress } = {}) {
  const out = new Uint8Array((end - first) * 20);
  const range = blob.slice(first * pieceLength, Math.min(end * pieceLength, blob.size));
  await sliced(range, pieceLength, async (bytes, at) => {
    const base = at / pieceLength;
    const jobs = [];
    for (let off = 0; off < bytes.length; off += pieceLength) {
      jobs.push(digest('SHA-1', bytes.subarray(off, off + pieceLength)));
    }
    (await Promise.all(jobs)).forEach((h, i) => out.set(h, (base + i) * 20));
  }, progress);
  return out;
}

async function hashPair(left, right) {
  const both = new Uint8Array(64);
  both.set(left);
  both.set(right, 32);
  return digest('SHA-256', both);
}

/**
 * Root of a merkle tree `width` leaves wide (a power of two) whose first
 * leaves are `hashes` and the rest `pad`. Returns { root, pads }: pads[k]
 * is the hash of an all-pad subtree 2^k leaves wide.
 */
export async function merkleRoot(hashes, width, pad) {
  let layer = hashes;
  let padHash = pad;
  for (let w = width; w > 1; w /= 2) {
    const pairs = [];
    for (let i = 0; i < layer.length; i += 2) pairs.push(hashPair(layer[i], layer[i + 1] ?? padHash));
    layer = await Promise.all(pairs);
    padHash = await hashPair(padHash, padHash);
  }
  return layer[0] ?? padHash;
}

const nextPow2 = (n) => 2 ** Math.ceil(Math.log2(Math.max(n, 1)));
const ZERO_LEAF = new Uint8Array(32);

/**
 * One file of a hybrid torrent: its v1 piece SHA-1s (the last piece padded
 * with zeros unless `last`), its v2 pieces root and piece layer (the
 * SHA-256 merkle roots of each piece's 16 KiB blocks; null when the file
 * fits in one piece, as BEP 52 leaves those out).
 */
export async function hashFileHybrid(blob, pieceLength, { last, progress }) {
  const size = blob.size;
  if (size === 0) return { pieces: new Uint8Array(0), root: null, layer: null };
  const count = Math.ceil(size / pieceLength);
  const perPiece = pieceLength / BLOCK;
  const pieces = new Uint8Array(count * 20);
  const pieceRoots = new Array(count);
  const allLeaves = count === 1 ? [] : null;
  await sliced(blob, pieceLength, async (bytes, at) => {
    const jobs = [];
    for (let off = 0; off < bytes.length; off += pieceLength) {
      const index = (at + off) / pieceLength;
      let piece = bytes.subarray(off, off + pieceLength);
      const blocks = [];
      for (let b = 0; b < piece.length; b += BLOCK) blocks.push(digest('SHA-256', piece.subarray(b, b + BLOCK)));
      if (piece.length < pieceLength && !last) {
        const padded = new Uint8Array(pieceLength);
        padded.set(piece);
        piece = padded;
      }
      jobs.push(digest('SHA-1', piece).then((h) => pieces.set(h, index * 20)));
      jobs.push(Promise.all(blocks).then(async (leaves) => {
        if (allLeaves) allLeaves.push(...leaves);
        else pieceRoots[index] = await merkleRoot(leaves, perPiece, ZERO_LEAF);
      }));
    }
    await Promise.all(jobs);
  }, progress);
  if (allLeaves) {
    // One piece or less: the tree is as wide as the blocks need, no layer.
    return { pieces, root: await merkleRoot(allLeaves, nextPow2(allLeaves.length), ZERO_LEAF), layer: null };
  }
  const padPiece = await merkleRoot([], perPiece, ZERO_LEAF);
  const root = await merkleRoot(pieceRoots, nextPow2(count), padPiece);
  const layer = new Uint8Array(count * 32);
  pieceRoots.forEach((h, i) => layer.set(h, i * 32));
  return { pieces, root, layer };
}

/**
 * Every hash of a hybrid torrent, file by file: { pieces (all v1 SHA-1s),
 * roots (per file, null for an empty one), layers (Map root -> layer) }.
 */
export async function hashHybrid(files, pieceLength, { progress } = {}) {
  const pieceParts = [];
  const roots = [];
  // Keyed by hex: two files with the same bytes share one root and layer.
  const layers = new Map();
  for (let i = 0; i < files.length; i++) {
    const r = await hashFileHybrid(files[i].blob, pieceLength, { last: i === files.length - 1, progress });
    pieceParts.push(r.pieces);
    roots.push(r.root);
    if (r.layer) layers.set(hex(r.root), [r.root, r.layer]);
  }
  const pieces = new Uint8Array(pieceParts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of pieceParts) {
    pieces.set(p, at);
    at += p.length;
  }
  return { pieces, roots, layers: new Map(layers.values()) };
}

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
