// Runs the hashing in Web Workers (create-worker.js). The pieces are split
// into contiguous runs, one per worker, so several cores hash at once (for
// a hybrid torrent, runs of each file's pieces; the file roots are joined
// here). Cancel terminates the workers at once.
import { splitHybrid, joinHybrid } from './create-hash.js';

export class Cancelled extends Error {
  constructor() {
    super('cancelled');
    this.name = 'Cancelled';
  }
}

/** Workers: one per core, at most 4, and never fewer than 64 pieces each. */
export function workerCount(pieces, cores = navigator.hardwareConcurrency || 1) {
  return Math.max(1, Math.min(cores, 4, Math.floor(pieces / 64)));
}

/**
 * Starts hashing `plan` (create-torrent.js planFiles) in `workers` workers
 * (default: workerCount). `onBytes(n)` is
 * called as bytes are hashed. Returns { done, cancel }: `done` resolves to
 * { pieces, roots?, layers? } or rejects (with Cancelled after cancel()).
 */
export function startHashing(plan, pieceLength, { hybrid, workers: wanted, onBytes }) {
  const blobs = plan.files.map((f) => f.blob);
  const sizes = blobs.map((b) => b.size);
  const total = sizes.reduce((n, s) => n + s, 0);
  const count = Math.ceil(total / pieceLength);
  const n = wanted ?? workerCount(count);
  const jobs = [];
  const runs = hybrid ? splitHybrid(sizes, pieceLength, n) : null;
  if (hybrid) {
    for (const segments of runs) jobs.push({ kind: 'hybrid', blobs, pieceLength, segments });
  } else {
    for (let k = 0; k < n; k++) {
      jobs.push({ kind: 'v1', blobs, pieceLength, first: Math.floor((count * k) / n), end: Math.floor((count * (k + 1)) / n) });
    }
  }
  const running = [];
  let abort;
  const aborted = new Promise((_, reject) => { abort = reject; });
  const results = jobs.map((job) => new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./create-worker.js', import.meta.url), { type: 'module' });
    running.push(worker);
    worker.onmessage = ({ data }) => {
      if (data.type === 'progress') onBytes?.(data.bytes);
      else if (data.type === 'done') resolve(data.result);
      else reject(new Error(data.message));
    };
    worker.onerror = (e) => {
      e.preventDefault?.();
      reject(new Error(e.message || 'the hashing worker could not start'));
    };
    worker.postMessage(job);
  }));
  const stop = () => running.forEach((w) => w.terminate());
  const done = Promise.race([Promise.all(results), aborted]).then((parts) => {
    if (hybrid) return joinHybrid(sizes, pieceLength, runs, parts);
    const pieces = new Uint8Array(count * 20);
    let at = 0;
    for (const p of parts) {
      pieces.set(p.pieces, at);
      at += p.pieces.length;
    }
    return { pieces };
  }).finally(stop);
  return {
    done,
    cancel() {
      stop();
      abort(new Cancelled());
    },
  };
}
