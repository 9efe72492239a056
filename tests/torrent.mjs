// Makes single-file .torrent metainfo for tests (BEP 3), with bencode.
import bencode from 'bencode';
import { createHash, randomBytes as randomBytesSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

export function makeTorrent(file, announce, opts = {}) {
  return makeTorrentFromData(basename(file), readFileSync(file), announce, opts);
}

export function makeTorrentFromData(name, data, announce, { pieceLength = 256 * 1024, private: isPrivate = false } = {}) {
  const pieces = [];
  for (let i = 0; i < data.length; i += pieceLength) {
    pieces.push(createHash('sha1').update(data.subarray(i, i + pieceLength)).digest());
  }
  const info = {
    length: data.length,
    name: Buffer.from(name),
    'piece length': pieceLength,
    pieces: Buffer.concat(pieces),
    ...(isPrivate ? { private: 1 } : {}),
  };
  const infoHash = createHash('sha1').update(bencode.encode(info)).digest();
  const torrent = bencode.encode({ announce: Buffer.from(announce), 'created by': Buffer.from('edge-tracker tests'), info });
  return { torrent: Buffer.from(torrent), infoHash, sha256: createHash('sha256').update(data).digest('hex') };
}

/**
 * A hybrid (BEP 52 v2 + v1) single-file torrent of one 16 KiB piece: a v2
 * `file tree` with the file's `pieces root`, `meta version` 2, and the v1
 * `pieces` and `length` in the same info dictionary. Returns both hashes
 * (v2 truncated to the 20 bytes v2 clients announce).
 */
export function makeHybridTorrent(name, announce, { private: isPrivate = true, extra = {} } = {}) {
  const pieceLength = 16 * 1024;
  const data = randomBytesSync(pieceLength);
  // One 16 KiB block: the merkle root is that block's SHA-256.
  const piecesRoot = createHash('sha256').update(data).digest();
  const info = {
    'file tree': { [name]: { '': { length: data.length, 'pieces root': piecesRoot } } },
    length: data.length,
    'meta version': 2,
    name: Buffer.from(name),
    'piece length': pieceLength,
    pieces: createHash('sha1').update(data).digest(),
    ...(isPrivate ? { private: 1 } : {}),
  };
  const encoded = bencode.encode(info);
  const infoHash = createHash('sha1').update(encoded).digest();
  const v2Hash = createHash('sha256').update(encoded).digest().subarray(0, 20);
  const torrent = Buffer.from(bencode.encode({ announce: Buffer.from(announce), info, ...extra }));
  return { torrent, infoHash, v2Hash, info };
}

/**
 * A private multi-file v1 torrent of about `targetBytes` (many files with
 * long paths, as large releases have), for size limits.
 */
export function makeLargeTorrent(targetBytes, announce, { extra = {}, name = 'large-release' } = {}) {
  const files = [];
  let size = 0;
  for (let i = 0; size < targetBytes; i++) {
    const path = [Buffer.from(`disc-${Math.floor(i / 1000)}`), Buffer.from(`track-${String(i).padStart(6, '0')}-${'x'.repeat(100)}.flac`)];
    files.push({ length: 1000 + i, path });
    size += 140;
  }
  const total = files.reduce((a, f) => a + f.length, 0);
  const pieceLength = 4 * 1024 * 1024;
  const info = {
    files,
    name: Buffer.from(name),
    'piece length': pieceLength,
    pieces: Buffer.alloc(20 * Math.ceil(total / pieceLength), 7),
    private: 1,
  };
  const infoHash = createHash('sha1').update(bencode.encode(info)).digest();
  const torrent = Buffer.from(bencode.encode({ announce: Buffer.from(announce), comment: Buffer.from('large'), info, ...extra }));
  return { torrent, infoHash, info };
}
