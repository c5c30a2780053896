// The admin page in a real Chromium (Debian's /usr/bin/chromium through
// playwright-core), against the servers `cargo xtask browser` starts and
// seeds (SQDATA_BROWSER_FIXTURE names its fixture file). One browser, one
// page reused by every test, in order. Each test states what it checks;
// the last one checks what every step left behind: no request off the
// origin, no console error, no CSP violation.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { ACCOUNT, Api, BIG, BOOK, CODES, expectedMarkers, seed } from './seed.mjs';

const fx = JSON.parse(readFileSync(process.env.SQDATA_BROWSER_FIXTURE, 'utf8'));
const A = fx.embedded.origin;
const B = fx.mvp.origin;
const XSS = '<img src=x onerror=alert(1)>';
const api = new Api(A, fx.password);
const apiB = new Api(B, fx.password);
const UP = [220, 38, 38];
const DOWN = [22, 163, 74];
const BUY = [37, 99, 235];
const SELL = [147, 51, 234];

let browser;
let page;
let origin = A;
let restarted = null;
const seen = { console: [], pageErrors: [], requests: [], offOrigin: [], dialogs: [], csp: [], expected: [] };
const figures = {};

/** A non-2xx answer a step provokes on purpose: Chromium logs each as a console error. */
function expectHttp(status, path) { seen.expected.push({ status, path }); }

function isExpected(msg) {
  const m = /status of (\d+)/.exec(msg.text);
  if (!m) return false;
  return seen.expected.some((e) => String(e.status) === m[1] && msg.url.includes(e.path));
}

async function shot(name) {
  await page.screenshot({ path: join(fx.artifacts, `${name}.png`) });
}

async function login(user) {
  await page.locator('#login').waitFor({ state: 'visible' });
  await page.fill('#login-form [name=user]', user);
  await page.fill('#login-form [name=password]', fx.password);
  await page.click('#login-form button[type=submit]');
  await page.locator('#app').waitFor({ state: 'visible', timeout: 15000 });
}

async function logout() {
  await page.click('#logout');
  await page.locator('#login').waitFor({ state: 'visible' });
}

async function tab(name) {
  await page.click(`#tabs button[data-tab=${name}]`);
  await page.locator(`#panel-${name}`).waitFor({ state: 'visible' });
}

const frames = (n = 2) => page.evaluate((k) => new Promise((done) => {
  const step = (left) => (left ? requestAnimationFrame(() => step(left - 1)) : done());
  step(k);
}), n);

/** Text of every cell of a table, row by row. */
const cells = (sel) => page.$$eval(`${sel} tbody tr`, (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));

/**
 * Waits until column `col` of the table equals `want` — an earlier answer with the same total
 * (another page size, the previous filter) can still be on screen when the page info matches.
 */
const rowsShown = async (sel, col, want) => {
  try {
    await page.waitForFunction(
      ([s, c, w]) => {
        const got = [...document.querySelectorAll(`${s} tbody tr`)].map((r) => r.cells[c]?.textContent);
        return got.length === w.length && got.every((v, k) => v === w[k]);
      },
      [sel, col, want],
      { timeout: 10000 },
    );
  } catch {
    // Fall through to the assertion, which shows the difference.
  }
  assert.deepEqual((await cells(sel)).map((r) => r[col]), want);
};

/** What the page shows for a number (dom.js `num`). */
const num = (v, d = 4) => (v === null || v === undefined ? '—' : String(Number(Number(v).toFixed(d))));

const near = (px, want, tol = 40) => want.every((w, k) => Math.abs(px[k] - w) <= tol);

before(async () => {
  mkdirSync(fx.artifacts, { recursive: true });
  await seed(api, fx.known);
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--lang=zh-CN'] });
  const context = await browser.newContext({ viewport: { width: 1366, height: 900 }, acceptDownloads: true, locale: 'zh-CN' });
  await context.exposeBinding('__sqdataCsp', (_source, v) => { seen.csp.push(v); });
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__sqdataCsp({ directive: e.violatedDirective, blocked: e.blockedURI, sample: e.sample, page: location.href });
    });
  });
  page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') seen.console.push({ text: m.text(), url: m.location().url || '' });
    if (/Content.Security.Policy/i.test(m.text())) seen.csp.push({ console: m.text() });
  });
  page.on('pageerror', (e) => seen.pageErrors.push(String(e)));
  page.on('dialog', (d) => { seen.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  page.on('request', (r) => {
    const url = r.url();
    seen.requests.push(url);
    if (!(url.startsWith(`${origin}/`) || url.startsWith(`blob:${origin}/`))) seen.offOrigin.push(url);
  });
});

after(async () => {
  if (restarted && restarted.exitCode === null) restarted.kill('SIGKILL');
  await browser?.close();
  console.log(`\nfigures: ${JSON.stringify(figures)}`);
});

test('the page paints, refuses a wrong password and signs the admin in', async () => {
  expectHttp(401, '/api/v1/auth/refresh');
  expectHttp(401, '/api/v1/auth/login');
  await page.goto(`${A}/admin/`);
  await page.locator('#login').waitFor({ state: 'visible' });
  const paint = await page.evaluate(() => Object.fromEntries(performance.getEntriesByType('paint').map((e) => [e.name, e.startTime])));
  figures.firstPaintMs = Math.round(paint['first-paint']);
  figures.firstContentfulPaintMs = Math.round(paint['first-contentful-paint']);
  assert.ok(paint['first-contentful-paint'] > 0, JSON.stringify(paint));
  assert.equal(await page.title(), 'sqdata 管理');
  await page.fill('#login-form [name=user]', 'admin');
  await page.fill('#login-form [name=password]', 'not the password at all');
  await page.click('#login-form button[type=submit]');
  await page.locator('#login-msg').waitFor({ state: 'visible' });
  assert.match(await page.textContent('#login-msg'), /错误/);
  await login('admin');
  assert.match(await page.textContent('#user'), /admin · 管理员/);
  assert.equal(await page.isVisible('#tabs button[data-tab=audit]'), true);
  // the token is in the module's memory only
  assert.equal(await page.evaluate(() => localStorage.length + sessionStorage.length), 0);
  assert.equal(await page.evaluate(() => document.cookie), '');
});

test('health: the backends and the embedded tier; the rollout answer is shown, not fatal', async () => {
  expectHttp(409, '/api/v1/ops/rollout');
  expectHttp(404, '/api/v1/ops/rollout');
  await tab('health');
  await page.locator('#panel-health tr[data-backend=file]').waitFor({ timeout: 10000 });
  assert.match(await page.textContent('#panel-health tr[data-backend=file]'), /正常/);
  assert.match(await page.textContent('#panel-health'), /没有混合存储域/);
  const status = await api.req('admin', 'GET', '/ops/rollout');
  if (status.status !== 200) {
    const msg = page.locator('#panel-health .card .msg').last();
    await msg.waitFor({ state: 'visible', timeout: 10000 });
    assert.equal((await msg.textContent()).trim(), status.body.message);
  }
  assert.equal(await page.isVisible('#banner'), false);
  await shot('health');
});

test('positions: the 200-position book equals the API, cell by cell, and sorts', async () => {
  await tab('positions');
  await page.selectOption('#ctx-book', BIG);
  await page.waitForFunction(() => document.querySelectorAll('#panel-positions table.positions tbody tr').length === 200, null, { timeout: 15000 });
  const shown = await cells('#panel-positions table.positions');
  const p = await api.get('admin', `/accounts/${ACCOUNT}/books/${BIG}/positions`);
  const quotes = await api.get('admin', `/quotes?codes=${p.positions.map((x) => x.code).join(',')}`);
  const last = new Map(quotes.map((q) => [q.code, q.quote.last]));
  const want = p.positions
    .map((x) => {
      const l = last.has(x.code) ? last.get(x.code) : null;
      const dd = l !== null && x.max_price > 0 ? `${(((l - x.max_price) / x.max_price) * 100).toFixed(2)}%` : '—';
      return [x.code, x.day_count === null ? '已卖出' : String(x.day_count), num(x.max_price), num(x.min_price), num(l), dd];
    })
    .sort((a, b) => (a[0] < b[0] ? -1 : 1));
  assert.equal(p.positions.length, 200);
  assert.deepEqual(shown.map((r) => r[0]), CODES);
  for (let i = 0; i < want.length; i += 1) assert.deepEqual(shown[i], want[i], `row ${i}`);
  // what was seeded: two held-day counts, one sold
  assert.deepEqual(shown[0].slice(0, 2), ['600000.SH', '2']);
  assert.deepEqual(shown[150].slice(0, 2), ['600150.SH', '1']);
  assert.deepEqual(shown[199].slice(0, 2), ['600199.SH', '已卖出']);
  const column = async (k) => (await cells('#panel-positions table.positions')).map((r) => r[k]);
  const numbers = (xs) => xs.filter((x) => x !== '—').map(Number);
  await page.click('#panel-positions button[data-sort=max]');
  let maxes = numbers(await column(2));
  assert.deepEqual(maxes, [...maxes].sort((a, b) => a - b));
  assert.equal((await column(2)).at(-1), '—', 'unknown values last');
  await page.click('#panel-positions button[data-sort=max]');
  maxes = numbers(await column(2));
  assert.deepEqual(maxes, [...maxes].sort((a, b) => b - a));
  await page.click('#panel-positions button[data-sort=days]');
  const days = (await column(1)).filter((x) => x !== '已卖出').map(Number);
  assert.deepEqual(days, [...days].sort((a, b) => a - b));
  await page.click('#panel-positions button[data-sort=code]');
  assert.deepEqual(await column(0), CODES);
  await shot('positions');
});

async function loadSeries(code) {
  await page.fill('#panel-kline [name=code]', code);
  await page.click('#panel-kline button[type=submit]');
}

test('K-line: red and green candles of the known series, and the book\'s deal markers', async () => {
  await tab('kline');
  await page.selectOption('#ctx-book', BOOK);
  await loadSeries(fx.known.code);
  await page.waitForFunction((n) => document.querySelector('#panel-kline .msg')?.dataset.bars === String(n), fx.known.bars, { timeout: 15000 });
  await page.evaluate(() => document.querySelector('#kline-canvas').sqdataChart.fit());
  await frames();
  const k = await api.get('admin', `/klines/${fx.known.code}?limit=20000`);
  assert.equal(k.bars.length, fx.known.bars);
  const got = await page.evaluate((bars) => {
    const c = document.querySelector('#kline-canvas');
    const chart = c.sqdataChart;
    const dpr = chart.dpr();
    const img = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const px = (x, y) => { const i = (Math.round(y * dpr) * c.width + Math.round(x * dpr)) * 4; return [img[i], img[i + 1], img[i + 2]]; };
    return {
      view: chart.view(),
      bodies: bars.map((b, i) => px(chart.xOf(i), chart.yOf((b.open + b.close) / 2))),
      markers: chart.markers().map((m) => ({ ...m, px: px(m.x, m.y) })),
    };
  }, k.bars);
  assert.deepEqual(got.view, { start: 0, count: fx.known.bars, n: fx.known.bars });
  const red = got.bodies.filter((p) => near(p, UP)).length;
  const green = got.bodies.filter((p) => near(p, DOWN)).length;
  figures.knownSeries = { bars: fx.known.bars, red, green, wantUp: fx.known.up, wantDown: fx.known.down };
  assert.equal(red, fx.known.up, 'red candles (close ≥ open)');
  assert.equal(green, fx.known.down, 'green candles (close < open)');
  got.bodies.forEach((p, i) => {
    const up = k.bars[i].close >= k.bars[i].open;
    assert.ok(near(p, up ? UP : DOWN), `bar ${i} (${up ? 'up' : 'down'}) is ${p}`);
  });
  assert.deepEqual(got.markers.map((m) => `${m.i}:${m.side}`).sort(), expectedMarkers(fx.known));
  for (const m of got.markers) assert.ok(near(m.px, m.side === 'buy' ? BUY : SELL), `marker ${m.i}:${m.side} is ${m.px}`);
  await shot('kline');
});

test('K-line: 6,000 bars over two pages; zoom; a 5,000-bar redraw on pan', async () => {
  await loadSeries(fx.known.long.code);
  await page.waitForFunction((n) => document.querySelector('#panel-kline .msg')?.dataset.bars === String(n), fx.known.long.bars, { timeout: 30000 });
  assert.equal(await page.getAttribute('#panel-kline .msg', 'data-pages'), '2', 'next_from followed to the second page');
  const box = await page.locator('#kline-canvas').boundingBox();
  const view = () => page.evaluate(() => document.querySelector('#kline-canvas').sqdataChart.view());
  const before = await view();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.wheel(0, -400);
  await page.waitForFunction((c) => document.querySelector('#kline-canvas').sqdataChart.view().count < c, before.count);
  await page.evaluate(() => document.querySelector('#kline-canvas').sqdataChart.fit(5000));
  await frames();
  const v0 = await view();
  assert.equal(v0.count, 5000);
  await page.evaluate(() => { performance.clearMeasures('kline-draw'); performance.mark('pan-start'); });
  const y = box.y + box.height / 3;
  await page.mouse.move(box.x + box.width * 0.2, y);
  await page.mouse.down();
  for (let s = 1; s <= 40; s += 1) {
    await page.mouse.move(box.x + box.width * 0.2 + s * 15, y);
    await frames(1);
  }
  await page.mouse.up();
  await frames();
  const pan = await page.evaluate(() => {
    performance.mark('pan-end');
    const total = performance.measure('pan', 'pan-start', 'pan-end').duration;
    const draws = performance.getEntriesByName('kline-draw').map((e) => e.duration).sort((a, b) => a - b);
    return { total, draws };
  });
  const v1 = await view();
  assert.ok(v1.start < v0.start, `dragging right shows older bars (${v0.start} → ${v1.start})`);
  assert.equal(v1.count, 5000);
  assert.ok(pan.draws.length >= 10, `redraws during the pan: ${pan.draws.length}`);
  const mean = pan.draws.reduce((a, b) => a + b, 0) / pan.draws.length;
  figures.pan5000 = {
    redraws: pan.draws.length,
    meanMs: +mean.toFixed(2),
    p95Ms: +pan.draws[Math.floor(pan.draws.length * 0.95)].toFixed(2),
    maxMs: +pan.draws.at(-1).toFixed(2),
    dragMs: Math.round(pan.total),
  };
  assert.ok(figures.pan5000.p95Ms < 50, `a 5,000-bar redraw stays under 50 ms: ${JSON.stringify(figures.pan5000)}`);
  await shot('kline-5000');
});

test('deals: paged, filtered by kind, exported as CSV', async () => {
  await tab('deals');
  await page.selectOption('#panel-deals [name=book]', '');
  await page.selectOption('#panel-deals [name=pageSize]', '20');
  await page.click('#panel-deals button[type=submit]');
  const all = await api.get('admin', `/accounts/${ACCOUNT}/deals?pageSize=20`);
  assert.ok(all.total > 20, `seeded enough deals for two pages: ${all.total}`);
  const pages = Math.ceil(all.total / 20);
  await page.waitForFunction((t) => document.querySelector('#panel-deals [data-pageinfo]')?.textContent.includes(`共 ${t} 条`), all.total);
  await rowsShown('#panel-deals table.deals', 0, all.data.map((d) => d.time));
  await page.click('#panel-deals button[data-page=next]');
  await page.waitForFunction(() => document.querySelector('#panel-deals [data-pageinfo]')?.textContent.startsWith('第 2/'));
  const second = await api.get('admin', `/accounts/${ACCOUNT}/deals?pageSize=20&page=2`);
  await rowsShown('#panel-deals table.deals', 0, second.data.map((d) => d.time));
  assert.deepEqual((await cells('#panel-deals table.deals')).map((r) => r[0] + r[2]), second.data.map((d) => d.time + d.code));
  assert.match(await page.textContent('#panel-deals [data-pageinfo]'), new RegExp(`第 2/${pages} 页`));
  await page.selectOption('#panel-deals [name=kind]', '买入成交');
  await page.click('#panel-deals button[type=submit]');
  const buys = await api.get('admin', `/accounts/${ACCOUNT}/deals?pageSize=20&kind=${encodeURIComponent('买入成交')}`);
  await page.waitForFunction((t) => document.querySelector('#panel-deals [data-pageinfo]')?.textContent.includes(`共 ${t} 条`), buys.total);
  await rowsShown('#panel-deals table.deals', 0, buys.data.map((d) => d.time));
  assert.ok((await cells('#panel-deals table.deals')).every((r) => r[4] === '买入成交'));
  await shot('deals');
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#panel-deals .buttons button[type=button]')]);
  const csv = readFileSync(await download.path(), 'utf8').trim().split('\n');
  assert.equal(csv[0], 'id,book,time,code,name,kind,remark,price,volume,amount,strategy');
  assert.equal(csv.length - 1, buys.total);
  assert.ok(csv.slice(1).every((l) => l.includes(',买入成交,')));
  assert.match(download.suggestedFilename(), /^deals-55009728-.*\.csv$/);
});

test('equity curve of a book', async () => {
  await tab('equity');
  await page.selectOption('#ctx-book', BOOK);
  const rows = await api.get('admin', `/accounts/${ACCOUNT}/books/${BOOK}/assets`);
  await page.waitForFunction((n) => document.querySelector('#panel-equity .muted')?.textContent.startsWith(`${n} 天`), rows.length, { timeout: 10000 });
  const blue = await page.evaluate(() => {
    const c = document.querySelector('#equity-canvas');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] < 80 && d[i + 1] > 80 && d[i + 1] < 130 && d[i + 2] > 200) n += 1;
    return n;
  });
  assert.ok(blue > 200, `the line is drawn (${blue} blue pixels)`);
  await shot('equity');
});

test('parameters: versions, a diff, a rollback that makes a new version, a 412 on a stale edit (trader)', async () => {
  await logout();
  await login('trader');
  assert.equal(await page.isVisible('#tabs button[data-tab=health]'), false);
  await tab('params');
  await page.selectOption('#ctx-book', BOOK);
  const base = `/accounts/${ACCOUNT}/strategies/${BOOK}/params`;
  const versions = await api.get('trader', `${base}/versions`);
  assert.equal(versions.length, 3);
  await page.waitForFunction(() => document.querySelectorAll('#panel-params table.versions tbody tr').length === 3);
  assert.equal(await page.textContent('#params-json'), JSON.stringify(versions[2].params, null, 2));
  const diff = await api.get('trader', `${base}/diff?from=2&to=3`);
  await page.waitForFunction((n) => document.querySelectorAll('#params-diff li.change').length === n, diff.length);
  const items = await page.$$eval('#params-diff li.change', (ls) => ls.map((l) => [l.dataset.path, l.dataset.kind]));
  assert.deepEqual(items.map((x) => x[0]), diff.map((c) => c.path));
  assert.ok(items.some(([p, k]) => p === 'take' && k === 'removed'), JSON.stringify(items));
  assert.ok(items.some(([p, k]) => p === 'trail' && k === 'added'), JSON.stringify(items));
  await shot('params');
  const rollback = page.locator('#panel-params button[data-rollback="1"]');
  await rollback.click();
  await rollback.click();
  await page.waitForFunction(() => document.querySelectorAll('#panel-params table.versions tbody tr').length === 4);
  const after4 = await api.get('trader', `${base}/versions`);
  assert.equal(after4.length, 4);
  assert.deepEqual(after4[3].params, versions[0].params);
  assert.equal(await page.textContent('#params-json'), JSON.stringify(versions[0].params, null, 2));
  // someone else stores v5 while this editor still holds v4
  await api.ok('admin', 'PUT', base, { params: { stop: 0.03 }, note: 'elsewhere' }, { 'If-Match': '"v4"' });
  expectHttp(412, base);
  await page.fill('#panel-params textarea', JSON.stringify({ stop: 0.02 }));
  await page.click('#panel-params form.edit button[type=submit]');
  await page.waitForFunction(() => /他人修改/.test(document.querySelector('#panel-params form.edit .msg')?.textContent || ''));
  assert.equal((await api.get('trader', `${base}/versions`)).length, 5, 'the stale edit stored nothing');
});

test('a viewer sees no edit control, and a crafted write gets 403', async () => {
  await logout();
  await login('viewer');
  for (const t of ['health', 'audit']) assert.equal(await page.isVisible(`#tabs button[data-tab=${t}]`), false);
  assert.deepEqual(await page.$$eval('#ctx-account option', (os) => os.map((o) => o.value)), [ACCOUNT]);
  await tab('params');
  await page.selectOption('#ctx-book', BOOK);
  await page.waitForFunction(() => document.querySelectorAll('#panel-params table.versions tbody tr').length === 5);
  assert.equal(await page.locator('#panel-params .write-ctl').count(), 0);
  assert.equal(await page.locator('#panel-params textarea, #panel-params [data-rollback]').count(), 0);
  assert.equal(await page.locator('#panel-params button', { hasText: /保存|回滚/ }).count(), 0);
  await shot('viewer-params');
  const base = `/accounts/${ACCOUNT}/strategies/${BOOK}/params`;
  for (const [method, path, body] of [
    ['PUT', base, { params: { stop: 1 } }],
    ['POST', `${base}/rollback`, { to: 1 }],
    ['POST', `/accounts/${ACCOUNT}/books/${BIG}/positions/buys`, { codes: ['600000.SH'] }],
  ]) {
    const r = await api.req('viewer', method, path, body);
    assert.equal(r.status, 403, `${method} ${path}: ${JSON.stringify(r.body)}`);
  }
  assert.equal((await api.get('viewer', `${base}/versions`)).length, 5);
});

test('a strategy description <img src=x onerror=alert(1)> shows as text', async () => {
  await tab('positions');
  await page.selectOption('#ctx-book', BOOK);
  const cell = page.locator('#panel-positions table.books tr[data-book=prod_pwc] td.description');
  await cell.waitFor();
  assert.equal(await cell.textContent(), XSS);
  assert.equal(await page.textContent('#ctx-desc'), XSS);
  assert.equal(await page.locator('main img').count(), 0);
  assert.deepEqual(await page.evaluate(() => [...document.images].map((i) => i.getAttribute('src'))), ['favicon.svg']);
  await frames();
  assert.deepEqual(seen.dialogs, []);
  assert.equal(seen.requests.filter((u) => /\/x$/.test(u)).length, 0);
});

test('audit trail (admin) and the language switch', async () => {
  await logout();
  await login('admin');
  await tab('audit');
  const rows = await api.get('admin', '/audit?limit=100');
  await page.waitForFunction((n) => document.querySelectorAll('#panel-audit table.audit tbody tr').length === n, rows.length, { timeout: 10000 });
  const actions = (await cells('#panel-audit table.audit')).map((r) => r[2]);
  assert.deepEqual(actions, rows.map((r) => r.action));
  assert.ok(actions.includes('positions.buy') && actions.includes('params.rollback'), actions.join(' '));
  await shot('audit');
  await page.selectOption('#lang', 'en');
  assert.equal(await page.textContent('#tabs button[data-tab=positions]'), 'Positions');
  assert.equal(await page.textContent('#panel-audit h2'), 'Audit trail');
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'en');
  await page.selectOption('#lang', 'zh-CN');
  assert.equal(await page.textContent('#tabs button[data-tab=positions]'), '持仓');
});

test('session: a reload continues through the refresh cookie; a 401 refreshes once; the token refreshes before expiry', async () => {
  await page.reload();
  await page.locator('#app').waitFor({ state: 'visible', timeout: 10000 });
  assert.equal(await page.isVisible('#login'), false);
  await tab('positions');
  await page.selectOption('#ctx-book', BIG);
  await page.locator('#panel-positions table.positions').waitFor();
  // the server refuses the next positions read once: the page refreshes, then retries
  let refused = 0;
  await page.route('**/api/v1/accounts/*/books/*/positions', async (route) => {
    if (refused++ === 0) {
      await route.fulfill({ status: 401, contentType: 'application/json', body: '{"code":401,"data":null,"message":"expired"}' });
    } else await route.continue();
  });
  expectHttp(401, `/books/${BIG}/positions`);
  const refreshed = page.waitForRequest((r) => r.url().endsWith('/api/v1/auth/refresh'), { timeout: 10000 });
  await page.click('#panel-positions .row button');
  await refreshed;
  // the old rows stay until the retry answers: wait for the retry itself
  const until = Date.now() + 10000;
  while (refused < 2 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  assert.ok(refused >= 2, `refused once, then retried (${refused} requests)`);
  await page.waitForFunction(() => document.querySelectorAll('#panel-positions table.positions tbody tr').length === 200);
  await page.unroute('**/api/v1/accounts/*/books/*/positions');
  // 30 s tokens: the page refreshes before expiry without any 401
  const t0 = Date.now();
  await page.waitForRequest((r) => r.url().endsWith('/api/v1/auth/refresh'), { timeout: 35000 });
  figures.proactiveRefreshAfterMs = Date.now() - t0;
  await page.click('#panel-positions .row button');
  await page.waitForFunction(() => document.querySelectorAll('#panel-positions table.positions tbody tr').length === 200);
  assert.equal(await page.isVisible('#login'), false);
});

test('a phone-sized screen: no sideways scrolling of the page', async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await frames();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `the page is ${overflow}px wider than the screen`);
  await shot('phone-positions');
  await tab('kline');
  await page.selectOption('#ctx-book', BOOK);
  await loadSeries(fx.known.code);
  await page.waitForFunction((n) => document.querySelector('#panel-kline .msg')?.dataset.bars === String(n), fx.known.bars, { timeout: 15000 });
  await frames();
  await shot('phone-kline');
  await page.setViewportSize({ width: 1366, height: 900 });
});

test('mvp: killing the private Redis raises the degraded banner within 10 s; a restart clears it', async () => {
  origin = B;
  expectHttp(401, '/api/v1/auth/refresh');
  await page.goto(`${B}/admin/`);
  await login('admin');
  await tab('health');
  const mode = (d) => page.getAttribute(`#panel-health tr[data-domain=${d}]`, 'data-mode');
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll('#panel-health tr[data-domain]')];
    return rows.length > 0 && rows.every((r) => r.dataset.mode === 'healthy');
  }, null, { timeout: 30000 });
  assert.equal(await mode('positions'), 'healthy');
  assert.equal(await page.isVisible('#banner'), false);
  const [cmd, ...args] = fx.mvp.redis.argv;
  process.kill(fx.mvp.redis.pid, 'SIGKILL');
  const t0 = Date.now();
  try {
    await page.locator('#banner').waitFor({ state: 'visible', timeout: 10000 });
    figures.bannerAfterKillMs = Date.now() - t0;
    assert.match(await page.textContent('#banner'), /降级中：.*positions/);
    await page.waitForFunction(() => document.querySelector('#panel-health tr[data-domain=positions]')?.dataset.mode === 'degraded');
    await shot('health-degraded');
  } finally {
    // whatever happened above, the next tests get their Redis back
    restarted = spawn(cmd, args, { stdio: 'ignore' });
  }
  const t1 = Date.now();
  await page.locator('#banner').waitFor({ state: 'hidden', timeout: 60000 });
  figures.bannerClearedAfterRestartMs = Date.now() - t1;
  assert.notEqual(await mode('positions'), 'degraded');
  await shot('health-recovered');
});

test('rollout (mvp): stages, a verify report before a promote, a rollback', async (t) => {
  const r = await apiB.req('admin', 'GET', '/ops/rollout');
  if (r.status !== 200) {
    expectHttp(r.status, '/api/v1/ops/rollout');
    await page.click('#panel-health .card .row button');
    const msg = page.locator('#panel-health .card .msg').last();
    await msg.waitFor({ state: 'visible' });
    assert.equal((await msg.textContent()).trim(), r.body.message);
    t.skip(`GET /api/v1/ops/rollout answers ${r.status} on the mvp server: ${r.body.message}`);
    return;
  }
  const row = page.locator(`#panel-health tr[data-account="${ACCOUNT}"]`);
  await row.waitFor();
  const promote = row.locator('button.primary');
  assert.equal(await promote.isDisabled(), true, 'no promote before a verify report');
  await row.locator('button', { hasText: '校验' }).click();
  await page.locator(`#panel-health [data-report="${ACCOUNT}"]`).waitFor({ timeout: 30000 });
  assert.ok(await page.locator(`#panel-health [data-report="${ACCOUNT}"] tbody tr`).count() >= 1, 'the report lists its domains');
  assert.equal(await promote.isDisabled(), false, 'a promote once the report is shown');
  await shot('rollout-report');
  const stage = (await apiB.get('admin', '/ops/rollout')).stages;
  const from = stage[ACCOUNT] || stage['*'];
  const order = ['files', 'shadow', 'reads', 'writes', 'full'];
  const to = order[Math.min(order.length - 1, order.indexOf(from) + 1)];
  await row.locator('select').selectOption(to);
  await promote.click();
  await page.waitForFunction(([a, want]) => document.querySelector(`#panel-health tr[data-account="${a}"] .pill`)?.textContent === want, [ACCOUNT, to], { timeout: 30000 });
  assert.equal((await apiB.get('admin', '/ops/rollout')).stages[ACCOUNT], to);
  assert.match(await page.textContent('#panel-health .card .msg'), /已从 .* 推进到/);
  await shot('rollout');
  const back = page.locator(`#panel-health tr[data-account="${ACCOUNT}"] button.danger`);
  await back.click();
  await back.click();
  await page.waitForFunction(([a, was]) => document.querySelector(`#panel-health tr[data-account="${a}"] .pill`)?.textContent !== was, [ACCOUNT, to], { timeout: 30000 });
});

test('no request left the origin, no console error, no CSP violation — and the CSP listener does catch one', async () => {
  const unexpected = seen.console.filter((m) => !isExpected(m));
  figures.requests = seen.requests.length;
  figures.expectedHttpErrors = seen.console.length - unexpected.length;
  assert.deepEqual(seen.offOrigin, [], 'requests off the origin');
  assert.deepEqual(unexpected, [], 'console errors');
  assert.deepEqual(seen.pageErrors, [], 'uncaught exceptions');
  assert.deepEqual(seen.csp, [], 'CSP violations');
  assert.deepEqual(seen.dialogs, [], 'dialogs');
  // the same listeners on a planted inline script: they would have seen one
  await page.evaluate(() => { const s = document.createElement('script'); s.textContent = 'window.planted = 1'; document.body.append(s); });
  await page.waitForFunction(() => true);
  const deadline = Date.now() + 5000;
  while (!seen.csp.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.ok(seen.csp.length >= 1, 'the planted inline script was reported');
  assert.equal(await page.evaluate(() => window.planted), undefined, 'and did not run');
});
