// Deals of the chosen account: filtered by book, day range, code and
// kind, paged; the same filter exported as CSV (fetched with the bearer
// token, then saved from a Blob: a plain link would carry no token).

import * as api from './api.js';
import { fill, h, num, numTh, say, select, table } from './dom.js';
import { t } from './i18n.js';

export const KINDS = ['市买委托', '限买委托', '市卖委托', '限卖委托', '买入成交', '卖出成交', '撤单', '废单'];
const SIZES = [20, 50, 100, 200];

export default function deals(ctx, root) {
  let mounted = false;
  let visible = false;
  let page = 1;
  let result = null;
  let stale = true;
  const el = {};

  function filters() {
    return {
      book: el.book.value, from: el.from.value, to: el.to.value,
      code: el.code.value.trim(), kind: el.kind.value,
    };
  }

  function bookOptions() {
    const keep = el.book ? el.book.value : null;
    const opts = [['', t('deals.allBooks')], ...ctx.books.map((b) => [b.book, b.book])];
    const s = select(opts, null, { name: 'book' });
    s.value = keep !== null && opts.some(([v]) => v === keep) ? keep : (ctx.book || '');
    return s;
  }

  function mount() {
    if (mounted) return;
    mounted = true;
    el.book = bookOptions();
    el.from = h('input', { type: 'date', name: 'from' });
    el.to = h('input', { type: 'date', name: 'to' });
    el.code = h('input', { name: 'code', placeholder: '600000.SH', maxlength: '16', autocapitalize: 'off', spellcheck: 'false' });
    el.kind = select([['', t('deals.allKinds')], ...KINDS.map((k) => [k, k])], '', { name: 'kind' });
    el.size = select(SIZES.map((s) => [s, s]), 50, { name: 'pageSize' });
    el.msg = h('p', { class: 'msg', role: 'alert', hidden: true });
    el.table = h('div');
    el.pager = h('div', { class: 'pager' });
    el.form = h('form', { class: 'filters', onsubmit: (ev) => { ev.preventDefault(); page = 1; load(); } },
      h('label', null, h('span', null, t('ctx.book')), el.book),
      h('label', null, h('span', null, t('deals.from')), el.from),
      h('label', null, h('span', null, t('deals.to')), el.to),
      h('label', null, h('span', null, t('deals.code')), el.code),
      h('label', null, h('span', null, t('deals.kind')), el.kind),
      h('label', null, h('span', null, t('deals.pageSize')), el.size),
      h('div', { class: 'buttons' },
        h('button', { type: 'submit', class: 'primary' }, t('common.search')),
        h('button', { type: 'button', onclick: exportCsv }, t('deals.export'))));
    fill(root, h('h2', null, t('deals.title')), h('div', { class: 'card' }, el.form), el.msg,
      h('div', { class: 'card' }, el.table, el.pager));
  }

  function render() {
    if (!mounted || !result) { if (mounted) { fill(el.table); fill(el.pager); } return; }
    fill(el.table, result.data.length
      ? table([t('deals.time'), t('ctx.book'), t('deals.code'), t('deals.name'), t('deals.kind'), numTh(t('deals.price')),
        numTh(t('deals.volume')), numTh(t('deals.amount')), t('deals.remark')], result.data.map((d) => h('tr', { dataset: { id: d.id } },
        h('td', { class: 'nowrap' }, d.time), h('td', null, d.book), h('td', null, d.code), h('td', null, d.name),
        h('td', { class: /买/.test(d.kind) ? 'up' : /卖/.test(d.kind) ? 'down' : '' }, d.kind),
        h('td', { class: 'num' }, num(d.price)), h('td', { class: 'num' }, String(d.volume)),
        h('td', { class: 'num' }, num(d.amount, 2)), h('td', null, d.remark))), 'deals')
      : h('p', { class: 'muted' }, t('deals.none')));
    const pages = Math.max(1, Math.ceil(result.total / result.pageSize));
    const go = (p) => { page = Math.min(Math.max(1, p), pages); load(); };
    fill(el.pager,
      h('button', { type: 'button', disabled: page <= 1, onclick: () => go(1) }, '«'),
      h('button', { type: 'button', disabled: page <= 1, onclick: () => go(page - 1), dataset: { page: 'prev' } }, t('deals.prev')),
      h('span', { class: 'muted', dataset: { pageinfo: '' } }, t('deals.page', { page, pages, total: result.total })),
      h('button', { type: 'button', disabled: page >= pages, onclick: () => go(page + 1), dataset: { page: 'next' } }, t('deals.next')),
      h('button', { type: 'button', disabled: page >= pages, onclick: () => go(pages) }, '»'));
  }

  // Only the newest request's answer is shown: an earlier one (the tab's first load, the
  // previous filter) may come back after it.
  let token = 0;

  async function load() {
    stale = false;
    const my = ++token;
    if (!ctx.account) { result = null; render(); return; }
    let got = null;
    let err = '';
    try {
      got = await api.get(`/accounts${api.path(ctx.account)}/deals`, { ...filters(), page, pageSize: el.size.value });
    } catch (e) {
      err = e.message;
    }
    if (my !== token) return;
    result = got;
    say(el.msg, err);
    render();
  }

  async function exportCsv() {
    if (!ctx.account) return;
    say(el.msg, t('deals.exporting'), 'info');
    try {
      const res = await api.call('GET', `/accounts${api.path(ctx.account)}/deals/export`, { q: { ...filters(), format: 'csv' }, raw: true });
      const blob = await res.blob();
      const url = URL.createObjectURL(blob);
      const a = h('a', { href: url, download: `deals-${ctx.account}-${new Date().toISOString().slice(0, 10)}.csv`, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      say(el.msg, t('deals.exported', { size: blob.size }), 'ok');
    } catch (e) {
      say(el.msg, e.message);
    }
  }

  return {
    show() { mount(); visible = true; root.hidden = false; if (stale) load(); else render(); },
    hide() { visible = false; root.hidden = true; },
    context() {
      if (mounted) { const b = bookOptions(); el.book.replaceWith(b); el.book = b; }
      page = 1; result = null; stale = true;
      if (visible) load();
    },
    relang() {
      if (!mounted) return;
      const keep = { ...filters(), pageSize: el.size.value };
      mounted = false;
      el.book = null;
      mount();
      for (const k of ['book', 'from', 'to', 'code', 'kind']) el[k].value = keep[k];
      el.size.value = keep.pageSize;
      render();
    },
    reset() { visible = false; mounted = false; result = null; stale = true; el.book = null; fill(root); root.hidden = true; },
  };
}
