// Hashing for the torrent creator, with WebCrypto (crypto.subtle), in a
// Web Worker in the browser (create-worker.js) and in node tests alike.
// Files are read in slices (Blob.slice + arrayBuffer), a few slices ahead
// of the one being hashed, never whole: memory stays at ~4 slices.
//
// v1 (BEP 3): SHA-1 of each piece of the files laid end to end.
// Hybrid (BEP 52 + BEP 47): each file starts a piece (pad files of zeros
// between files), so one pass over each file gives both the v1 piece
// SHA-1s and the v2 SHA-256 merkle tree of its 16 KiB blocks.

export const BLOCK = 16 * 1024;
/** Bytes read at once (a multiple of every piece length up to 8 MiB). */
export const SLICE = 8 * 1024 * 1024;
/**
 * Slices read ahead of the one being hashed. Measured on a 1 GiB file in
 * Chromium: 8 MiB slices with 3 ahead hash ~10% faster than 16 MiB with 1
 * ahead, for the same memory (32 MiB a worker).
 */
const AHEAD = 3;

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
 * multiple of `unit` long but the last), with the next AHEAD slices being
 * read while `each` works on this one (Chromium reads a file faster with
 * more than one read in flight). `progress(bytesDone)` after each slice.
 */
async function sliced(blob, unit, each, progress) {
  const step = Math.max(unit, SLICE - (SLICE % unit));
  const size = blob.size;
  const pending = [];
  let next = 0;
  const fill = () => {
    while (pending.length < AHEAD + 1 && next < size) {
      pending.push(read(blob, next, Math.min(next + step, size)));
      next += step;
    }
  };
  fill();
  for (let at = 0; at < size; at += step) {
    const bytes = await pending.shift();
    fill();
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
 * Pieces [first, end) of one file of a hybrid torrent (`count` pieces in
 * all). Returns { pieces: SHA-1 each, 20 bytes (the file's last piece
 * padded with zeros unless the file is the torrent's `last`), roots:
 * SHA-256 merkle root of each piece's 16 KiB blocks, 32 bytes }. A file of
 * one piece gets its pieces root instead: a tree only as wide as its
 * blocks need (BEP 52).
 */
export async function hashPiecesHybrid(blob, pieceLength, { first = 0, end = Math.ceil(blob.size / pieceLength), last, progress } = {}) {
  const count = Math.ceil(blob.size / pieceLength);
  const perPiece = pieceLength / BLOCK;
  const pieces = new Uint8Array((end - first) * 20);
  const roots = new Uint8Array((end - first) * 32);
  const range = blob.slice(first * pieceLength, Math.min(end * pieceLength, blob.size));
  await sliced(range, pieceLength, async (bytes, at) => {
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
      const width = count === 1 ? nextPow2(blocks.length) : perPiece;
      jobs.push(Promise.all(blocks).then((leaves) => merkleRoot(leaves, width, ZERO_LEAF)).then((h) => roots.set(h, index * 32)));
    }
    await Promise.all(jobs);
  }, progress);
  return { pieces, roots };
}

/**
 * A hybrid file's pieces root and piece layer from all its piece roots
 * (`roots`, 32 bytes each): the layer only for files over one piece.
 */
export async function fileRoot(roots, pieceLength) {
  const count = roots.length / 32;
  if (count === 0) return { root: null, layer: null };
  if (count === 1) return { root: roots.slice(0, 32), layer: null };
  const hashes = Array.from({ length: count }, (_, i) => roots.subarray(i * 32, i * 32 + 32));
  const padPiece = await merkleRoot([], pieceLength / BLOCK, ZERO_LEAF);
  return { root: await merkleRoot(hashes, nextPow2(count), padPiece), layer: roots };
}

/**
 * Splits the pieces of a hybrid torrent's files (each file starts a piece)
 * into `n` contiguous runs of about equal length. Returns n lists of
 * segments { file, first, end } (file index, piece range in that file).
 */
export function splitHybrid(sizes, pieceLength, n) {
  const counts = sizes.map((s) => Math.ceil(s / pieceLength));
  const total = counts.reduce((a, b) => a + b, 0);
  const runs = [];
  for (let k = 0; k < n; k++) {
    const lo = Math.floor((total * k) / n);
    const hi = Math.floor((total * (k + 1)) / n);
    const segments = [];
    let base = 0;
    counts.forEach((c, file) => {
      const first = Math.max(lo, base) - base;
      const end = Math.min(hi, base + c) - base;
      if (end > first) segments.push({ file, first, end });
      base += c;
    });
    runs.push(segments);
  }
  return runs;
}

/**
 * Joins the runs' results (in run order: per segment { pieces, roots }) into
 * { pieces (all v1 SHA-1s), roots (per file, null when empty), layers (Map
 * root -> piece layer) }.
 */
export async function joinHybrid(sizes, pieceLength, runs, results) {
  const counts = sizes.map((s) => Math.ceil(s / pieceLength));
  const total = counts.reduce((a, b) => a + b, 0);
  const pieces = new Uint8Array(total * 20);
  const pieceRoots = counts.map((c) => new Uint8Array(c * 32));
  let at = 0;
  runs.forEach((segments, k) => segments.forEach((seg, i) => {
    const r = results[k][i];
    pieces.set(r.pieces, at);
    at += r.pieces.length;
    pieceRoots[seg.file].set(r.roots, seg.first * 32);
  }));
  const roots = [];
  // Keyed by hex: two files with the same bytes share one root and layer.
  const layers = new Map();
  for (const r of pieceRoots) {
    const { root, layer } = await fileRoot(r, pieceLength);
    roots.push(root);
    if (layer) layers.set(hex(root), [root, layer]);
  }
  return { pieces, roots, layers: new Map(layers.values()) };
}

/** Runs `segments` of `blobs` (one worker's share of a hybrid torrent). */
export async function hashSegments(blobs, pieceLength, segments, progress) {
  const out = [];
  for (const seg of segments) {
    const last = seg.file === blobs.length - 1;
    out.push(await hashPiecesHybrid(blobs[seg.file], pieceLength, { first: seg.first, end: seg.end, last, progress }));
  }
  return out;
}

/** Every hash of a hybrid torrent, in one thread (node tests; one worker). */
export async function hashHybrid(files, pieceLength, { progress } = {}) {
  const blobs = files.map((f) => f.blob);
  const sizes = blobs.map((b) => b.size);
  const runs = splitHybrid(sizes, pieceLength, 1);
  return joinHybrid(sizes, pieceLength, runs, [await hashSegments(blobs, pieceLength, runs[0], progress)]);
}

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
