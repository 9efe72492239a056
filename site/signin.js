// `/` in private mode: sign in, or create an account (with an invite code
// when the tracker is invite-only). Signed-in members go to the torrents.
import { api, header, ready, say, start, words } from './site.js';

const form = (id) => document.getElementById(id);

async function signIn(username, password) {
  await api('POST', '/session', { json: { username, password } });
}

start(async () => {
  header(null);
  const site = await api('GET', '/site');
  try {
    await api('GET', '/me');
    location.replace('/torrents');
    return;
  } catch {
    // Not signed in: stay.
  }
  if (site.invite_only) {
    form('invite-label').hidden = false;
    form('register').elements.invite.required = true;
  }

  form('signin').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const status = form('signin-status');
    say(status, 'Signing in…');
    try {
      await signIn(f.elements.username.value, f.elements.password.value);
      location.assign('/torrents');
    } catch (e) {
      say(status, words(e), 'error');
      f.elements.password.focus();
    }
  });

  form('register').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = ev.target;
    const status = form('register-status');
    const body = { username: f.elements.username.value, password: f.elements.password.value };
    if (site.invite_only) body.invite = f.elements.invite.value.trim();
    say(status, 'Creating your account…');
    try {
      await api('POST', '/users', { json: body });
      await signIn(body.username, body.password);
      location.assign('/me');
    } catch (e) {
      say(status, words(e), 'error');
    }
  });
  ready();
});
