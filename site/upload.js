// `/upload`: send a .torrent to the registry; errors in words.
import { api, ready, say, signedIn, start, words } from './site.js';

const MAX_BYTES = 10 * 1024 * 1024;
const $ = (id) => document.getElementById(id);

start(async () => {
  await signedIn();
  $('upload').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const status = $('upload-status');
    const file = ev.target.elements.file.files[0];
    $('done').hidden = true;
    if (!file) return say(status, 'Choose a .torrent file first.', 'error');
    if (file.size > MAX_BYTES) return say(status, `That file is ${Math.ceil(file.size / 1048576)} MiB; a .torrent may be at most 10 MiB.`, 'error');
    say(status, 'Uploading…');
    try {
      const t = await api('POST', '/torrents', { body: await file.arrayBuffer() });
      say(status, `“${t.name}” is registered.`);
      $('done-link').href = `/torrents/${t.info_hash}`;
      $('done-download').href = `/api/torrents/${t.info_hash}.torrent`;
      $('done').hidden = false;
    } catch (e) {
      say(status, words(e), 'error');
    }
  });
  ready();
});
