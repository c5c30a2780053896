// The browser tests' own view of the API (Node's fetch, a token per user)
// and what they write through it as admin before the page is opened: the
// 200-position book and the deals the K-line chart marks.

import assert from 'node:assert/strict';

/** The REST API of one server, signed in per user. */
export class Api {
  constructor(origin, password) {
    this.origin = origin;
    this.password = password;
    this.tokens = new Map();
  }

  async token(user) {
    const hit = this.tokens.get(user);
    if (hit && hit.until > Date.now()) return hit.token;
    const res = await fetch(`${this.origin}/api/v1/auth/login`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ user, password: this.password }),
    });
    const env = await res.json();
    assert.equal(res.status, 200, `login ${user}: ${JSON.stringify(env)}`);
    this.tokens.set(user, { token: env.data.access_token, until: Date.now() + (env.data.expires_in - 10) * 1000 });
    return env.data.access_token;
  }

  /** One request as `user`: `{status, body, headers}` (body parsed when JSON). */
  async req(user, method, path, body, headers = {}) {
    const h = { ...headers, Authorization: `Bearer ${await this.token(user)}` };
    if (body !== undefined) h['Content-Type'] = 'application/json';
    const res = await fetch(`${this.origin}/api/v1${path}`, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let parsed = text;
    try { parsed = JSON.parse(text); } catch { /* CSV, NDJSON */ }
    return { status: res.status, body: parsed, headers: res.headers };
  }

  /** The envelope's data of a 200 answer. */
  async ok(user, method, path, body, headers) {
    const r = await this.req(user, method, path, body, headers);
    assert.equal(r.status, 200, `${method} ${path} as ${user}: ${JSON.stringify(r.body)}`);
    return r.body.data;
  }

  get(user, path) { return this.ok(user, 'GET', path); }
}

export const ACCOUNT = '55009728';
export const BIG = 'grid200';
export const BOOK = 'prod_pwc';
export const CODES = Array.from({ length: 200 }, (_, i) => `${600000 + i}.SH`);

/** Where the seeded deals of the known series are: bar index → kinds. */
export const MARKED = { 40: ['买入成交'], 70: ['撤单'], 100: ['卖出成交', '限买委托'], 130: ['市卖委托'] };

/** The markers the chart should draw: the seeded ones, and the fixture day's 限买委托 on the last bar. */
export function expectedMarkers(known) {
  const out = [];
  for (const [i, kinds] of Object.entries(MARKED)) {
    if (kinds.some((k) => k.includes('买'))) out.push(`${i}:buy`);
    if (kinds.some((k) => k.includes('卖'))) out.push(`${i}:sell`);
  }
  out.push(`${known.bars - 1}:buy`);
  return out.sort();
}

/** Writes the 200-position book and the deals as admin. */
export async function seed(api, known) {
  const base = `/accounts/${ACCOUNT}/books/${BIG}/positions`;
  await api.ok('admin', 'POST', `${base}/buys`, { codes: CODES.slice(0, 100) });
  await api.ok('admin', 'POST', `${base}/inc-held-days`, { date: '2025-10-13' });
  await api.ok('admin', 'POST', `${base}/buys`, { codes: CODES.slice(100) });
  await api.ok('admin', 'POST', `${base}/inc-held-days`, { date: '2025-10-14' });
  await api.ok('admin', 'POST', `${base}/extremes`, {
    ticks: CODES.map((code, i) => ({ code, high: 10 + ((i * 37) % 200) / 10, low: 5 + ((i * 13) % 50) / 10 })),
  });
  await api.ok('admin', 'POST', `${base}/sells`, { code: CODES[199] });
  const deals = [];
  for (const [i, kinds] of Object.entries(MARKED)) {
    kinds.forEach((kind, k) => deals.push({
      account: ACCOUNT, book: BOOK, id: `known-${i}-${k}`, time: `${known.dates[i]} 10:3${k}:00`, code: known.code,
      name: '万科A', kind, remark: 'browser test', price: 10, volume: 100,
    }));
  }
  for (let i = 0; i < 30; i += 1) {
    deals.push({
      account: ACCOUNT, book: BOOK, id: `page-${i}`, time: `2025-09-${String(1 + (i % 28)).padStart(2, '0')} 09:${String(30 + i).padStart(2, '0')}:00`,
      code: '600036.SH', name: '招商银行', kind: i % 2 ? '卖出成交' : '买入成交', remark: `第 ${i} 笔`, price: 40 + i / 10, volume: 100 * (i + 1),
    });
  }
  const r = await api.ok('admin', 'POST', '/deals', { deals });
  assert.equal(r.inserted, deals.length);
}
