// Shared by the private tracker's pages (plain ES modules, no framework):
// the JSON API with the session cookie, the header, the live status lines
// screen readers announce, and formatting. The cookie is HttpOnly: no
// script here ever sees the session token.

/** An API error with the server's words. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/**
 * Calls the JSON API with the cookie. `json` is sent as a JSON body, `body`
 * as is (a .torrent). Resolves to the parsed JSON; rejects with ApiError.
 */
export async function api(method, path, { json, body } = {}) {
  const init = { method, credentials: 'same-origin', headers: {} };
  if (json !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(json);
  } else if (body !== undefined) {
    init.headers['content-type'] = 'application/x-bittorrent';
    init.body = body;
  }
  let res;
  try {
    res = await fetch(`/api${path}`, init);
  } catch {
    throw new ApiError(0, 'The tracker could not be reached. Check your connection and try again.');
  }
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, data?.error ?? `The tracker answered ${res.status}.`);
  return data;
}

/** Shows `message` in a live status element (role=status or role=alert). */
export function say(el, message, kind = 'ok') {
  el.classList.remove('ok', 'error');
  el.classList.add(kind === 'error' ? 'error' : 'ok');
  // A change of text is what assistive technology announces.
  el.textContent = message;
}

/** Words for an error: the server's message, with a first letter in capitals. */
export function words(e) {
  const m = e instanceof Error ? e.message : String(e);
  return m.charAt(0).toUpperCase() + m.slice(1) + (/[.!?]$/.test(m) ? '' : '.');
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
export function bytes(n) {
  let v = Number(n);
  let i = 0;
  while (v >= 1024 && i < UNITS.length - 1) { v /= 1024; i++; }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 2 : 1)} ${UNITS[i]}`;
}

export const count = (n) => Number(n).toLocaleString('en-US');

export function date(seconds) {
  return new Date(seconds * 1000).toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
}

export function ratio(r) {
  return r === null || r === undefined ? '∞' : Number(r).toFixed(2);
}

/** `el('td', {class: 'num'}, 'text', child, ...)`: a DOM element. */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}

const NAV = [
  ['/torrents', 'Torrents'],
  ['/upload', 'Upload'],
  ['/create', 'Create'],
  ['/me', 'My account'],
];

/**
 * For pages that need a member: fetches /api/me (or sends the visitor to
 * sign in) and fills the header. Resolves to the member.
 */
export async function signedIn() {
  let me;
  try {
    me = await api('GET', '/me');
  } catch (e) {
    if (e.status === 401 || e.status === 403) {
      location.replace('/');
      return new Promise(() => {});
    }
    throw e;
  }
  header(me);
  return me;
}

/** Fills `<header class="site">` with the brand, the menu and sign-out. */
export function header(me) {
  const h = document.querySelector('header.site');
  const here = location.pathname.replace(/\/$/, '') || '/';
  const items = me ? [...NAV, ...(me.admin ? [['/admin', 'Admin']] : [])] : [];
  const list = el('ul', {}, ...items.map(([href, label]) =>
    el('li', {}, el('a', { href, 'aria-current': here === href || (href === '/torrents' && here.startsWith('/torrents/')) ? 'page' : false }, label))));
  h.replaceChildren(
    el('a', { class: 'brand', href: me ? '/torrents' : '/' }, 'edge-tracker'),
    el('nav', { 'aria-label': 'Site' }, list),
  );
  if (me) {
    h.append(el('button', { type: 'button', class: 'secondary signout', onclick: signOut }, `Sign out (${me.username})`));
  }
}

export async function signOut() {
  try {
    await api('DELETE', '/session');
  } finally {
    location.assign('/');
  }
}

/** Copies the value of `input` and says so in `status`. */
export async function copyFrom(input, status, what) {
  try {
    await navigator.clipboard.writeText(input.value);
  } catch {
    input.select();
    document.execCommand?.('copy');
  }
  say(status, `${what} copied.`);
}

/** Marks the page ready (tests wait for it) once its first data is shown. */
export function ready() {
  document.body.dataset.ready = 'true';
}

/** Runs a page's start function; an error it throws is shown in words. */
export function start(fn) {
  fn().catch((e) => {
    const main = document.querySelector('main');
    const status = el('p', { role: 'alert', class: 'status error' }, words(e));
    main.prepend(status);
    ready();
  });
}
