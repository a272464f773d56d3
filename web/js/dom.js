// Element building without innerHTML: every text the API returns goes in as
// a text node, so no value can become markup.

/** h('td', {class: 'num'}, 'text', child...): an element; attributes starting with `on` are listeners. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** Replaces every child of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A table: `columns` as [{label, num}], `rows` as arrays of cells; an empty state when there are none. */
export function table(columns, rows, empty = 'Nothing to show.') {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h('div', { class: 'scroll' }, h('table', {},
    h('thead', {}, h('tr', {}, columns.map(c => h('th', { class: c.num ? 'num' : null, scope: 'col' }, c.label)))),
    h('tbody', {}, rows)));
}

/** A row of cells; cells given as {text, num} or plain values. */
export function row(cells, attrs = {}) {
  return h('tr', attrs, cells.map(c => (c && typeof c === 'object' && !(c instanceof Node))
    ? h('td', { class: c.num ? 'num' : null }, c.text)
    : h('td', {}, c)));
}

/** A labelled form control for the filter bars. */
export function field(label, control) {
  return h('label', {}, label, control);
}

/** The message a page shows when a route this server lacks answered 404. */
export function unavailable(what, route) {
  return h('p', { class: 'empty', 'data-unavailable': route },
    `${what} not available: this server has no ${route} yet.`);
}

/** An error line for a failed request, with the server's request id when there is one. */
export function errorLine(e) {
  return h('p', { class: 'error', role: 'alert' },
    e.message + (e.requestId ? ` (request ${e.requestId})` : ''));
}
