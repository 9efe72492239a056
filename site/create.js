// /create: the torrent creator's page. Files are hashed in Web Workers
// (create-jobs.js); the .torrent is built here (create-torrent.js) and
// leaves the browser only as a download, or when a member registers it
// (private mode: POST /api/torrents with the session cookie).
import { planFiles, pickPieceLength, buildInfo, buildTorrent, magnet, parseWebSeeds, MIN_PIECE, MAX_PIECE } from './create-torrent.js';
import { pickedFiles, droppedFiles, formatBytes, MAX_FILES } from './create-input.js';
import { startHashing, Cancelled } from './create-jobs.js';
import { header } from './site.js';

const $ = (id) => document.getElementById(id);
/** Most pieces a chosen piece size may give: 2 MB of SHA-1s, a .torrent the API still takes. */
const MAX_PIECES = 100000;
const state = { picked: [], privateMode: false, announce: `${location.origin}/announce`, job: null, torrent: null, url: null, personalUrl: null };

async function init() {
  fillPieceSizes();
  $('announce').textContent = state.announce;
  // The last choice wins: choosing files clears the folder, and back.
  $('files').addEventListener('change', () => { $('folder').value = ''; choose(pickedFiles($('files'))); });
  $('folder').addEventListener('change', () => { $('files').value = ''; choose(pickedFiles($('folder'))); });
  wireDrop($('drop'));
  $('create-form').addEventListener('submit', (e) => {
    e.preventDefault();
    create();
  });
  $('cancel').addEventListener('click', () => state.job?.cancel());
  $('copy').addEventListener('click', copyMagnet);
  $('register').addEventListener('click', register);
  await detectMode();
  document.body.dataset.ready = 'true';
}

function fillPieceSizes() {
  for (let size = MIN_PIECE; size <= MAX_PIECE; size *= 2) {
    $('piece').append(new Option(formatBytes(size), String(size)));
  }
}

/** Public: the tracker's /announce. Private: the member's own URL, or a sign-in note. */
async function detectMode() {
  const stats = await fetch('/stats', { cache: 'no-store' }).then((r) => r.json()).catch(() => null);
  // /stats says the mode; if it cannot be read, the account API's 404 (public mode) does.
  const me = stats?.mode === 'public' ? 'public' : await fetch('/api/me', { credentials: 'same-origin', cache: 'no-store' })
    .then((r) => (r.status === 404 ? 'public' : r.ok ? r.json() : null)).catch(() => null);
  state.privateMode = stats ? stats.mode === 'private' : me !== 'public';
  $('mode').textContent = state.privateMode ? 'private tracker' : 'public tracker';
  $('webseeds-field').hidden = state.privateMode;
  if (!state.privateMode) return;
  $('private-flag').hidden = false;
  if (me?.announce_url) {
    // A member sees the site's menu (site.js), as on every private page.
    header(me);
    state.announce = me.announce_url;
    $('announce').textContent = me.announce_url.replace(/[^/]+$/, '<your passkey>');
  } else {
    $('signin').hidden = false;
    $('create').disabled = true;
  }
}

/** Drops anywhere on the page are taken (a browser would otherwise open the file). */
function wireDrop(zone) {
  window.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('over');
  });
  window.addEventListener('dragleave', (e) => {
    if (!e.relatedTarget) zone.classList.remove('over');
  });
  window.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    if (state.job) return;
    droppedFiles(e.dataTransfer).then(choose, (err) => showError(`Could not read what was dropped: ${err.message}`));
  });
}

function choose(picked) {
  showError('');
  if (picked.length === 0) return;
  if (picked.length > MAX_FILES) {
    showError(`Too many files: at most ${MAX_FILES.toLocaleString('en')}.`);
    return;
  }
  let plan;
  try {
    plan = planFiles(picked);
  } catch (e) {
    showError(e.message);
    return;
  }
  state.picked = picked;
  const total = plan.files.reduce((n, f) => n + f.length, 0);
  $('name').value = plan.name;
  const count = plan.files.length;
  $('chosen').textContent = `${count.toLocaleString('en')} ${count === 1 ? 'file' : 'files'}, ${formatBytes(total)}.`;
  $('piece-hint').textContent = `Automatic: ${formatBytes(pickPieceLength(total))} for ${formatBytes(total)}.`;
}

/** An error worded for people, about one field (focused when shown). */
function fieldError(field, message) {
  return Object.assign(new Error(message), { field });
}

/** The form's choices, checked; throws an Error worded for people. */
function readForm() {
  if (state.picked.length === 0) throw fieldError('files', 'Choose files or a folder first.');
  const name = $('name').value.trim();
  if (!name || name === '.' || name === '..' || name.includes('/')) throw fieldError('name', 'Give the torrent a name (no "/").');
  const plan = planFiles(state.picked, name);
  plan.name = name;
  const total = plan.files.reduce((n, f) => n + f.length, 0);
  if (total === 0) throw new Error('The chosen files are all empty: there is nothing to share.');
  const piece = $('piece').value;
  const pieceLength = piece === 'auto' ? pickPieceLength(total) : Number(piece);
  const pieces = Math.ceil(total / pieceLength);
  if (pieces > MAX_PIECES) {
    throw fieldError('piece', `${formatBytes(pieceLength)} pieces are too small for ${formatBytes(total)} (${pieces.toLocaleString('en')} pieces): choose a larger piece size, or automatic.`);
  }
  return {
    plan,
    total,
    pieceLength,
    hybrid: $('format').value === 'hybrid',
    comment: $('comment').value.trim(),
    source: $('source').value.trim(),
    webSeeds: state.privateMode ? [] : webSeeds(),
  };
}

function webSeeds() {
  try {
    return parseWebSeeds($('webseeds').value);
  } catch (e) {
    throw fieldError('webseeds', e.message);
  }
}

async function create() {
  if (state.job) return;
  showError('');
  let form;
  for (const id of ['files', 'name', 'piece', 'webseeds']) $(id).removeAttribute('aria-invalid');
  try {
    form = readForm();
  } catch (e) {
    showError(e.message);
    if (e.field) {
      $(e.field).setAttribute('aria-invalid', 'true');
      $(e.field).focus();
    }
    return;
  }
  $('result').hidden = true;
  const started = performance.now();
  const progress = trackProgress(form.total);
  const workers = Number(new URLSearchParams(location.search).get('workers')) || undefined;
  state.job = startHashing(form.plan, form.pieceLength, { hybrid: form.hybrid, workers, onBytes: progress });
  running(true);
  try {
    const hashes = await state.job.done;
    const seconds = (performance.now() - started) / 1000;
    await finish(form, hashes);
    const rate = form.total / 1e6 / seconds;
    $('status').dataset.mbps = rate.toFixed(1);
    // A rate only where it means something (not for a few small files).
    const speed = seconds < 0.5 ? '' : ` in ${seconds.toFixed(1)} s${form.total >= 64 * 2 ** 20 ? ` (${rate.toFixed(0)} MB/s)` : ''}`;
    $('status').textContent = `Done: ${formatBytes(form.total)} hashed${speed}.`;
  } catch (e) {
    $('status').textContent = e instanceof Cancelled ? 'Cancelled. Nothing was created.' : '';
    if (!(e instanceof Cancelled)) showError(`Hashing failed: ${e.message}`);
  } finally {
    state.job = null;
    const hadFocus = document.activeElement === $('cancel');
    running(false);
    // Cancel disappears: focus goes back to Create, not to the page's top.
    if (hadFocus) $('create').focus();
  }
}

function running(on) {
  $('create').disabled = on;
  $('cancel').hidden = !on;
  $('progress-box').hidden = !on;
  for (const id of ['files', 'folder']) $(id).disabled = on;
  if (on) $('cancel').focus();
}

/** Moves the bar with every report; tells screen readers every 10%. */
function trackProgress(total) {
  let done = 0;
  let said = -1;
  $('progress').value = 0;
  $('status').textContent = 'Hashing: 0%';
  return (bytes) => {
    done += bytes;
    const pct = Math.min(100, Math.floor((done / total) * 100));
    $('progress').value = pct;
    if (Math.floor(pct / 10) !== said) {
      said = Math.floor(pct / 10);
      $('status').textContent = `Hashing: ${pct}% (${formatBytes(done)} of ${formatBytes(total)})`;
    }
  };
}

async function finish(form, hashes) {
  const info = buildInfo(form.plan, form.pieceLength, hashes, { private: state.privateMode, source: form.source });
  const torrent = await buildTorrent(info, { announce: state.announce, comment: form.comment, webSeeds: form.webSeeds, layers: hashes.layers });
  state.torrent = torrent;
  if (state.url) URL.revokeObjectURL(state.url);
  state.url = URL.createObjectURL(new Blob([torrent.bytes], { type: 'application/x-bittorrent' }));
  const link = $('download');
  link.href = state.url;
  link.download = `${form.plan.name}.torrent`;
  $('r-name').textContent = form.plan.name;
  $('r-size').textContent = `${formatBytes(form.total)} in ${form.plan.files.length.toLocaleString('en')} ${form.plan.files.length === 1 ? 'file' : 'files'}`;
  $('r-pieces').textContent = `${(hashes.pieces.length / 20).toLocaleString('en')} of ${formatBytes(form.pieceLength)}`;
  $('r-hash').textContent = torrent.infoHash;
  $('r-v2').textContent = torrent.v2Hash ?? '';
  $('r-v2-label').hidden = $('r-v2-value').hidden = !torrent.v2Hash;
  $('magnet').value = magnet(torrent, form.plan.name, state.announce);
  $('register-box').hidden = !state.privateMode;
  $('magnet-hint').hidden = !state.privateMode;
  $('register').disabled = false;
  $('personal').hidden = true;
  $('result').hidden = false;
  $('result-title').focus();
}

async function copyMagnet() {
  const field = $('magnet');
  try {
    await navigator.clipboard.writeText(field.value);
    $('status').textContent = 'Magnet link copied.';
  } catch {
    field.select();
    $('status').textContent = 'Select the magnet link and copy it (Ctrl+C).';
  }
}

/** Private mode: the .torrent goes to the tracker; the member's own copy comes back. */
async function register() {
  const torrent = state.torrent;
  if (!torrent) return;
  $('register').disabled = true;
  showError('');
  $('status').textContent = 'Registering…';
  let res;
  try {
    res = await fetch('/api/torrents', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/x-bittorrent' },
      body: torrent.bytes,
    });
  } catch {
    res = null;
  }
  const body = res ? await res.json().catch(() => ({})) : {};
  if (res?.status !== 201 && res?.status !== 409) {
    $('status').textContent = '';
    $('register').disabled = false;
    showError(`Registering failed: ${body.error ?? (res ? `HTTP ${res.status}` : 'the tracker could not be reached')}.`);
    return;
  }
  // The personal copy (the member's announce URL in it) is fetched with
  // the same credentials and offered as a download from memory, so an
  // error shows here in words, not as a failed download.
  const copy = await fetch(`/api/torrents/${torrent.infoHash}.torrent`, { credentials: 'same-origin', cache: 'no-store' }).catch(() => null);
  if (!copy?.ok) {
    $('status').textContent = '';
    const why = copy ? (await copy.json().catch(() => ({}))).error ?? `HTTP ${copy.status}` : 'the tracker could not be reached';
    showError(`Registered, but your personal copy could not be fetched: ${why}.`);
    $('register').disabled = false;
    return;
  }
  if (state.personalUrl) URL.revokeObjectURL(state.personalUrl);
  state.personalUrl = URL.createObjectURL(new Blob([await copy.arrayBuffer()], { type: 'application/x-bittorrent' }));
  const personal = $('personal');
  personal.href = state.personalUrl;
  personal.download = `${$('r-name').textContent}.torrent`;
  personal.hidden = false;
  $('status').textContent = `${res.status === 201 ? 'Registered' : 'Already registered'}. Download your personal copy and seed it.`;
  personal.focus();
}

function showError(message) {
  $('error').textContent = message;
}

init();
