// A book's equity curve: the total asset per day as a line on a canvas,
// with the first and last value, the return and the deepest drawdown.

import * as api from './api.js';
import { fill, h, num, say } from './dom.js';
import { t } from './i18n.js';

const LINE = 'rgb(37, 99, 235)';
const AREA = 'rgba(37, 99, 235, 0.08)';
const GRID = 'rgb(229, 231, 235)';
const TEXT = 'rgb(75, 85, 99)';

/** The deepest fall from a running peak, as a negative fraction (0: none). */
export function maxDrawdown(values) {
  let peak = -Infinity;
  let worst = 0;
  for (const v of values) {
    if (v > peak) peak = v;
    if (peak > 0) worst = Math.min(worst, (v - peak) / peak);
  }
  return worst;
}

export default function equity(ctx, root) {
  let mounted = false;
  let rows = [];
  let stale = true;
  let hoverI = -1;
  const el = {};

  function draw() {
    const c = el.canvas;
    const W = c.clientWidth;
    const H = c.clientHeight;
    if (!W || !H) return;
    const dpr = window.devicePixelRatio || 1;
    c.width = Math.round(W * dpr);
    c.height = Math.round(H * dpr);
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.fillStyle = 'rgb(255, 255, 255)';
    g.fillRect(0, 0, W, H);
    g.font = '11px system-ui, sans-serif';
    if (rows.length === 0) { g.fillStyle = TEXT; g.fillText(t('equity.empty'), 12, 24); return; }
    const vals = rows.map((r) => r.asset);
    let lo = Math.min(...vals);
    let hi = Math.max(...vals);
    if (!(hi > lo)) { hi += 1; lo -= 1; }
    const left = 8;
    const right = 80;
    const top = 12;
    const bottom = 24;
    const pw = W - left - right;
    const ph = H - top - bottom;
    const x = (i) => left + (rows.length === 1 ? pw / 2 : (i / (rows.length - 1)) * pw);
    const y = (v) => top + ((hi - v) / (hi - lo)) * ph;
    g.textBaseline = 'middle';
    for (let k = 0; k <= 4; k += 1) {
      const v = lo + ((hi - lo) * k) / 4;
      g.fillStyle = GRID;
      g.fillRect(left, Math.round(y(v)) + 0.5, pw, 1);
      g.fillStyle = TEXT;
      g.fillText(num(v, 2), left + pw + 6, y(v));
    }
    g.textBaseline = 'alphabetic';
    g.fillText(rows[0].date, left, H - 6);
    const lastLabel = rows[rows.length - 1].date;
    g.fillText(lastLabel, left + pw - g.measureText(lastLabel).width, H - 6);
    g.beginPath();
    rows.forEach((r, i) => (i ? g.lineTo(x(i), y(r.asset)) : g.moveTo(x(i), y(r.asset))));
    g.strokeStyle = LINE;
    g.lineWidth = 2;
    g.stroke();
    g.lineTo(x(rows.length - 1), top + ph);
    g.lineTo(x(0), top + ph);
    g.closePath();
    g.fillStyle = AREA;
    g.fill();
    if (hoverI >= 0 && hoverI < rows.length) {
      g.fillStyle = LINE;
      g.beginPath();
      g.arc(x(hoverI), y(rows[hoverI].asset), 4, 0, Math.PI * 2);
      g.fill();
    }
    el.geometry = { left, pw, n: rows.length };
  }

  function summary() {
    if (!rows.length) { el.summary.textContent = ''; return; }
    const first = rows[0].asset;
    const last = rows[rows.length - 1].asset;
    el.summary.textContent = t('equity.summary', {
      n: rows.length, first: num(first, 2), last: num(last, 2),
      ret: first > 0 ? `${(((last - first) / first) * 100).toFixed(2)}%` : '—',
      dd: `${(maxDrawdown(rows.map((r) => r.asset)) * 100).toFixed(2)}%`,
    });
  }

  function mount() {
    if (mounted) return;
    mounted = true;
    el.from = h('input', { type: 'date', name: 'from' });
    el.to = h('input', { type: 'date', name: 'to' });
    el.msg = h('p', { class: 'msg', role: 'alert', hidden: true });
    el.summary = h('p', { class: 'muted' });
    el.info = h('p', { class: 'info mono' });
    el.canvas = h('canvas', { id: 'equity-canvas', class: 'chart equity', 'aria-label': t('equity.title') });
    el.canvas.addEventListener('pointermove', (e) => {
      const gm = el.geometry;
      if (!gm || !rows.length) return;
      const i = Math.round(((e.offsetX - gm.left) / gm.pw) * (gm.n - 1));
      const j = Math.min(Math.max(i, 0), rows.length - 1);
      if (j === hoverI) return;
      hoverI = j;
      el.info.textContent = `${rows[j].date}  ${num(rows[j].asset, 2)}`;
      requestAnimationFrame(draw);
    });
    new ResizeObserver(() => draw()).observe(el.canvas);
    fill(root, h('h2', null, t('equity.title')),
      h('form', { class: 'filters card', onsubmit: (ev) => { ev.preventDefault(); load(); } },
        h('label', null, h('span', null, t('deals.from')), el.from),
        h('label', null, h('span', null, t('deals.to')), el.to),
        h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, t('common.search')))),
      el.msg, h('div', { class: 'card chart-card' }, el.summary, el.info, el.canvas));
  }

  let token = 0; // the newest request's answer wins

  async function load() {
    stale = false;
    hoverI = -1;
    const my = ++token;
    if (!ctx.account || !ctx.book) { rows = []; summary(); draw(); return; }
    let got = [];
    let err = '';
    try {
      got = await api.get(`/accounts${api.path(ctx.account)}/books${api.path(ctx.book)}/assets`, { from: el.from.value, to: el.to.value });
    } catch (e) {
      err = e.message;
    }
    if (my !== token) return;
    rows = got;
    say(el.msg, err);
    summary();
    draw();
  }

  return {
    show() { mount(); root.hidden = false; if (stale) load(); else draw(); },
    hide() { root.hidden = true; },
    context() { stale = true; if (mounted && !root.hidden) load(); },
    relang() { if (mounted) { const f = el.from.value; const to = el.to.value; mounted = false; mount(); el.from.value = f; el.to.value = to; summary(); if (!root.hidden) draw(); } },
    reset() { mounted = false; rows = []; stale = true; fill(root); root.hidden = true; },
  };
}
