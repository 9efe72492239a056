// `/torrents`: search, sort and page through the catalogue. The form is a
// plain GET form, so the state lives in the address (back and forward
// work, a search can be bookmarked); this script reads it and asks the API.
import { api, bytes, count, date, el, ready, signedIn, start } from './site.js';

const KEYS = ['q', 'sort', 'order', 'after'];

function row(t) {
  const name = el('td', { class: 'name' }, el('a', { href: `/torrents/${t.info_hash}` }, t.name));
  if (t.freeleech) name.append(el('span', { class: 'badge' }, 'Freeleech'));
  return el('tr', {},
    name,
    el('td', { class: 'num' }, bytes(t.size)),
    el('td', { class: 'num' }, count(t.seeders)),
    el('td', { class: 'num' }, count(t.leechers)),
    el('td', { class: 'num hide-narrow' }, count(t.completed)),
    el('td', { class: 'num hide-narrow' }, date(t.added).slice(0, 10)));
}

start(async () => {
  await signedIn();
  const params = new URLSearchParams(location.search);
  const form = document.getElementById('find');
  for (const k of ['q', 'sort', 'order']) if (params.get(k)) form.elements[k].value = params.get(k);
  const query = new URLSearchParams();
  for (const k of KEYS) if (params.get(k)) query.set(k, params.get(k));
  const page = await api('GET', `/torrents?${query}`);

  const body = document.querySelector('#list tbody');
  body.replaceChildren(...page.torrents.map(row));
  const q = params.get('q');
  const summary = document.getElementById('summary');
  if (page.torrents.length === 0) {
    summary.textContent = q ? `No torrent matches “${q}”.` : 'No torrents yet. Upload or create one.';
  } else {
    summary.textContent = `${page.torrents.length} torrent${page.torrents.length === 1 ? '' : 's'}${q ? ` matching “${q}”` : ''}${params.get('after') ? ' (later page)' : ''}.`;
  }
  if (page.next) {
    const next = new URLSearchParams(query);
    next.set('after', page.next);
    const a = document.getElementById('next');
    a.href = `/torrents?${next}`;
    a.hidden = false;
  }
  if (params.get('after')) {
    const first = new URLSearchParams(query);
    first.delete('after');
    const a = document.getElementById('first');
    a.href = `/torrents?${first}`;
    a.hidden = false;
  }
  ready();
});
