// The dashboard: reads /stats and draws it. No libraries; the chart is SVG.
'use strict';

const SVG = 'http://www.w3.org/2000/svg';
const REFRESH_MS = 30000;

const fmt = (n) => Number(n).toLocaleString('en-US');

function setStat(name, value) {
  for (const el of document.querySelectorAll(`[data-stat="${name}"]`)) el.textContent = fmt(value);
}

function svg(tag, attrs, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function minuteLabel(minute) {
  const d = new Date(minute * 60000);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

function drawChart(history) {
  const chart = document.getElementById('chart');
  chart.replaceChildren();
  const W = 720, H = 200, left = 40, bottom = 20, top = 10;
  const max = Math.max(1, ...history.map((p) => p.announces));
  const plotH = H - bottom - top;
  const step = (W - left) / Math.max(1, history.length);
  chart.append(svg('line', { class: 'axis', x1: left, y1: H - bottom, x2: W, y2: H - bottom }));
  chart.append(svg('line', { class: 'axis', x1: left, y1: top, x2: left, y2: H - bottom }));
  chart.append(svg('text', { x: left - 6, y: top + 10, 'text-anchor': 'end' }, fmt(max)));
  chart.append(svg('text', { x: left - 6, y: H - bottom, 'text-anchor': 'end' }, '0'));
  history.forEach((p, i) => {
    const h = (p.announces / max) * plotH;
    const bar = svg('rect', {
      class: 'bar', x: left + i * step + 1, y: H - bottom - h, width: Math.max(1, step - 2), height: h,
      'data-minute': p.minute, 'data-announces': p.announces,
    });
    bar.append(svg('title', {}, `${minuteLabel(p.minute)}: ${p.announces} announces, ${p.scrapes} scrapes, ${p.failures} failures`));
    chart.append(bar);
  });
  if (history.length) {
    chart.append(svg('text', { x: left, y: H - 4 }, minuteLabel(history[0].minute)));
    chart.append(svg('text', { x: W - 2, y: H - 4, 'text-anchor': 'end' }, minuteLabel(history[history.length - 1].minute)));
    document.getElementById('chart-range').textContent = `(last ${history.length} minutes)`;
  }
}

function fillTable(tbody, rows) {
  tbody.replaceChildren(...rows.map((cells) => {
    const tr = document.createElement('tr');
    cells.forEach(([text, cls]) => {
      const td = document.createElement('td');
      td.textContent = text;
      if (cls) td.className = cls;
      tr.append(td);
    });
    return tr;
  }));
}

function render(s) {
  const privateMode = s.mode === 'private';
  document.getElementById('mode').textContent = privateMode ? 'private tracker' : 'public tracker';
  document.getElementById('announce-url').textContent = `${location.origin}/announce${privateMode ? '/<your passkey>' : ''}`;
  document.getElementById('scrape-url').textContent = `${location.origin}/scrape`;
  document.getElementById('private-note').hidden = !privateMode;
  for (const name of ['torrents', 'peers', 'seeders', 'leechers', 'completed', 'announces', 'scrapes']) setStat(name, s[name]);
  const failures = Object.entries(s.failures || {});
  setStat('failures', failures.reduce((sum, [, n]) => sum + n, 0));
  for (const el of document.querySelectorAll('.card.private')) el.hidden = !s.private;
  if (s.private) {
    setStat('users', s.private.users);
    setStat('registered_torrents', s.private.registered_torrents);
  }
  document.getElementById('busiest-section').hidden = privateMode;
  fillTable(document.querySelector('#busiest tbody'), s.busiest.map((t) => [
    [t.info_hash, 'hash'], [fmt(t.seeders)], [fmt(t.leechers)], [fmt(t.completed)],
  ]));
  document.getElementById('busiest-empty').hidden = s.busiest.length > 0;
  document.getElementById('failures-section').hidden = failures.length === 0;
  fillTable(document.querySelector('#failures tbody'), failures.map(([reason, n]) => [[reason], [fmt(n)]]));
  drawChart(s.history);
  document.getElementById('updated').textContent = new Date(s.generated_at * 1000).toLocaleString();
  document.getElementById('gauges-at').textContent = new Date(s.gauges_at * 1000).toLocaleTimeString();
}

async function refresh() {
  try {
    const res = await fetch('/stats', { cache: 'no-store' });
    if (!res.ok) throw new Error(`/stats answered ${res.status}`);
    render(await res.json());
    document.body.dataset.ready = 'true';
    delete document.body.dataset.error;
  } catch (e) {
    document.body.dataset.error = String(e.message || e);
  }
  setTimeout(refresh, REFRESH_MS);
}

refresh();
