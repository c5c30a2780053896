// Health (admins): backends up/down with latency, hybrid domains with their
// mode, time in it and journal bytes, polled every 2.5 s — and the red
// banner while any domain is degraded, whichever tab is open. Rollout:
// each account's stage, the verify report before a promote, rollback.

import * as api from './api.js';
import { $, bytes, confirmButton, fill, h, num, numTh, say, select, table } from './dom.js';
import { t } from './i18n.js';

const EVERY_MS = 2500;
const STAGES = ['files', 'shadow', 'reads', 'writes', 'full'];

/** `since_ms` as "1h 2m 3s" in the page's language. */
export function duration(ms) {
  let s = Math.floor((Number(ms) || 0) / 1000);
  const d = Math.floor(s / 86400); s -= d * 86400;
  const hr = Math.floor(s / 3600); s -= hr * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  const parts = [];
  if (d) parts.push(`${d}${t('unit.d')}`);
  if (hr) parts.push(`${hr}${t('unit.h')}`);
  if (m && !d) parts.push(`${m}${t('unit.m')}`);
  if (!d && !hr) parts.push(`${s}${t('unit.s')}`);
  return parts.join(' ');
}

export default function health(ctx, root) {
  let timer = 0;
  let watching = false;
  let last = null;
  let lastError = '';
  let rollout = null;
  let rolloutError = '';
  const reports = new Map();
  let mounted = false;
  const el = {};

  function mount() {
    if (mounted) return;
    mounted = true;
    el.updated = h('p', { class: 'muted' });
    el.msg = h('p', { class: 'msg', role: 'alert', hidden: true });
    el.backends = h('div');
    el.domains = h('div');
    el.rolloutMsg = h('p', { class: 'msg', role: 'status', hidden: true });
    el.rollout = h('div');
    el.report = h('div', { class: 'report' });
    fill(root,
      h('h2', null, t('health.title')), el.updated, el.msg,
      h('div', { class: 'grid2' },
        h('div', { class: 'card' }, h('h3', null, t('health.backends')), el.backends),
        h('div', { class: 'card' }, h('h3', null, t('health.domains')), el.domains)),
      h('div', { class: 'card' },
        h('div', { class: 'row' }, h('h3', null, t('rollout.title')),
          h('button', { type: 'button', onclick: loadRollout }, t('common.reload'))),
        el.rolloutMsg, el.rollout, el.report));
  }

  function banner() {
    const b = $('#banner');
    const bad = last ? last.domains.filter((d) => d.mode === 'degraded') : [];
    if (!watching || !bad.length) { b.hidden = true; b.textContent = ''; return; }
    b.textContent = t('health.banner', { domains: bad.map((d) => `${d.domain} (${duration(d.since_ms)})`).join(', ') });
    b.hidden = false;
  }

  function render() {
    banner();
    if (!mounted) return;
    say(el.msg, lastError);
    if (!last) return;
    el.updated.textContent = t('health.updated', {
      time: new Date().toLocaleTimeString(), ready: last.ready ? t('health.ready') : t('health.notReady'),
    });
    fill(el.backends, table([t('health.backend'), t('health.state'), numTh(t('health.latency'))],
      last.backends.map((b) => h('tr', { dataset: { backend: b.backend } },
        h('td', null, b.backend),
        h('td', null, h('span', { class: `pill ${b.up ? 'ok' : 'bad'}` }, b.up ? t('health.up') : t('health.down'))),
        h('td', { class: 'num' }, `${num(b.latency_us / 1000, 1)} ms`)))));
    fill(el.domains, last.domains.length
      ? table([t('health.domain'), t('health.mode'), numTh(t('health.since')), numTh(t('health.journal')), numTh(t('health.fallbacks'))],
        last.domains.map((d) => h('tr', { dataset: { domain: d.domain, mode: d.mode } },
          h('td', null, d.domain),
          h('td', null, h('span', { class: `pill ${d.mode === 'healthy' ? 'ok' : d.mode === 'degraded' ? 'bad' : 'warn'}` },
            t(`mode.${d.mode}`, null, d.mode))),
          h('td', { class: 'num' }, duration(d.since_ms)),
          h('td', { class: 'num' }, bytes(d.journal_bytes)),
          h('td', { class: 'num' }, String(d.fallbacks)))))
      : h('p', { class: 'muted' }, t('health.noDomains')));
  }

  async function poll() {
    clearTimeout(timer);
    if (!watching) return;
    try {
      last = await api.get('/ops/status');
      lastError = '';
    } catch (e) {
      lastError = t('health.pollFailed', { message: e.message });
    }
    render();
    if (watching) timer = setTimeout(poll, EVERY_MS);
  }

  async function loadRollout() {
    try {
      rollout = await api.get('/ops/rollout');
      if (rolloutError) say(el.rolloutMsg, '');
      rolloutError = '';
    } catch (e) {
      rollout = null;
      rolloutError = e.message;
      if (mounted) say(el.rolloutMsg, rolloutError);
    }
    renderRollout();
  }

  function stageOf(account) {
    const s = rollout && rollout.stages ? rollout.stages : {};
    return { stage: s[account] || s['*'] || null, explicit: account in s };
  }

  async function act(what, account, body, done) {
    say(el.rolloutMsg, t('rollout.working'), 'info');
    try {
      const r = await api.call('POST', `/ops/rollout/${what}`, { body: { account, ...body } });
      const kind = done(r.data || {});
      if (kind === 'differs') say(el.rolloutMsg, t('rollout.differs', { account }));
      else say(el.rolloutMsg, t(`rollout.done.${what}`, { account, from: r.data?.from ?? '', to: r.data?.to ?? '' }), 'ok');
    } catch (e) {
      say(el.rolloutMsg, e.message);
    }
    if (what !== 'check') await loadRollout();
    else renderRollout();
  }

  /** `waiting` per book of `account`: `{domain: ["acct/book", …]}` (or a plain list) → "book (domains)". */
  function waitingOf(account) {
    const w = rollout && rollout.waiting ? rollout.waiting : {};
    const byBook = new Map();
    const add = (book, domain) => {
      if (!String(book).startsWith(`${account}/`)) return;
      const b = String(book).slice(account.length + 1);
      if (!byBook.has(b)) byBook.set(b, []);
      if (domain) byBook.get(b).push(domain);
    };
    if (Array.isArray(w)) w.forEach((b) => add(b, null));
    else for (const [domain, books] of Object.entries(w)) (Array.isArray(books) ? books : []).forEach((b) => add(b, domain));
    return [...byBook].map(([b, ds]) => (ds.length ? `${b} (${ds.join(', ')})` : b)).join('; ');
  }

  function renderReport() {
    if (!reports.size) { fill(el.report); return; }
    fill(el.report, [...reports].map(([account, r]) => {
      const domains = Array.isArray(r.domains) ? r.domains : [];
      const diffs = Array.isArray(r.differences) ? r.differences : [];
      const count = (v) => String(Array.isArray(v) ? v.length : v ?? '—');
      const line = (x) => (x && typeof x === 'object' && 'key' in x
        ? `${x.domain} · ${x.partition} · ${x.key} · ${x.field}: ${t('rollout.primary')} ${JSON.stringify(x.primary ?? null)} ≠ ${t('rollout.secondary')} ${JSON.stringify(x.secondary ?? null)}`
        : typeof x === 'string' ? x : JSON.stringify(x));
      return h('div', { class: 'card inner', dataset: { report: account } },
        h('h4', null, t('rollout.report', { account })),
        table([t('health.domain'), numTh(t('rollout.partitions')), numTh(t('rollout.records')), numTh(t('rollout.differences'))],
          domains.map((d) => h('tr', { dataset: { domain: String(d.domain ?? '') } }, h('td', null, String(d.domain ?? '')),
            h('td', { class: 'num' }, count(d.partitions)), h('td', { class: 'num' }, count(d.records)),
            h('td', { class: `num ${Number(d.differences) > 0 ? 'down' : ''}` }, count(d.differences))))),
        diffs.length
          ? h('ul', { class: 'diffs' }, diffs.slice(0, 100).map((x) => h('li', null, h('code', null, line(x)))))
          : h('p', { class: 'ok-text' }, t('rollout.clean')),
        diffs.length > 100 || r.truncated ? h('p', { class: 'muted' }, t('rollout.truncated')) : null);
    }));
  }

  function renderRollout() {
    if (!mounted) return;
    if (!rollout) { fill(el.rollout); renderReport(); return; }
    const names = new Set([...ctx.accounts.map((a) => a.id), ...Object.keys(rollout.stages || {}).filter((a) => a !== '*')]);
    const def = rollout.stages && rollout.stages['*'];
    fill(el.rollout,
      rollout.damage ? h('p', { class: 'msg msg-error' }, t('rollout.damage', { message: rollout.damage })) : null,
      h('p', null, t('rollout.default'), ' ', h('strong', null, def || '—')),
      table([t('ctx.account'), t('rollout.stage'), t('rollout.waiting'), t('rollout.actions')], [...names].sort().map((a) => {
        const { stage, explicit } = stageOf(a);
        const next = STAGES[Math.min(STAGES.length - 1, STAGES.indexOf(stage) + 1)] || 'shadow';
        const to = select(STAGES.map((x) => [x, x]), next, { 'aria-label': t('rollout.to') });
        const force = h('input', { type: 'checkbox', name: 'force' });
        const checked = reports.has(a);
        const promote = h('button', {
          type: 'button', class: 'primary', disabled: !checked, title: checked ? '' : t('rollout.checkFirst'),
          onclick: () => act('promote', a, { to: to.value, force: force.checked }, (r) => {
            if (r.outcome === 'differs') { reports.set(a, r.check || {}); return 'differs'; }
            reports.delete(a);
            return 'promoted';
          }),
        }, t('rollout.promote'));
        return h('tr', { dataset: { account: a } },
          h('td', null, a),
          h('td', null, h('span', { class: 'pill' }, stage || '—'), explicit ? '' : h('span', { class: 'muted' }, ` ${t('rollout.inherited')}`)),
          h('td', null, waitingOf(a) || '—'),
          h('td', null, h('div', { class: 'actions' },
            h('button', { type: 'button', onclick: () => act('check', a, {}, (r) => { reports.set(a, r); return 'checked'; }) }, t('rollout.check')),
            to, h('label', { class: 'check' }, force, t('rollout.force')), promote,
            confirmButton(t('rollout.rollback'), t('common.confirm'), () => act('rollback', a, {}, () => { reports.delete(a); return 'rolled'; }), { class: 'danger' }))));
      })));
    renderReport();
  }

  return {
    /** Starts polling (admins): the banner follows from here on. */
    watch() { watching = true; poll(); },
    show() { mount(); root.hidden = false; render(); loadRollout(); },
    hide() { root.hidden = true; },
    context() {},
    relang() {
      if (!mounted) { banner(); return; }
      mounted = false;
      mount();
      render();
      if (rolloutError) say(el.rolloutMsg, rolloutError);
      renderRollout();
    },
    reset() {
      watching = false; clearTimeout(timer); last = null; rollout = null; reports.clear();
      mounted = false; fill(root); root.hidden = true; banner();
    },
  };
}
