// The torrent creator's library (site/create-*.js), in node: the bencode
// encoder against npm `bencode`, the piece-size rule, and the hashes
// against node:crypto and against libtorrent's own creator.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bencode from 'bencode';
import { encode } from '../site/create-bencode.js';
import { pickPieceLength, planFiles, buildInfo, buildTorrent, magnet, padLengths } from '../site/create-torrent.js';
import { hashPiecesV1, hashHybrid, splitHybrid, hashSegments, joinHybrid } from '../site/create-hash.js';

const sha1 = (b) => createHash('sha1').update(b).digest();

test('the encoder writes what npm bencode writes', () => {
  const values = [
    0, -7, 2 ** 53 - 1, '', 'spam', 'ünïcödé', new Uint8Array([0, 255, 10]), [], [1, 'a', [2]],
    { b: 1, a: 'x', 'piece length': 16384, nested: { z: [new Uint8Array(3)], y: {} } },
    { announce: 'http://127.0.0.1/announce', info: { name: 'n', files: [{ length: 3, path: ['a', 'b'] }] } },
  ];
  for (const v of values) assert.deepEqual(Buffer.from(encode(v)), Buffer.from(bencode.encode(v)), JSON.stringify(v));
  for (let i = 0; i < 50; i++) {
    const v = Object.fromEntries(Array.from({ length: 8 }, () => [randomBytes(3).toString('hex'), randomBytes(5)]));
    assert.deepEqual(Buffer.from(encode(v)), Buffer.from(bencode.encode(v)));
  }
});

test('dictionary keys are sorted by raw bytes, including byte keys', () => {
  // UTF-16 order puts U+1F600 (D83D..) before U+FF61; UTF-8 bytes put EF BD A1 before F0 9F.
  assert.equal(Buffer.from(encode({ '😀': 1, '｡': 2 })).toString(), 'd3:｡i2e4:😀i1ee');
  const high = new Uint8Array(32).fill(0xff);
  const low = new Uint8Array(32);
  const out = Buffer.from(encode(new Map([[high, 'h'], [low, 'l']])));
  assert.deepEqual(out, Buffer.concat([Buffer.from('d32:'), low, Buffer.from('1:l32:'), high, Buffer.from('1:he')]));
});

test('the encoder refuses what bencode cannot say', () => {
  for (const bad of [1.5, NaN, null, undefined, () => 1, { a: undefined }, new Map([['a', 1], [new TextEncoder().encode('a'), 2]])]) {
    assert.throws(() => encode(bad), TypeError);
  }
});

test('piece size: a power of two from 16 KiB to 16 MiB, at most 2,048 pieces', () => {
  assert.equal(pickPieceLength(0), 16384);
  assert.equal(pickPieceLength(1), 16384);
  assert.equal(pickPieceLength(2 ** 30), 512 * 1024);
  assert.equal(pickPieceLength(2 ** 50), 16 * 2 ** 20);
  // From 32 MiB to 32 GiB, 1,025 to 2,048 pieces; beyond, 16 MiB pieces.
  for (let size = 2 ** 25 + 1; size <= 2 ** 35; size = Math.floor(size * 1.37)) {
    const pieces = Math.ceil(size / pickPieceLength(size));
    assert.ok(pieces > 1024 && pieces <= 2048, `${size} bytes: ${pieces} pieces`);
  }
  assert.equal(pickPieceLength(2 ** 40), 16 * 2 ** 20);
});

function folder(sizes) {
  return sizes.map(([path, size]) => ({ path, blob: new Blob([randomBytes(size)]) }));
}

test('v1 pieces are the SHA-1s of the files end to end, in any split', async () => {
  const picked = folder([['album/b.bin', 70000], ['album/a/x.bin', 1], ['album/c.bin', 300001], ['album/empty', 0]]);
  const plan = planFiles(picked);
  assert.equal(plan.name, 'album');
  assert.deepEqual(plan.files.map((f) => f.path.join('/')), ['a/x.bin', 'b.bin', 'c.bin', 'empty']);
  const all = Buffer.concat(await Promise.all(plan.files.map(async (f) => Buffer.from(await f.blob.arrayBuffer()))));
  const pl = 32768;
  const want = [];
  for (let i = 0; i < all.length; i += pl) want.push(sha1(all.subarray(i, i + pl)));
  const blob = new Blob(plan.files.map((f) => f.blob));
  assert.deepEqual(Buffer.from(await hashPiecesV1(blob, pl)), Buffer.concat(want));
  const count = want.length;
  const halves = [await hashPiecesV1(blob, pl, { first: 0, end: 5 }), await hashPiecesV1(blob, pl, { first: 5, end: count })];
  assert.deepEqual(Buffer.concat(halves), Buffer.concat(want));

  const info = buildInfo(plan, pl, { pieces: await hashPiecesV1(blob, pl) }, { private: true, source: 'ET' });
  const t = await buildTorrent(info, { announce: 'http://127.0.0.1:1/announce/abc', comment: 'hi', webSeeds: ['https://example.org/'] });
  const decoded = bencode.decode(Buffer.from(t.bytes));
  assert.equal(t.infoHash, sha1(bencode.encode(decoded.info)).toString('hex'));
  assert.equal(decoded.info.private, 1);
  assert.equal(Buffer.from(decoded.info.source).toString(), 'ET');
  assert.deepEqual(decoded.info.files.map((f) => [f.length, f.path.map((p) => Buffer.from(p).toString()).join('/')]), [[1, 'a/x.bin'], [70000, 'b.bin'], [300001, 'c.bin'], [0, 'empty']]);
  assert.equal(Buffer.from(decoded['url-list'][0]).toString(), 'https://example.org/');
  assert.equal(magnet(t, 'al bum', 'http://t/announce'), `magnet:?xt=urn:btih:${t.infoHash}&dn=al%20bum&tr=http%3A%2F%2Ft%2Fannounce`);
});

test('a single file makes a single-file torrent; paths that escape are refused', () => {
  const plan = planFiles(folder([['movie.mkv', 10]]));
  assert.deepEqual([plan.single, plan.name, plan.files[0].path], [true, 'movie.mkv', []]);
  assert.throws(() => planFiles(folder([['a/../b', 1]])), /unusable path/);
  assert.throws(() => planFiles([]), /no files/);
  assert.deepEqual(padLengths([{ length: 5 }, { length: 16384 }, { length: 7 }], 16384), [16379, 0, 0]);
});

const LT_CREATE = `
import os, sys, libtorrent as lt
root, piece = sys.argv[1], int(sys.argv[2])
fs = lt.file_storage()
lt.add_files(fs, root)
ct = lt.create_torrent(fs, piece)
lt.set_piece_hashes(ct, os.path.dirname(root))
sys.stdout.buffer.write(lt.bencode(ct.generate()))
`;

test('hybrid v1+v2 hashes match libtorrent 2.0 creating the same folder', { skip: spawnSync('/usr/bin/python3', ['-c', 'import libtorrent']).status !== 0 ? 'python3-libtorrent missing' : false }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'create-lib-'));
  try {
    const pl = 32768;
    // One file under a block, one of several pieces with a short tail, one of exactly two pieces, one empty.
    const picked = folder([['set/small', 1000], ['set/big', pl * 5 + 12345], ['set/even', pl * 2], ['set/zero', 0], ['set/sub/mid', pl + 1]]);
    for (const p of picked) {
      mkdirSync(join(dir, ...p.path.split('/').slice(0, -1)), { recursive: true });
      writeFileSync(join(dir, p.path), Buffer.from(await p.blob.arrayBuffer()));
    }
    const r = spawnSync('/usr/bin/python3', ['-c', LT_CREATE, join(dir, 'set'), String(pl)], { maxBuffer: 1 << 24 });
    assert.equal(r.status, 0, r.stderr?.toString());
    const theirs = bencode.decode(r.stdout);
    const plan = planFiles(picked);
    const hashes = await hashHybrid(plan.files, pl);
    const ours = bencode.decode(Buffer.from(encode({ info: buildInfo(plan, pl, hashes), 'piece layers': hashes.layers })));
    assert.deepEqual(ours.info['file tree'], theirs.info['file tree']);
    assert.deepEqual(ours['piece layers'], theirs['piece layers']);
    assert.deepEqual(Buffer.from(ours.info.pieces).toString('hex'), Buffer.from(theirs.info.pieces).toString('hex'));
    const files = (i) => i.files.map((f) => [f.length, f.path.map((p) => Buffer.from(p).toString()).join('/'), f.attr ? Buffer.from(f.attr).toString() : '']);
    assert.deepEqual(files(ours.info), files(theirs.info));

    // A single file: `length` instead of `files`, the file tree keyed by its name.
    const one = folder([['movie.mkv', pl * 3 + 5]]);
    writeFileSync(join(dir, 'movie.mkv'), Buffer.from(await one[0].blob.arrayBuffer()));
    const r1 = spawnSync('/usr/bin/python3', ['-c', LT_CREATE, join(dir, 'movie.mkv'), String(pl)], { maxBuffer: 1 << 24 });
    assert.equal(r1.status, 0, r1.stderr?.toString());
    const theirs1 = bencode.decode(r1.stdout);
    const plan1 = planFiles(one);
    const hashes1 = await hashHybrid(plan1.files, pl);
    const info1 = buildInfo(plan1, pl, hashes1);
    const ours1 = bencode.decode(Buffer.from(encode({ info: info1, 'piece layers': hashes1.layers })));
    assert.deepEqual(ours1.info, theirs1.info);
    assert.deepEqual(ours1['piece layers'], theirs1['piece layers']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a hybrid torrent hashed in several runs (workers) gives the same hashes as in one', async () => {
  const pl = 16384;
  const blobs = [70000, 0, 16384 * 3, 5, 200000].map((n) => new Blob([randomBytes(n)]));
  const sizes = blobs.map((b) => b.size);
  const one = await hashHybrid(blobs.map((blob) => ({ blob })), pl);
  for (const n of [2, 3, 7]) {
    const runs = splitHybrid(sizes, pl, n);
    assert.equal(runs.flat().reduce((c, s) => c + s.end - s.first, 0), Math.ceil(70000 / pl) + 3 + 1 + Math.ceil(200000 / pl));
    const results = await Promise.all(runs.map((segments) => hashSegments(blobs, pl, segments)));
    const joined = await joinHybrid(sizes, pl, runs, results);
    assert.deepEqual(joined, one, `${n} runs`);
  }
});
