// DOM helpers: every piece of text from data goes in through textContent or
// a text node, never through an HTML parser.

/**
 * Creates an element. `props`: `class`, `text` (textContent), `dataset`,
 * `on<event>` (listeners), DOM properties given as non-strings (`disabled:
 * true`, `value: 3`), anything else as an attribute. Children: nodes, or
 * anything else as text; arrays are flattened, null/false skipped.
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = String(v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (typeof v !== 'string' && k in el) el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  add(el, children);
  return el;
}

function add(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** The first match of `sel` under `root`. */
export const $ = (sel, root = document) => root.querySelector(sel);

/** Every match of `sel` under `root`, as an array. */
export const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  add(el, children);
  return el;
}

/** A message line: `kind` is `error`, `ok` or `info`; empty text hides it. */
export function say(el, text, kind = 'error') {
  el.textContent = text || '';
  el.className = `msg msg-${kind}`;
  el.hidden = !text;
}

/** A table: `head` is a list of header cells (nodes or text), `rows` of row nodes. */
export function table(head, rows, cls = '') {
  return h('div', { class: 'table-wrap' },
    h('table', { class: cls },
      h('thead', null, h('tr', null, head.map((c) => (c instanceof Node && c.tagName === 'TH' ? c : h('th', { scope: 'col' }, c))))),
      h('tbody', null, rows)));
}

/** A header cell of a numeric column (right-aligned). */
export const numTh = (text) => h('th', { scope: 'col', class: 'num' }, text);

/** A `<select>` of `[value, label]` pairs. */
export function select(options, value, props = {}) {
  const s = h('select', props, options.map(([v, label]) => h('option', { value: String(v) }, label)));
  if (value !== undefined && value !== null) s.value = String(value);
  return s;
}

/** A number as the API gave it, at most `digits` decimals, or an em dash. */
export function num(v, digits = 4) {
  if (v === null || v === undefined || !Number.isFinite(Number(v))) return '—';
  return String(Number(Number(v).toFixed(digits)));
}

/** An RFC 3339 time as `YYYY-MM-DD HH:MM:SS` in the browser's time zone (the text as given when it is not one). */
export function when(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** A byte count in B / KiB / MiB / GiB. */
export function bytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = Number(n) || 0;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** Two-click confirmation on a button: the first click arms it (label `armed`), the second runs `action`. */
export function confirmButton(label, armed, action, props = {}) {
  const b = h('button', { type: 'button', ...props }, label);
  let timer = 0;
  b.addEventListener('click', () => {
    if (b.dataset.armed !== '1') {
      b.dataset.armed = '1';
      b.textContent = armed;
      b.classList.add('armed');
      timer = setTimeout(() => { b.dataset.armed = ''; b.textContent = label; b.classList.remove('armed'); }, 5000);
      return;
    }
    clearTimeout(timer);
    b.dataset.armed = '';
    b.textContent = label;
    b.classList.remove('armed');
    action();
  });
  return b;
}
