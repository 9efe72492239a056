// `/admin`, for members with the admin role: users (ban, unban, adjust),
// invites, freeleech, client bans, blocked torrents and integrity flags.
// Every call is the admin API with the member's session cookie; the
// operator's ADMIN_TOKEN is never typed into a page.
import { api, bytes, copyFrom, el, ratio, ready, say, signedIn, start, words } from './site.js';

const $ = (id) => document.getElementById(id);

/** Runs `fn`, then says `done` (or the error) in `status`. */
async function act(status, fn, done) {
  try {
    const r = await fn();
    say(status, typeof done === 'function' ? done(r) : done);
    return true;
  } catch (e) {
    say(status, words(e), 'error');
    return false;
  }
}

async function users() {
  const { users: list } = await api('GET', '/admin/users');
  $('users').querySelector('tbody').replaceChildren(...list.map((u) => {
    const name = encodeURIComponent(u.username);
    const action = u.banned ? 'unban' : 'ban';
    const button = el('button', { type: 'button', class: u.banned ? 'secondary' : 'danger', onclick: async () => {
      if (await act($('users-status'), () => api('POST', `/admin/users/${name}/${action}`), `${u.username} is ${action}ned.`)) await users();
    } }, `${u.banned ? 'Unban' : 'Ban'} ${u.username}`);
    return el('tr', {},
      el('td', {}, u.username, u.admin ? el('span', { class: 'badge' }, 'Admin') : null),
      el('td', { class: 'num' }, bytes(u.uploaded)),
      el('td', { class: 'num hide-narrow' }, bytes(u.downloaded)),
      el('td', { class: 'num hide-narrow' }, ratio(u.ratio)),
      el('td', {}, u.banned ? 'Banned' : 'Active'),
      el('td', {}, button));
  }));
}

async function bans() {
  const { prefixes } = await api('GET', '/admin/client-bans');
  $('bans').replaceChildren(...prefixes.map((p) => el('li', {}, el('code', {}, p), ' ',
    el('button', { type: 'button', class: 'secondary', onclick: async () => {
      if (await act($('bans-status'), () => api('DELETE', '/admin/client-bans', { json: { prefix: p } }), `${p} is allowed again.`)) await bans();
    } }, `Unban ${p}`))));
  if (prefixes.length === 0) $('bans').replaceChildren(el('li', {}, 'No client is banned.'));
}

async function blocked() {
  const { blocked: list } = await api('GET', '/admin/blocked');
  $('blocked').replaceChildren(...list.map((h) => el('li', {}, el('code', {}, h), ' ',
    el('button', { type: 'button', class: 'secondary', onclick: async () => {
      if (await act($('blocked-status'), () => api('DELETE', '/admin/blocked', { json: { info_hash: h } }), 'Torrent unblocked.')) await blocked();
    } }, 'Unblock'))));
  if (list.length === 0) $('blocked').replaceChildren(el('li', {}, 'No torrent is blocked.'));
}

/** Flags come from `GET /api/admin/flags`, if this tracker has it. */
async function flags() {
  let data;
  try {
    data = await api('GET', '/admin/flags');
  } catch (e) {
    if (e.status !== 404) return say($('flags-status'), words(e), 'error');
    $('flags-status').classList.add('muted');
    $('flags-status').textContent = 'This tracker version does not list flags yet.';
    return;
  }
  const rows = Object.values(data ?? {}).find(Array.isArray) ?? [];
  if (rows.length === 0) return say($('flags-status'), 'No flags.');
  const columns = Object.keys(rows[0]);
  const table = $('flags');
  table.querySelector('thead').replaceChildren(el('tr', {}, ...columns.map((c) => el('th', { scope: 'col' }, c.replace(/_/g, ' ')))));
  table.querySelector('tbody').replaceChildren(...rows.slice(0, 200).map((r) => el('tr', {}, ...columns.map((c) => el('td', {}, String(r[c] ?? ''))))));
  table.hidden = false;
}

function forms() {
  $('adjust').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = ev.target.elements;
    const body = { uploaded: Number(f.uploaded.value || 0), downloaded: Number(f.downloaded.value || 0) };
    if (await act($('users-status'), () => api('POST', `/admin/users/${encodeURIComponent(f.username.value)}/adjust`, { json: body }),
      (r) => `${r.username} now has ${bytes(r.uploaded)} uploaded and ${bytes(r.downloaded)} downloaded.`)) await users();
  });
  $('invite').addEventListener('click', () => act($('invite-status'), async () => {
    const r = await api('POST', '/admin/invites');
    $('invite-code').value = r.invite;
    $('invite-box').hidden = false;
  }, 'Invite code created. Give it to one person.'));
  $('invite-copy').addEventListener('click', () => copyFrom($('invite-code'), $('invite-status'), 'Invite code'));
  $('freeleech').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const f = ev.target.elements;
    const on = f.freeleech.value === 'true';
    act($('freeleech-status'), () => api('POST', `/admin/torrents/${f.info_hash.value.toLowerCase()}/freeleech`, { json: { freeleech: on } }),
      `Freeleech is ${on ? 'on' : 'off'} for that torrent.`);
  });
  $('ban').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const prefix = ev.target.elements.prefix.value;
    if (await act($('bans-status'), () => api('POST', '/admin/client-bans', { json: { prefix } }), `${prefix} is banned.`)) {
      ev.target.reset();
      await bans();
    }
  });
  $('block').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const info_hash = ev.target.elements.info_hash.value.toLowerCase();
    if (await act($('blocked-status'), () => api('POST', '/admin/blocked', { json: { info_hash } }), 'Torrent blocked.')) {
      ev.target.reset();
      await blocked();
    }
  });
}

start(async () => {
  const me = await signedIn();
  if (!me.admin) {
    $('main').replaceChildren(el('h1', {}, 'Admin'), el('p', { role: 'alert' }, 'This page is for admin members. Ask the operator to give your account the admin role.'));
    ready();
    return;
  }
  forms();
  await Promise.all([users(), bans(), blocked(), flags()]);
  ready();
});
