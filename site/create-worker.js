// The torrent creator's Web Worker: hashes what the page sends, off the
// page's thread, and reports bytes done. The page cancels by terminating it.
// Message in: { kind: 'v1', blobs, pieceLength, first, end } (pieces
// [first, end) of the blobs end to end) or { kind: 'hybrid', blobs,
// pieceLength, segments } (create-hash.js splitHybrid). Messages out: { type: 'progress', bytes } (since the last),
// { type: 'done', result }, { type: 'error', message }.
import { hashPiecesV1, hashSegments } from './create-hash.js';

self.onmessage = async ({ data }) => {
  const progress = (bytes) => self.postMessage({ type: 'progress', bytes });
  try {
    if (data.kind === 'v1') {
      const pieces = await hashPiecesV1(new Blob(data.blobs), data.pieceLength, { first: data.first, end: data.end, progress });
      self.postMessage({ type: 'done', result: { pieces } }, [pieces.buffer]);
    } else if (data.kind === 'hybrid') {
      const result = await hashSegments(data.blobs, data.pieceLength, data.segments, progress);
      self.postMessage({ type: 'done', result });
    } else {
      throw new Error(`unknown job ${data.kind}`);
    }
  } catch (e) {
    // A file that changed or vanished while being read is a NotReadableError.
    self.postMessage({ type: 'error', message: e?.name === 'NotReadableError' ? 'a file could not be read (was it moved or changed?)' : String(e?.message ?? e) });
  }
};
