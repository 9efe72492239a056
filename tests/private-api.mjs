// Private-mode API helpers for tests: JSON calls, accounts, passkey announces,
// and the tracker a test file runs them against.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTracker, get, escapeBytes, text, ADMIN_TOKEN } from './helpers.mjs';

/**
 * Private mode as the end-to-end tests run it: fast password hashing, credit
 * flushed and counters published every second. The tests re-announce at once
 * to move bytes; tests/abuse covers the interval.
 */
export const PRIVATE_VARS = {
  TRACKER_MODE: 'private',
  PASSWORD_ROUNDS: '1000',
  CREDIT_FLUSH: '1',
  PUBLISH_WINDOW: '1',
  ENFORCE_MIN_INTERVAL: 'false',
};

/**
 * A test file's tracker with `vars`, its state in a directory of its own
 * (`edge-tracker-<name>-*`): `start()` it, `restart()` it on the same state
 * (the runtime dies, the storage stays), `close()` it and its directory.
 * `t` is the running tracker; `p` its `privateApi`, following restarts.
 */
export function fileTracker(vars, name) {
  const dir = mkdtempSync(join(tmpdir(), `edge-tracker-${name}-`));
  const run = {
    t: null,
    p: privateApi({ get base() { return run.t.base; } }),
    async start() {
      run.t = await startTracker({ vars, persistDir: dir });
      return run.t;
    },
    async restart() {
      await run.t.stop();
      return run.start();
    },
    async close() {
      await run.t?.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return run;
}

export function privateApi(t) {
  async function api(method, path, { token, json, body, type } = {}) {
    const headers = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (json !== undefined) headers['content-type'] = 'application/json';
    if (type) headers['content-type'] = type;
    const res = await fetch(`${t.base}/api${path}`, { method, headers, body: json !== undefined ? JSON.stringify(json) : body });
    const buf = Buffer.from(await res.arrayBuffer());
    let data = null;
    try { data = JSON.parse(buf.toString()); } catch {}
    return { status: res.status, data, buf, headers: res.headers, type: res.headers.get('content-type') };
  }
  const admin = (method, path, json) => api(method, `/admin${path}`, { token: ADMIN_TOKEN, json });
  async function account(username, password = `pw-${username}-secret`) {
    const reg = await api('POST', '/users', { json: { username, password } });
    assert.equal(reg.status, 201, JSON.stringify(reg.data));
    const login = await api('POST', '/login', { json: { username, password } });
    assert.equal(login.status, 200);
    return { username, password, passkey: reg.data.passkey, token: login.data.token };
  }
  /** Announces through a passkey URL, as a client with a downloaded .torrent does. */
  async function announceTo(passkey, infoHash, id, fields = {}, ip = '10.9.0.1') {
    const q = { port: 6881, uploaded: 0, downloaded: 0, left: 1000, compact: 1, ...fields };
    const qs = Object.entries(q).map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
    return get(`${t.base}/announce/${passkey}?info_hash=${escapeBytes(infoHash)}&peer_id=${escapeBytes(id)}&${qs}`, { ip });
  }
  async function upload(token, torrent) {
    return api('POST', '/torrents', { token, body: torrent, type: 'application/x-bittorrent' });
  }
  return { api, admin, account, announceTo, upload };
}

export const failure = (r) => (r.body?.['failure reason'] ? text(r.body['failure reason']) : null);
