// A WebTorrent (npm webtorrent 2.x) peer for the end-to-end tests: TCP
// peers only, DHT and local discovery off, so the tracker is the only
// source of peers. Seeds when the data is already in --dir. Runs until killed.
import WebTorrent from 'webtorrent';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    torrent: { type: 'string' },
    dir: { type: 'string' },
    port: { type: 'string' },
    seed: { type: 'boolean', default: false },
  },
});

const client = new WebTorrent({ dht: false, lsd: false, utp: false, webSeeds: false, torrentPort: Number(args.port) });
client.on('error', (e) => console.log(`client error: ${e.message}`));
const torrent = client.add(readFileSync(args.torrent), { path: args.dir });
torrent.on('warning', (e) => console.log(`warning: ${e.message ?? e}`));
torrent.on('error', (e) => console.log(`torrent error: ${e.message ?? e}`));
torrent.on('ready', () => console.log(`ready ${torrent.infoHash}`));
torrent.on('done', () => console.log('done'));
torrent.on('wire', (wire, addr) => console.log(`wire ${addr}`));
setInterval(() => {
  console.log(`status progress=${torrent.progress.toFixed(3)} peers=${torrent.numPeers} seeding=${torrent.done}`);
}, 1000);
const stop = () => client.destroy(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
