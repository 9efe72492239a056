// A tracker runtime in its own process, so a test can SIGKILL it:
//   node tests/fault/runtime.mjs <persist dir> '<vars as JSON>'
// Prints {"base": "http://127.0.0.1:PORT"} once it serves.
import { startTracker } from '../helpers.mjs';

const [dir, vars = '{}'] = process.argv.slice(2);
const t = await startTracker({ persistDir: dir, vars: JSON.parse(vars) });
process.stdout.write(JSON.stringify({ base: t.base }) + '\n');
process.on('SIGTERM', async () => {
  await t.stop();
  process.exit(0);
});
setInterval(() => {}, 1 << 30);
