// Runs the hashing in Web Workers (create-worker.js). v1 pieces are split
// into contiguous ranges, one per worker, so several cores hash at once; a
// hybrid torrent is hashed file by file in one worker. Cancel terminates
// the workers at once.

export class Cancelled extends Error {
  constructor() {
    super('cancelled');
    this.name = 'Cancelled';
  }
}

/** Workers for v1: one per core, at most 4, and never fewer than 64 pieces each. */
export function workerCount(pieces, cores = navigator.hardwareConcurrency || 1) {
  return Math.max(1, Math.min(cores, 4, Math.floor(pieces / 64)));
}

/**
 * Starts hashing `plan` (create-torrent.js planFiles). `onBytes(n)` is
 * called as bytes are hashed. Returns { done, cancel }: `done` resolves to
 * { pieces, roots?, layers? } or rejects (with Cancelled after cancel()).
 */
export function startHashing(plan, pieceLength, { hybrid, workers: wanted, onBytes }) {
  const blobs = plan.files.map((f) => f.blob);
  const total = blobs.reduce((n, b) => n + b.size, 0);
  const count = Math.ceil(total / pieceLength);
  const jobs = [];
  if (hybrid) {
    jobs.push({ kind: 'hybrid', blobs, pieceLength });
  } else {
    const n = wanted ?? workerCount(count);
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
    if (hybrid) return parts[0];
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
