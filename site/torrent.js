// `/torrents/<info hash>`: one torrent, its files, the magnet link and the
// personal .torrent download.
import { api, bytes, copyFrom, count, date, el, ready, signedIn, start } from './site.js';

const $ = (id) => document.getElementById(id);

start(async () => {
  await signedIn();
  const hash = location.pathname.split('/')[2] ?? '';
  const t = await api('GET', `/torrents/${encodeURIComponent(hash)}`);
  document.title = `${t.name} · edge-tracker`;
  $('name').textContent = t.name;
  $('freeleech').hidden = !t.freeleech;
  $('size').textContent = bytes(t.size);
  $('seeders').textContent = count(t.seeders);
  $('leechers').textContent = count(t.leechers);
  $('completed').textContent = count(t.completed);
  $('added').textContent = date(t.added);
  $('uploader').textContent = t.uploader ?? 'a former member';
  $('hash').textContent = t.info_hash;
  $('download').href = `/api/torrents/${t.info_hash}.torrent`;
  $('magnet').value = t.magnet;
  $('copy-magnet').addEventListener('click', () => copyFrom($('magnet'), $('copy-status'), 'Magnet link'));
  $('files').querySelector('tbody').replaceChildren(...t.files.map((f) =>
    el('tr', {}, el('td', { class: 'name mono' }, f.path), el('td', { class: 'num' }, bytes(f.size)))));
  $('files-caption').textContent = t.file_count > t.files.length
    ? `The first ${t.files.length} of ${count(t.file_count)} files`
    : `${count(t.file_count)} file${t.file_count === 1 ? '' : 's'}`;
  ready();
});
