// The REST API v1 with the signed-in user's own token. The access token
// lives in this module's memory only (never in storage or a script-set
// cookie); the refresh token is the server's HttpOnly `sqdata_refresh`
// cookie (path /api/v1/auth), traded for a new access token shortly before
// expiry and once after a 401.

const BASE = '/api/v1';

let token = null;
let expiresAt = 0;
let timer = 0;
let refreshing = null;
const ended = new Set();

/** An answer other than 2xx: the status, the envelope's message and field. */
export class ApiError extends Error {
  constructor(status, message, field) {
    super(message);
    this.status = status;
    this.field = field || null;
  }
}

/** Calls `fn(reason)` when the session ends by itself (refresh refused). */
export function onSessionEnd(fn) { ended.add(fn); }

/** Whether a token is held. */
export const signedIn = () => token !== null;

/** `/a/b` from path segments, each encoded. */
export const path = (...parts) => parts.map((p) => `/${encodeURIComponent(String(p))}`).join('');

function query(q) {
  if (!q) return '';
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  }
  const s = p.toString();
  return s ? `?${s}` : '';
}

async function envelope(res) {
  const kind = res.headers.get('content-type') || '';
  if (!kind.includes('json')) return null;
  try { return await res.json(); } catch { return null; }
}

function failure(res, env) {
  const message = env && typeof env.message === 'string' && env.message ? env.message : `HTTP ${res.status} ${res.statusText}`;
  const field = env && env.data && typeof env.data === 'object' ? env.data.field : null;
  return new ApiError(res.status, message, field);
}

function keep(data) {
  token = data.access_token;
  const ttl = Math.max(10, Number(data.expires_in) || 900);
  expiresAt = Date.now() + ttl * 1000;
  clearTimeout(timer);
  // shortly before expiry: a minute before, or a fifth of a short lifetime
  const lead = Math.min(60, ttl / 5);
  timer = setTimeout(() => { refresh().catch(() => {}); }, (ttl - lead) * 1000);
}

function drop(reason) {
  const had = token !== null;
  token = null;
  expiresAt = 0;
  clearTimeout(timer);
  if (had) for (const fn of ended) fn(reason);
}

async function post(url, body) {
  return fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
    credentials: 'same-origin',
    cache: 'no-store',
  });
}

/** Signs in; the refresh token arrives as the HttpOnly cookie (its copy in the body is not kept). */
export async function login(user, password) {
  const res = await post(`${BASE}/auth/login`, { user, password });
  const env = await envelope(res);
  if (!res.ok || !env || !env.data) throw failure(res, env);
  keep(env.data);
}

/** A new access token through the cookie; one refresh at a time. */
export function refresh() {
  if (!refreshing) {
    refreshing = (async () => {
      try {
        const res = await post(`${BASE}/auth/refresh`, {});
        const env = await envelope(res);
        if (!res.ok || !env || !env.data) {
          const e = failure(res, env);
          drop(e.message);
          throw e;
        }
        keep(env.data);
        return true;
      } finally {
        refreshing = null;
      }
    })();
  }
  return refreshing;
}

/** Ends the session on the server (its tokens stop working) and forgets the token. */
export async function logout() {
  const t = token;
  token = null;
  clearTimeout(timer);
  if (t) {
    await fetch(`${BASE}/auth/logout`, {
      method: 'POST', headers: { Authorization: `Bearer ${t}` }, credentials: 'same-origin', cache: 'no-store',
    }).catch(() => {});
  }
}

/**
 * One call: `{data, etag}` from the envelope, or the raw response with
 * `raw` (an export). A 401 refreshes once and retries once.
 */
export async function call(method, p, { q, body, headers = {}, raw = false } = {}, retried = false) {
  if (token && Date.now() > expiresAt - 5000) await refresh().catch(() => {});
  if (!token) throw new ApiError(401, 'not signed in');
  const init = { method, headers: { ...headers, Authorization: `Bearer ${token}` }, cache: 'no-store', credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(`${BASE}${p}${query(q)}`, init);
  if (res.status === 401 && !retried) {
    try { await refresh(); } catch (e) { throw e instanceof ApiError ? e : new ApiError(401, String(e)); }
    return call(method, p, { q, body, headers, raw }, true);
  }
  if (raw) {
    if (!res.ok) throw failure(res, await envelope(res));
    return res;
  }
  const env = await envelope(res);
  if (!res.ok || !env || env.code !== 0) throw failure(res, env);
  return { data: env.data, etag: res.headers.get('ETag') };
}

/** GET: the envelope's data. */
export const get = (p, q) => call('GET', p, { q }).then((r) => r.data);

/** Every page of a paged list (`{total, page, pageSize, data}`), at most `max` pages. */
export async function allPages(p, q, pageSize = 1000, max = 50) {
  const out = [];
  for (let page = 1; page <= max; page += 1) {
    const r = await get(p, { ...q, page, pageSize });
    out.push(...r.data);
    if (r.data.length < pageSize || out.length >= r.total) break;
  }
  return out;
}
