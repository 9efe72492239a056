// Makes single-file .torrent metainfo for tests (BEP 3), with bencode.
import bencode from 'bencode';
import { createHash } from 'node:crypto';
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
