// The audit trail (admins): who changed what and when, newest first,
// filtered by entity and actor.

import * as api from './api.js';
import { fill, h, say, select, table, when } from './dom.js';
import { t } from './i18n.js';

const LIMITS = [50, 100, 200, 500, 1000];

export default function audit(ctx, root) {
  let mounted = false;
  let stale = true;
  let rows = [];
  const el = {};

  function mount() {
    if (mounted) return;
    mounted = true;
    el.entity = h('input', { name: 'entity', placeholder: 'book:55009728/prod_pwc', maxlength: '200', spellcheck: 'false' });
    el.actor = h('input', { name: 'actor', maxlength: '200', spellcheck: 'false' });
    el.limit = select(LIMITS.map((n) => [n, n]), 100, { name: 'limit' });
    el.msg = h('p', { class: 'msg', role: 'alert', hidden: true });
    el.table = h('div');
    fill(root, h('h2', null, t('audit.title')),
      h('form', { class: 'filters card', onsubmit: (ev) => { ev.preventDefault(); load(); } },
        h('label', null, h('span', null, t('audit.entity')), el.entity),
        h('label', null, h('span', null, t('audit.actor')), el.actor),
        h('label', null, h('span', null, t('audit.limit')), el.limit),
        h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, t('common.search')))),
      el.msg, h('div', { class: 'card' }, el.table));
  }

  function render() {
    fill(el.table, rows.length
      ? table([t('audit.at'), t('audit.actor'), t('audit.action'), t('audit.entity'), t('audit.detail')], rows.map((r) => {
        const detail = JSON.stringify(r.detail);
        return h('tr', { dataset: { id: String(r.id) } },
          h('td', { class: 'nowrap' }, when(r.at)), h('td', null, r.actor), h('td', null, r.action), h('td', null, r.entity),
          h('td', { class: 'detail mono', title: detail.length > 160 ? detail : null }, detail.length > 160 ? `${detail.slice(0, 160)}…` : detail));
      }), 'audit')
      : h('p', { class: 'muted' }, t('audit.none')));
  }

  let token = 0; // the newest request's answer wins

  async function load() {
    stale = false;
    if (!ctx.admin) return;
    const my = ++token;
    let got = [];
    let err = '';
    try {
      got = await api.get('/audit', { entity: el.entity.value.trim(), actor: el.actor.value.trim(), limit: el.limit.value });
    } catch (e) {
      err = e.message;
    }
    if (my !== token) return;
    rows = got;
    say(el.msg, err);
    render();
  }

  return {
    show() { mount(); root.hidden = false; load(); },
    hide() { root.hidden = true; },
    context() { stale = true; },
    relang() { if (mounted) { const keep = [el.entity.value, el.actor.value, el.limit.value]; mounted = false; mount(); [el.entity.value, el.actor.value, el.limit.value] = keep; render(); } },
    reset() { mounted = false; stale = true; rows = []; fill(root); root.hidden = true; },
  };
}
