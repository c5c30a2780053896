// K-line chart on a canvas: candles red when close ≥ open and green
// otherwise (the A-share convention), volume below, the chosen book's buys
// and sells marked at their bar. Every page of the series is fetched
// (`next_from` until null). Zoom with the wheel or a pinch, pan by
// dragging or with the arrow keys; a frame draws only the visible bars,
// at most once per animation frame, and times itself (`kline-draw`
// measures in the performance timeline).

import * as api from './api.js';
import { fill, h, num, say, select } from './dom.js';
import { t } from './i18n.js';

export const UP = 'rgb(220, 38, 38)';
export const DOWN = 'rgb(22, 163, 74)';
export const BUY = 'rgb(37, 99, 235)';
export const SELL = 'rgb(147, 51, 234)';
const BG = 'rgb(255, 255, 255)';
const GRID = 'rgb(229, 231, 235)';
const TEXT = 'rgb(75, 85, 99)';
const BUYS = new Set(['买入成交', '市买委托', '限买委托']);
const SELLS = new Set(['卖出成交', '市卖委托', '限卖委托']);
const PERIODS = ['1d', '1w', '60m', '30m', '15m', '5m', '1m'];
const ADJUSTS = ['qfq', 'none', 'hfq'];
const PAGE = 5000;
const PAD = 16;

/** The index of the first of `sorted` not below `key` (binary search). */
function lowerBound(sorted, key) {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] < key) lo = mid + 1; else hi = mid;
  }
  return lo;
}

/**
 * Deals placed on bars: a daily bar takes the deals of its day, a weekly
 * one those up to its date, an intraday one those up to its time.
 * Returns one marker per bar and side, and how many deals found no bar.
 */
export function place(times, period, deals) {
  const daily = period === '1d' || period === '1w';
  const keys = daily ? times.map((x) => x.slice(0, 10)) : times;
  const at = new Map();
  let unplaced = 0;
  for (const d of deals) {
    const side = BUYS.has(d.kind) ? 'buy' : SELLS.has(d.kind) ? 'sell' : null;
    if (!side) continue;
    const key = daily ? d.time.slice(0, 10) : d.time;
    const i = lowerBound(keys, key);
    if (i >= keys.length || (period === '1d' && keys[i] !== key)) { unplaced += 1; continue; }
    const id = `${i}:${side}`;
    const m = at.get(id) || { i, side, deals: [] };
    m.deals.push(d);
    at.set(id, m);
  }
  return { markers: [...at.values()].sort((a, b) => a.i - b.i), unplaced };
}

/** The chart: data in typed arrays, a view (`start`, `count` in bars), drawing on demand. */
export class Chart {
  constructor(canvas, onHover) {
    this.canvas = canvas;
    this.g = canvas.getContext('2d', { alpha: false });
    this.onHover = onHover;
    this.n = 0;
    this.start = 0;
    this.count = 0;
    this.W = 0;
    this.H = 0;
    this.dpr = 1;
    this.hi = 1;
    this.lo = 0;
    this.markers = [];
    this.drawnMarkers = [];
    this.pending = false;
    this.pointers = new Map();
    this.gesture = null;
    this.stats = { draws: 0, lastMs: 0, maxMs: 0, totalMs: 0 };
    this.setData([], []);
    this.listen();
    new ResizeObserver(() => this.resize()).observe(canvas);
    // what the browser tests read (geometry and timings; no data beyond what is drawn)
    canvas.sqdataChart = {
      view: () => ({ start: this.start, count: this.count, n: this.n }),
      xOf: (i) => this.xOf(i),
      yOf: (p) => this.yOf(p),
      dpr: () => this.dpr,
      markers: () => this.drawnMarkers.map((m) => ({ ...m })),
      stats: () => ({ ...this.stats }),
      fit: (count = this.n) => this.fit(count),
    };
  }

  setData(bars, markers) {
    const n = bars.length;
    this.time = bars.map((b) => b.datetime);
    this.o = Float64Array.from(bars, (b) => b.open);
    this.h = Float64Array.from(bars, (b) => b.high);
    this.l = Float64Array.from(bars, (b) => b.low);
    this.c = Float64Array.from(bars, (b) => b.close);
    this.v = Float64Array.from(bars, (b) => b.volume);
    this.n = n;
    this.markers = markers;
    this.fit(Math.min(n, Math.max(20, Math.floor(this.plotW() / 6))));
  }

  plotW() { return Math.max(10, this.W - 6 - 64); }
  priceH() { return Math.max(40, (this.H - 10 - 22 - 8) * 0.75); }
  xOf(i) { return 6 + (i - this.start + 0.5) * (this.plotW() / this.count); }
  yOf(p) { return 10 + PAD + ((this.hi - p) / (this.hi - this.lo)) * (this.priceH() - 2 * PAD); }
  indexAt(x) { return this.start + ((x - 6) / this.plotW()) * this.count; }

  /** Shows the last `count` bars. */
  fit(count) {
    this.count = count;
    this.start = this.n - count;
    this.clamp();
    this.schedule();
  }

  clamp() {
    const min = Math.min(this.n, 10);
    this.count = Math.min(Math.max(this.count, min), this.n);
    this.start = Math.min(Math.max(this.start, 0), this.n - this.count);
  }

  /** Zooms by `factor` (> 1: more bars) keeping the bar under `x` in place. */
  zoomAt(x, factor) {
    if (!this.n) return;
    const anchor = this.indexAt(x);
    const frac = (x - 6) / this.plotW();
    this.count *= factor;
    this.clamp();
    this.start = anchor - frac * this.count;
    this.clamp();
    this.schedule();
  }

  resize() {
    const W = this.canvas.clientWidth;
    const H = this.canvas.clientHeight;
    if (!W || !H) return;
    this.dpr = window.devicePixelRatio || 1;
    this.W = W;
    this.H = H;
    this.canvas.width = Math.round(W * this.dpr);
    this.canvas.height = Math.round(H * this.dpr);
    this.clamp();
    this.draw();
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.draw(); });
  }

  draw() {
    if (!this.W) return;
    const t0 = performance.now();
    const { g, W, H, n } = this;
    g.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    g.fillStyle = BG;
    g.fillRect(0, 0, W, H);
    g.font = '11px system-ui, sans-serif';
    this.drawnMarkers = [];
    if (!n) {
      g.fillStyle = TEXT;
      g.fillText(t('kline.empty'), 12, 24);
      return;
    }
    const i0 = Math.max(0, Math.floor(this.start));
    const i1 = Math.min(n - 1, Math.ceil(this.start + this.count));
    let hi = -Infinity;
    let lo = Infinity;
    let vmax = 0;
    for (let i = i0; i <= i1; i += 1) {
      if (this.h[i] > hi) hi = this.h[i];
      if (this.l[i] < lo) lo = this.l[i];
      if (this.v[i] > vmax) vmax = this.v[i];
    }
    if (!(hi > lo)) { hi += 1; lo -= 1; }
    this.hi = hi;
    this.lo = lo;
    const plotW = this.plotW();
    const priceH = this.priceH();
    const volTop = 10 + priceH + 8;
    const volH = Math.max(10, H - 22 - volTop);
    const bw = plotW / this.count;
    const body = bw >= 3 ? Math.max(1, Math.floor(bw * 0.7)) : Math.max(1, bw);
    // grid and the price axis
    g.fillStyle = GRID;
    g.textBaseline = 'middle';
    const levels = 5;
    for (let k = 0; k <= levels; k += 1) {
      const p = lo + ((hi - lo) * k) / levels;
      const y = Math.round(this.yOf(p)) + 0.5;
      g.fillStyle = GRID;
      g.fillRect(6, y, plotW, 1);
      g.fillStyle = TEXT;
      g.fillText(num(p, 2), 6 + plotW + 6, y);
    }
    g.fillStyle = GRID;
    g.fillRect(6, volTop - 4, plotW, 1);
    // time labels, at least 110 px apart
    const step = Math.max(1, Math.ceil(110 / bw));
    g.textBaseline = 'alphabetic';
    g.fillStyle = TEXT;
    const daily = this.time[0] && this.time[0].endsWith('00:00:00');
    for (let i = Math.ceil(i0 / step) * step; i <= i1; i += step) {
      const x = this.xOf(i);
      if (x < 6 || x > 6 + plotW - 60) continue;
      g.fillText(daily ? this.time[i].slice(0, 10) : this.time[i].slice(5, 16), x, H - 6);
    }
    g.save();
    g.beginPath();
    // a marker on the last bar may reach into the axis: half a marker of room
    g.rect(6, 0, plotW + 7, H);
    g.clip();
    // candles and volume: one path per colour
    const vscale = vmax > 0 ? volH / vmax : 0;
    for (const up of [true, false]) {
      g.fillStyle = up ? UP : DOWN;
      g.beginPath();
      for (let i = i0; i <= i1; i += 1) {
        if ((this.c[i] >= this.o[i]) !== up) continue;
        const x = this.xOf(i);
        const yh = this.yOf(this.h[i]);
        const yl = this.yOf(this.l[i]);
        if (bw >= 3) {
          const yo = this.yOf(this.o[i]);
          const yc = this.yOf(this.c[i]);
          const top = Math.min(yo, yc);
          g.rect(Math.floor(x), yh, 1, Math.max(1, yl - yh));
          g.rect(Math.floor(x - body / 2), top, body, Math.max(1, Math.abs(yc - yo)));
        } else {
          g.rect(x - body / 2, yh, body, Math.max(1, yl - yh));
        }
      }
      g.fill();
      g.globalAlpha = 0.55;
      g.beginPath();
      for (let i = i0; i <= i1; i += 1) {
        if ((this.c[i] >= this.o[i]) !== up) continue;
        const vh = this.v[i] * vscale;
        g.rect(this.xOf(i) - body / 2, volTop + volH - vh, body, vh);
      }
      g.fill();
      g.globalAlpha = 1;
    }
    // the book's deals: ▲ below the bar for buys, ▼ above it for sells
    for (const m of this.markers) {
      if (m.i < i0 || m.i > i1) continue;
      const x = this.xOf(m.i);
      const buy = m.side === 'buy';
      const y0 = buy ? this.yOf(this.l[m.i]) + 4 : this.yOf(this.h[m.i]) - 4;
      const y1 = buy ? y0 + 10 : y0 - 10;
      g.fillStyle = buy ? BUY : SELL;
      g.beginPath();
      g.moveTo(x, y0);
      g.lineTo(x + 6, y1);
      g.lineTo(x - 6, y1);
      g.closePath();
      g.fill();
      this.drawnMarkers.push({ i: m.i, side: m.side, x, y: buy ? y0 + 7 : y0 - 7, deals: m.deals.length });
    }
    g.restore();
    const ms = performance.now() - t0;
    performance.measure('kline-draw', { start: t0, end: t0 + ms });
    const s = this.stats;
    s.draws += 1;
    s.lastMs = ms;
    s.totalMs += ms;
    if (ms > s.maxMs) s.maxMs = ms;
    if (s.draws % 500 === 0) performance.clearMeasures('kline-draw');
  }

  hover(x) {
    if (!this.n || !this.onHover) return;
    const i = Math.floor(this.indexAt(x));
    if (i < 0 || i >= this.n) { this.onHover(null); return; }
    this.onHover({
      i, time: this.time[i], open: this.o[i], high: this.h[i], low: this.l[i], close: this.c[i], volume: this.v[i],
      markers: this.markers.filter((m) => m.i === i),
    });
  }

  begin() {
    const ps = [...this.pointers.values()];
    if (ps.length === 1) {
      this.gesture = { kind: 'drag', x: ps[0].x, start: this.start };
    } else if (ps.length === 2) {
      const mid = (ps[0].x + ps[1].x) / 2;
      this.gesture = { kind: 'pinch', d: Math.max(1, Math.abs(ps[0].x - ps[1].x)), count: this.count, mid, anchor: this.indexAt(mid) };
    } else {
      this.gesture = null;
    }
  }

  listen() {
    const c = this.canvas;
    c.addEventListener('pointerdown', (e) => {
      c.setPointerCapture(e.pointerId);
      this.pointers.set(e.pointerId, { x: e.offsetX });
      this.begin();
    });
    c.addEventListener('pointermove', (e) => {
      if (!this.pointers.has(e.pointerId)) { this.hover(e.offsetX); return; }
      this.pointers.set(e.pointerId, { x: e.offsetX });
      const gs = this.gesture;
      if (!gs || !this.n) return;
      if (gs.kind === 'drag') {
        this.start = gs.start - (e.offsetX - gs.x) / (this.plotW() / this.count);
      } else {
        const ps = [...this.pointers.values()];
        const d = Math.max(1, Math.abs(ps[0].x - ps[1].x));
        this.count = gs.count * (gs.d / d);
        this.clamp();
        this.start = gs.anchor - ((gs.mid - 6) / this.plotW()) * this.count;
      }
      this.clamp();
      this.schedule();
    });
    const end = (e) => { this.pointers.delete(e.pointerId); this.begin(); };
    c.addEventListener('pointerup', end);
    c.addEventListener('pointercancel', end);
    c.addEventListener('pointerleave', () => { if (!this.pointers.size && this.onHover) this.onHover(null); });
    c.addEventListener('wheel', (e) => {
      e.preventDefault();
      const dy = e.deltaMode === 1 ? e.deltaY * 16 : e.deltaY;
      this.zoomAt(e.offsetX, Math.exp(dy * 0.0015));
    }, { passive: false });
    c.addEventListener('keydown', (e) => {
      const keys = {
        ArrowLeft: () => { this.start -= this.count * 0.1; },
        ArrowRight: () => { this.start += this.count * 0.1; },
        Home: () => { this.start = 0; },
        End: () => { this.start = this.n; },
        '+': () => this.zoomAt(6 + this.plotW() / 2, 1 / 1.5),
        '=': () => this.zoomAt(6 + this.plotW() / 2, 1 / 1.5),
        '-': () => this.zoomAt(6 + this.plotW() / 2, 1.5),
      };
      if (!keys[e.key]) return;
      e.preventDefault();
      keys[e.key]();
      this.clamp();
      this.schedule();
    });
  }
}

export default function kline(ctx, root) {
  let mounted = false;
  let chart = null;
  let loaded = null;
  let token = 0;
  const el = {};

  function info(bar) {
    if (!bar) { el.info.textContent = t('kline.hint'); return; }
    const parts = [bar.time, `${t('kline.open')} ${num(bar.open)}`, `${t('kline.high')} ${num(bar.high)}`,
      `${t('kline.low')} ${num(bar.low)}`, `${t('kline.close')} ${num(bar.close)}`, `${t('kline.volume')} ${bar.volume}`];
    for (const m of bar.markers) for (const d of m.deals) parts.push(`${d.kind} ${d.volume}@${num(d.price)}`);
    el.info.textContent = parts.join('  ');
  }

  function mount() {
    if (mounted) return;
    mounted = true;
    el.code = h('input', { name: 'code', required: true, placeholder: '600000.SH', maxlength: '16', autocapitalize: 'off', spellcheck: 'false' });
    el.period = select(PERIODS.map((p) => [p, t(`period.${p}`)]), '1d', { name: 'period' });
    el.adjust = select(ADJUSTS.map((a) => [a, t(`adjust.${a}`)]), 'qfq', { name: 'adjust' });
    el.from = h('input', { type: 'date', name: 'from' });
    el.to = h('input', { type: 'date', name: 'to' });
    el.msg = h('p', { class: 'msg', role: 'status', hidden: true });
    el.info = h('p', { class: 'info mono' });
    el.canvas = h('canvas', { id: 'kline-canvas', class: 'chart kline', tabindex: '0', 'aria-label': t('kline.title') });
    fill(root,
      h('h2', null, t('kline.title')),
      h('form', { class: 'filters card', onsubmit: (ev) => { ev.preventDefault(); load(); } },
        h('label', null, h('span', null, t('deals.code')), el.code),
        h('label', null, h('span', null, t('kline.period')), el.period),
        h('label', null, h('span', null, t('kline.adjust')), el.adjust),
        h('label', null, h('span', null, t('deals.from')), el.from),
        h('label', null, h('span', null, t('deals.to')), el.to),
        h('div', { class: 'buttons' },
          h('button', { type: 'submit', class: 'primary' }, t('kline.load')),
          h('button', { type: 'button', onclick: () => chart.zoomAt(6 + chart.plotW() / 2, 1 / 1.5), 'aria-label': t('kline.zoomIn') }, '+'),
          h('button', { type: 'button', onclick: () => chart.zoomAt(6 + chart.plotW() / 2, 1.5), 'aria-label': t('kline.zoomOut') }, '−'),
          h('button', { type: 'button', onclick: () => chart.fit(chart.n) }, t('kline.all')))),
      el.msg,
      h('div', { class: 'card chart-card' }, el.info, el.canvas));
    chart = new Chart(el.canvas, info);
    info(null);
    if (loaded) chart.setData(loaded.bars, loaded.markers);
  }

  async function load() {
    const code = el.code.value.trim();
    if (!code) return;
    const my = ++token;
    const q = { period: el.period.value, adjust: el.adjust.value, from: el.from.value, to: el.to.value || undefined };
    const bars = [];
    let pages = 0;
    let canonical = code;
    say(el.msg, t('kline.loading', { n: 0 }), 'info');
    try {
      let from = q.from;
      for (;;) {
        const r = await api.get(`/klines${api.path(code)}`, { ...q, from, limit: PAGE });
        if (my !== token) return;
        pages += 1;
        canonical = r.code;
        bars.push(...(r.bars || []));
        say(el.msg, t('kline.loading', { n: bars.length }), 'info');
        if (!r.next_from || r.next_from === from || pages >= 1000) break;
        from = r.next_from;
      }
      let deals = [];
      if (ctx.account) {
        deals = await api.allPages(`/accounts${api.path(ctx.account)}/deals`, { book: ctx.book || undefined, code: canonical });
      }
      if (my !== token) return;
      const placed = place(bars.map((b) => b.datetime), q.period, deals);
      loaded = { code: canonical, bars, markers: placed.markers };
      chart.setData(bars, placed.markers);
      say(el.msg, t('kline.loaded', { code: canonical, n: bars.length, pages, markers: placed.markers.length, unplaced: placed.unplaced }), 'ok');
      el.msg.dataset.bars = String(bars.length);
      el.msg.dataset.pages = String(pages);
    } catch (e) {
      if (my === token) say(el.msg, e.message);
    }
  }

  return {
    show() { mount(); root.hidden = false; chart.resize(); },
    hide() { root.hidden = true; },
    context() { if (loaded && mounted && !root.hidden) load(); },
    relang() {
      if (!mounted) return;
      const keep = { code: el.code.value, period: el.period.value, adjust: el.adjust.value, from: el.from.value, to: el.to.value };
      const view = { start: chart.start, count: chart.count };
      mounted = false;
      mount();
      Object.entries(keep).forEach(([k, v]) => { el[k].value = v; });
      Object.assign(chart, view);
      if (!root.hidden) chart.resize();
    },
    reset() { mounted = false; loaded = null; token += 1; chart = null; fill(root); root.hidden = true; },
  };
}
