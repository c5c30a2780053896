// The admin page: sign-in, the account/book context every panel shares,
// the tabs, and the session's end. Panels live in their own modules.

import * as api from './api.js';
import { $, $$, fill, h, say } from './dom.js';
import { t, setLang, lang, applyStatic } from './i18n.js';
import health from './health.js';
import books from './books.js';
import deals from './deals.js';
import kline from './kline.js';
import equity from './equity.js';
import params from './params.js';
import audit from './audit.js';

const ADMIN_ONLY = new Set(['health', 'audit']);

/** What the panels share: who is signed in, the accounts, the chosen account and book. */
const ctx = {
  me: null,
  admin: false,
  accounts: [],
  account: null,
  books: [],
  book: null,
  /** Whether the user may write `account` (admins: every account). */
  canWrite(account = ctx.account) {
    if (!ctx.me || !account) return false;
    return ctx.me.accounts.some((a) => (a.account === '*' || a.account === account) && a.right === 'write');
  },
  /** The chosen book's strategy row. */
  strategy() { return ctx.books.find((b) => b.book === ctx.book) || null; },
};

const panels = {
  health: health(ctx, $('#panel-health')),
  positions: books(ctx, $('#panel-positions'), pickBook),
  deals: deals(ctx, $('#panel-deals')),
  kline: kline(ctx, $('#panel-kline')),
  equity: equity(ctx, $('#panel-equity')),
  params: params(ctx, $('#panel-params'), reloadBooks),
  audit: audit(ctx, $('#panel-audit')),
};
let current = null;

function allowed(tab) { return tab in panels && (ctx.admin || !ADMIN_ONLY.has(tab)); }

function go(tab) {
  if (!allowed(tab)) tab = ctx.admin ? 'health' : 'positions';
  if (current && current !== tab) panels[current].hide();
  current = tab;
  for (const b of $$('#tabs button')) b.setAttribute('aria-current', b.dataset.tab === tab ? 'page' : 'false');
  $('.context').hidden = tab === 'health' || tab === 'audit';
  panels[tab].show();
  if (location.hash !== `#${tab}`) history.replaceState(null, '', `#${tab}`);
}

function describe() {
  const s = ctx.strategy();
  $('#ctx-desc').textContent = s && s.description ? s.description : '';
}

async function reloadBooks() {
  const msg = $('#app-msg');
  say(msg, '');
  ctx.books = [];
  if (ctx.account) {
    try {
      ctx.books = await api.get(`/accounts${api.path(ctx.account)}/strategies`);
    } catch (e) {
      say(msg, e.message);
    }
  }
  const sel = $('#ctx-book');
  fill(sel, ctx.books.length ? ctx.books.map((b) => h('option', { value: b.book }, b.book)) : h('option', { value: '' }, t('ctx.noBooks')));
  if (!ctx.books.some((b) => b.book === ctx.book)) ctx.book = ctx.books.length ? ctx.books[0].book : null;
  sel.value = ctx.book || '';
  describe();
}

async function pickAccount(account) {
  ctx.account = account || null;
  ctx.book = null;
  await reloadBooks();
  changed();
}

function pickBook(book) {
  ctx.book = book || null;
  $('#ctx-book').value = ctx.book || '';
  describe();
  changed();
}

function changed() {
  for (const p of Object.values(panels)) p.context();
}

async function start() {
  ctx.me = await api.get('/auth/me');
  ctx.admin = ctx.me.role === 'admin';
  ctx.accounts = await api.get('/accounts');
  $('#login').hidden = true;
  $('#app').hidden = false;
  $('#tabs').hidden = false;
  $('#logout').hidden = false;
  const user = $('#user');
  user.hidden = false;
  user.textContent = `${ctx.me.user} · ${t(`role.${ctx.me.role}`)}`;
  for (const b of $$('#tabs .admin-only')) b.hidden = !ctx.admin;
  const sel = $('#ctx-account');
  fill(sel, ctx.accounts.length
    ? ctx.accounts.map((a) => h('option', { value: a.id }, a.name ? `${a.id} · ${a.name}` : a.id))
    : h('option', { value: '' }, t('ctx.noAccounts')));
  ctx.account = ctx.accounts.length ? ctx.accounts[0].id : null;
  await reloadBooks();
  if (ctx.admin) panels.health.watch();
  go(location.hash.slice(1));
}

function stop() {
  for (const p of Object.values(panels)) p.reset();
  current = null;
  Object.assign(ctx, { me: null, admin: false, accounts: [], account: null, books: [], book: null });
  $('#app').hidden = true;
  $('#tabs').hidden = true;
  $('#logout').hidden = true;
  $('#user').hidden = true;
  $('#banner').hidden = true;
  fill($('#ctx-account'));
  fill($('#ctx-book'));
  $('#ctx-desc').textContent = '';
  $('#login').hidden = false;
  const form = $('#login-form');
  form.reset();
  form.elements.user.focus();
}

function relang() {
  applyStatic(document);
  if (ctx.me) $('#user').textContent = `${ctx.me.user} · ${t(`role.${ctx.me.role}`)}`;
  if (!ctx.books.length) reloadBooks();
  for (const p of Object.values(panels)) p.relang();
}

$('#login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const form = ev.currentTarget;
  const msg = $('#login-msg');
  const button = form.querySelector('button[type=submit]');
  say(msg, '');
  button.disabled = true;
  try {
    await api.login(form.elements.user.value.trim(), form.elements.password.value);
    form.elements.password.value = '';
    await start();
  } catch (e) {
    say(msg, e.status === 401 ? t('auth.failed') : e.message);
  } finally {
    button.disabled = false;
  }
});

$('#logout').addEventListener('click', async () => {
  await api.logout();
  stop();
});

api.onSessionEnd(() => {
  stop();
  say($('#login-msg'), t('auth.expired'), 'info');
});

$('#tabs').addEventListener('click', (ev) => {
  const b = ev.target.closest('button[data-tab]');
  if (b) go(b.dataset.tab);
});
window.addEventListener('hashchange', () => { if (ctx.me) go(location.hash.slice(1)); });
$('#ctx-account').addEventListener('change', (ev) => pickAccount(ev.target.value));
$('#ctx-book').addEventListener('change', (ev) => pickBook(ev.target.value));

const langSel = $('#lang');
const asked = new URLSearchParams(location.search).get('lang');
setLang(asked === 'en' ? 'en' : 'zh-CN');
langSel.value = lang();
langSel.addEventListener('change', () => { setLang(langSel.value); relang(); });
applyStatic(document);

// A session this browser already has (the HttpOnly cookie) continues
// without a password; otherwise the form stays.
api.refresh().then(start).catch(() => {
  if (!ctx.me) $('#login-form').elements.user.focus();
});
