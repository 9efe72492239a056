// `/me`: the member's totals, the ratio rule in words, the announce URL,
// passkey reset, password change, sign-out and their own torrents.
import { api, bytes, copyFrom, count, el, ratio, ready, say, signOut, signedIn, start, words } from './site.js';

const $ = (id) => document.getElementById(id);

function rule(me) {
  const allowance = bytes(me.ratio_allowance);
  const min = me.min_ratio;
  const state = me.may_leech
    ? el('strong', { class: 'state-ok' }, 'You may start new downloads.')
    : el('strong', { class: 'state-bad' }, 'You may not start new downloads now.');
  const why = me.may_leech
    ? ` The rule: after your first ${allowance} downloaded, you need to have uploaded at least ${min} times what you downloaded to start new ones.`
    : ` You have downloaded more than ${allowance} and uploaded less than ${min} times that. Keep seeding: you can still upload and finish downloads in progress, and new downloads open again once your ratio reaches ${min}.`;
  $('may-leech').replaceChildren(state, why);
}

function show(me) {
  $('username').textContent = me.username;
  $('uploaded').textContent = bytes(me.uploaded);
  $('uploaded').dataset.bytes = me.uploaded;
  $('downloaded').textContent = bytes(me.downloaded);
  $('downloaded').dataset.bytes = me.downloaded;
  $('ratio').textContent = ratio(me.ratio);
  $('announce').value = me.announce_url;
  rule(me);
}

async function mine() {
  const page = await api('GET', '/torrents?mine=1&limit=100');
  $('mine').querySelector('tbody').replaceChildren(...page.torrents.map((t) => el('tr', {},
    el('td', { class: 'name' }, el('a', { href: `/torrents/${t.info_hash}` }, t.name)),
    el('td', { class: 'num' }, bytes(t.size)),
    el('td', { class: 'num' }, count(t.seeders)),
    el('td', { class: 'num' }, count(t.leechers)),
    el('td', { class: 'num hide-narrow' }, count(t.completed)))));
  $('mine-empty').hidden = page.torrents.length > 0;
}

start(async () => {
  const me = await signedIn();
  show(me);
  $('copy').addEventListener('click', () => copyFrom($('announce'), $('announce-status'), 'Announce URL'));
  $('reset').addEventListener('click', async () => {
    if (!confirm('Get a new passkey? Your current announce URL stops working at once.')) return;
    try {
      const r = await api('POST', '/me/passkey');
      $('announce').value = r.announce_url;
      say($('announce-status'), 'New passkey made. Download your torrents again to use it.');
    } catch (e) {
      say($('announce-status'), words(e), 'error');
    }
  });
  $('password').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const status = $('password-status');
    const fresh = f.elements.new_password.value;
    try {
      // A new password ends every session, this one too: sign in again with it.
      await api('POST', '/me/password', { json: { password: f.elements.password.value, new_password: fresh } });
      await api('POST', '/session', { json: { username: me.username, password: fresh } });
      f.reset();
      say(status, 'Password changed. Other browsers are signed out.');
    } catch (e) {
      say(status, words(e), 'error');
    }
  });
  $('signout').addEventListener('click', signOut);
  await mine();
  ready();
});
