// Accounts → books → positions: the account's strategies (descriptions
// shown as text), and the chosen book's positions with held days, max/min
// prices, the last quote and the drawdown from the max; sortable by every
// column, refreshed every 5 s while shown.

import * as api from './api.js';
import { fill, h, num, say, table } from './dom.js';
import { t } from './i18n.js';

const EVERY_MS = 5000;
const QUOTES_PER_CALL = 500;
const COLUMNS = ['code', 'days', 'max', 'min', 'last', 'drawdown'];

/** (last − max) / max when both are known (max > 0), else null. */
export function drawdown(last, max) {
  if (last === null || last === undefined || max === null || max === undefined || !(max > 0)) return null;
  return (last - max) / max;
}

/** A drawdown as a percentage with two decimals, or an em dash. */
export function pct(v) {
  return v === null || !Number.isFinite(v) ? '—' : `${(v * 100).toFixed(2)}%`;
}

export default function books(ctx, root, pickBook) {
  let mounted = false;
  let visible = false;
  let timer = 0;
  let rows = [];
  let incDate = null;
  let quoted = 0;
  let sort = { key: 'code', dir: 1 };
  let loading = null;
  const el = {};

  function mount() {
    if (mounted) return;
    mounted = true;
    el.books = h('div');
    el.summary = h('p', { class: 'muted' });
    el.msg = h('p', { class: 'msg', role: 'alert', hidden: true });
    el.positions = h('div');
    fill(root,
      h('h2', null, t('pos.title')),
      h('div', { class: 'card' }, h('h3', null, t('pos.books')), el.books),
      h('div', { class: 'card' },
        h('div', { class: 'row' }, h('h3', null, t('pos.positions')),
          h('button', { type: 'button', onclick: () => load() }, t('common.reload'))),
        el.summary, el.msg, el.positions));
  }

  function renderBooks() {
    if (!mounted) return;
    fill(el.books, ctx.books.length
      ? table([t('pos.book'), t('pos.description'), t('pos.kind'), t('pos.enabled')], ctx.books.map((b) =>
        h('tr', { class: b.book === ctx.book ? 'chosen' : '', dataset: { book: b.book } },
          h('td', null, h('button', { type: 'button', class: 'link', onclick: () => pickBook(b.book) }, b.book)),
          h('td', { class: 'description' }, b.description),
          h('td', null, b.kind),
          h('td', null, b.enabled ? t('common.yes') : t('common.no')))), 'books')
      : h('p', { class: 'muted' }, t('ctx.noBooks')));
  }

  function sorted() {
    const k = sort.key;
    return [...rows].sort((a, b) => {
      const x = a[k];
      const y = b[k];
      // unknown values last, whichever the direction
      if (x === null && y === null) return a.code < b.code ? -1 : 1;
      if (x === null) return 1;
      if (y === null) return -1;
      if (x < y) return -sort.dir;
      if (x > y) return sort.dir;
      return a.code < b.code ? -1 : 1;
    });
  }

  function header(key) {
    const active = sort.key === key;
    const th = h('th', { scope: 'col', class: key === 'code' ? '' : 'num', 'aria-sort': active ? (sort.dir > 0 ? 'ascending' : 'descending') : 'none' },
      h('button', {
        type: 'button', class: 'sort', dataset: { sort: key },
        onclick: () => { sort = { key, dir: active ? -sort.dir : 1 }; renderPositions(); },
      }, t(`pos.col.${key}`), active ? (sort.dir > 0 ? ' ▲' : ' ▼') : ''));
    return th;
  }

  function renderPositions() {
    if (!mounted) return;
    if (!ctx.book) { fill(el.positions); el.summary.textContent = ''; return; }
    el.summary.textContent = t('pos.summary', {
      n: rows.length, held: rows.filter((r) => r.days !== null).length, quoted, date: incDate || '—',
    });
    fill(el.positions, table(COLUMNS.map(header), sorted().map((r) => h('tr', { dataset: { code: r.code } },
      h('td', null, r.code),
      h('td', { class: 'num' }, r.days === null ? t('pos.sold') : String(r.days)),
      h('td', { class: 'num' }, num(r.max)),
      h('td', { class: 'num' }, num(r.min)),
      h('td', { class: 'num' }, num(r.last)),
      h('td', { class: `num ${r.drawdown !== null && r.drawdown < 0 ? 'down' : ''}` }, pct(r.drawdown)))), 'positions'));
  }

  async function quotes(codes) {
    const last = new Map();
    for (let i = 0; i < codes.length; i += QUOTES_PER_CALL) {
      const part = codes.slice(i, i + QUOTES_PER_CALL);
      const got = await api.get('/quotes', { codes: part.join(',') });
      for (const q of got) if (q.quote && Number.isFinite(q.quote.last)) last.set(q.code, q.quote.last);
    }
    return last;
  }

  async function load() {
    if (!ctx.account || !ctx.book) { rows = []; renderPositions(); return; }
    const want = `${ctx.account}/${ctx.book}`;
    if (loading === want) return;
    loading = want;
    try {
      const p = await api.get(`/accounts${api.path(ctx.account)}/books${api.path(ctx.book)}/positions`);
      let last = new Map();
      const codes = p.positions.map((x) => x.code);
      if (codes.length) {
        try { last = await quotes(codes); } catch { last = new Map(); }
      }
      if (`${ctx.account}/${ctx.book}` !== want) return;
      incDate = p.inc_date;
      quoted = last.size;
      rows = p.positions.map((x) => {
        const l = last.has(x.code) ? last.get(x.code) : null;
        return { code: x.code, days: x.day_count ?? null, max: x.max_price ?? null, min: x.min_price ?? null, last: l, drawdown: drawdown(l, x.max_price) };
      });
      say(el.msg, '');
    } catch (e) {
      rows = [];
      say(el.msg, e.message);
    } finally {
      loading = null;
    }
    renderPositions();
  }

  function tick() {
    clearTimeout(timer);
    if (!visible) return;
    timer = setTimeout(async () => { if (visible && !document.hidden) await load(); tick(); }, EVERY_MS);
  }

  return {
    show() { mount(); visible = true; root.hidden = false; renderBooks(); load(); tick(); },
    hide() { visible = false; clearTimeout(timer); root.hidden = true; },
    context() { rows = []; if (visible) { renderBooks(); load(); } },
    relang() { if (mounted) { mounted = false; mount(); renderBooks(); renderPositions(); } },
    reset() { visible = false; clearTimeout(timer); rows = []; mounted = false; fill(root); root.hidden = true; },
  };
}
