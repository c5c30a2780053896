// A strategy's versioned parameters: every version, the JSON of one (as
// text), the changes between two; for users who may write the account,
// an editor that stores over the version it was loaded from (`If-Match`:
// a 412 means someone stored another since) and a rollback that stores an
// earlier version again as the newest.

import * as api from './api.js';
import { confirmButton, fill, h, say, select, table, when } from './dom.js';
import { t } from './i18n.js';

/** `added`, `removed` or `changed` for one change of the diff. */
export function changeKind(c) {
  if (c.before === undefined || c.before === null) return c.after === undefined || c.after === null ? 'changed' : 'added';
  if (c.after === undefined || c.after === null) return 'removed';
  return 'changed';
}

const json = (v) => (v === undefined ? '—' : JSON.stringify(v));

export default function params(ctx, root, reloadBooks) {
  let mounted = false;
  let stale = true;
  let versions = [];
  let latest = null;
  let etag = null;
  let shown = null;
  let changes = null;
  const el = {};

  const base = () => `/accounts${api.path(ctx.account)}/strategies${api.path(ctx.book)}`;

  function mount() {
    if (mounted) return;
    mounted = true;
    el.title = h('h2');
    el.desc = h('p', { class: 'description' });
    el.msg = h('p', { class: 'msg', role: 'alert', hidden: true });
    el.versions = h('div');
    el.shownTitle = h('h3');
    el.json = h('pre', { class: 'json', id: 'params-json' });
    el.from = select([], null, { name: 'from', 'aria-label': t('params.from') });
    el.to = select([], null, { name: 'to', 'aria-label': t('params.to') });
    el.diff = h('div', { id: 'params-diff' });
    el.edit = h('div');
    fill(root, el.title, el.desc, el.msg,
      h('div', { class: 'card' }, h('h3', null, t('params.versions')), el.versions),
      h('div', { class: 'grid2' },
        h('div', { class: 'card' }, el.shownTitle, el.json),
        h('div', { class: 'card' }, h('h3', null, t('params.diff')),
          h('form', { class: 'filters', onsubmit: (ev) => { ev.preventDefault(); diff(); } },
            h('label', null, h('span', null, t('params.from')), el.from),
            h('label', null, h('span', null, t('params.to')), el.to),
            h('div', { class: 'buttons' }, h('button', { type: 'submit' }, t('params.compare')))),
          el.diff)),
      el.edit);
  }

  function renderHead() {
    const s = ctx.strategy();
    el.title.textContent = ctx.book ? t('params.title', { book: ctx.book }) : t('tab.params');
    el.desc.textContent = s && s.description ? s.description : '';
  }

  function renderVersions() {
    const write = ctx.canWrite();
    const newest = versions.length ? versions[versions.length - 1].version : null;
    fill(el.versions, versions.length
      ? table([t('params.version'), t('params.at'), t('params.actor'), t('params.note'), t('rollout.actions')],
        [...versions].reverse().map((v) => h('tr', { dataset: { version: String(v.version) }, class: shown && shown.version === v.version ? 'chosen' : '' },
          h('td', { class: 'num' }, `v${v.version}`), h('td', { class: 'nowrap' }, when(v.created_at)), h('td', null, v.actor), h('td', null, v.note),
          h('td', null, h('div', { class: 'actions' },
            h('button', { type: 'button', onclick: () => view(v.version) }, t('params.view')),
            write && v.version !== newest
              ? confirmButton(t('params.rollbackTo', { v: v.version }), t('common.confirm'), () => rollback(v.version), { class: 'write-ctl danger', dataset: { rollback: String(v.version) } })
              : null)))), 'versions')
      : h('p', { class: 'muted' }, t('params.none')));
    const opts = versions.map((v) => [v.version, `v${v.version}`]);
    const keep = [el.from.value, el.to.value];
    fill(el.from, opts.map(([v, l]) => h('option', { value: String(v) }, l)));
    fill(el.to, opts.map(([v, l]) => h('option', { value: String(v) }, l)));
    if (versions.length) {
      el.from.value = keep[0] && versions.some((v) => String(v.version) === keep[0]) ? keep[0] : String(versions[Math.max(0, versions.length - 2)].version);
      el.to.value = keep[1] && versions.some((v) => String(v.version) === keep[1]) ? keep[1] : String(newest);
    }
  }

  function renderShown() {
    el.shownTitle.textContent = shown ? t('params.shown', { v: shown.version, actor: shown.actor, at: when(shown.created_at) }) : t('params.none');
    el.json.textContent = shown ? JSON.stringify(shown.params, null, 2) : '';
  }

  function renderDiff() {
    if (!changes) { fill(el.diff); return; }
    fill(el.diff, changes.length
      ? h('ul', { class: 'changes' }, changes.map((c) => {
        const kind = changeKind(c);
        return h('li', { class: `change ${kind}`, dataset: { path: c.path, kind } },
          h('code', { class: 'path' }, c.path), ' ', h('span', { class: `badge ${kind}` }, t(`params.${kind}`)), ' ',
          kind === 'added' ? null : h('code', { class: 'before' }, json(c.before)),
          kind === 'changed' ? ' → ' : null,
          kind === 'removed' ? null : h('code', { class: 'after' }, json(c.after)));
      }))
      : h('p', { class: 'muted' }, t('params.same')));
  }

  function renderEdit() {
    if (!ctx.canWrite() || !ctx.book) { fill(el.edit); return; }
    const area = h('textarea', { class: 'write-ctl json', rows: '14', spellcheck: 'false', name: 'params', 'aria-label': t('params.edit') });
    area.value = JSON.stringify(latest ? latest.params : {}, null, 2);
    const note = h('input', { class: 'write-ctl', name: 'note', maxlength: '256', placeholder: t('params.notePh') });
    const msg = h('p', { class: 'msg', role: 'alert', hidden: true });
    const save = async (ev) => {
      ev.preventDefault();
      let value;
      try { value = JSON.parse(area.value); } catch (e) { say(msg, t('params.badJson', { message: e.message })); return; }
      if (!value || typeof value !== 'object' || Array.isArray(value)) { say(msg, t('params.notObject')); return; }
      try {
        const r = await api.call('PUT', `${base()}/params`, { body: { params: value, note: note.value }, headers: etag ? { 'If-Match': etag } : {} });
        await load();
        say(el.msg, t('params.saved', { v: r.data.version }), 'ok');
      } catch (e) {
        if (e.status === 412) {
          fill(msg, t('params.conflict'), ' ', h('button', { type: 'button', onclick: () => load() }, t('common.reload')));
          msg.className = 'msg msg-error';
          msg.hidden = false;
        } else say(msg, e.message);
      }
    };
    fill(el.edit, h('div', { class: 'card' },
      h('h3', null, t('params.edit'), ' ', h('span', { class: 'muted' }, latest ? t('params.basedOn', { v: latest.version }) : '')),
      h('form', { class: 'edit', onsubmit: save }, area,
        h('div', { class: 'row' }, note, h('button', { type: 'submit', class: 'primary write-ctl' }, t('params.save'))),
        msg)));
  }

  async function view(version) {
    try {
      shown = latest && latest.version === version ? latest : await api.get(`${base()}/params`, { version });
      say(el.msg, '');
    } catch (e) {
      say(el.msg, e.message);
    }
    renderShown();
    renderVersions();
  }

  async function diff() {
    try {
      changes = await api.get(`${base()}/params/diff`, { from: el.from.value, to: el.to.value });
      say(el.msg, '');
    } catch (e) {
      changes = null;
      say(el.msg, e.message);
    }
    renderDiff();
  }

  async function rollback(version) {
    try {
      const r = await api.call('POST', `${base()}/params/rollback`, { body: { to: version } });
      await load();
      say(el.msg, t('params.rolledBack', { from: version, v: r.data.version }), 'ok');
    } catch (e) {
      say(el.msg, e.message);
    }
  }

  let token = 0; // the newest book's answer wins

  async function load() {
    stale = false;
    const my = ++token;
    versions = [];
    latest = null;
    etag = null;
    shown = null;
    changes = null;
    renderHead();
    if (ctx.account && ctx.book) {
      let err = '';
      let got = [];
      let r = null;
      try {
        got = await api.get(`${base()}/params/versions`);
        if (got.length) r = await api.call('GET', `${base()}/params`);
      } catch (e) {
        err = e.message;
      }
      if (my !== token) return;
      versions = got;
      if (r) {
        latest = r.data;
        etag = r.etag;
        shown = latest;
      }
      say(el.msg, err);
    }
    renderVersions();
    renderShown();
    renderEdit();
    if (versions.length >= 2) await diff(); else renderDiff();
  }

  return {
    show() { mount(); root.hidden = false; if (stale) load(); },
    hide() { root.hidden = true; },
    context() { stale = true; if (mounted && !root.hidden) load(); },
    relang() { if (mounted) { mounted = false; mount(); renderHead(); renderVersions(); renderShown(); renderDiff(); renderEdit(); } },
    reset() { mounted = false; stale = true; versions = []; latest = null; etag = null; fill(root); root.hidden = true; },
    reloadBooks,
  };
}
