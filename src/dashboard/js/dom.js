/* dom.js: making and finding elements: h() for HTML, s() for SVG, the page's state marker and
   its message line. Touches `document` only when called, so modules that import it still load
   in node (test/modules.test.mjs loads every module but main.js). Keys and text from the
   server only ever become text and attributes here, never markup. */

/** The first element matching a selector. */
export const $ = (sel) => document.querySelector(sel);

/** A DOM element: h('td', {class: 'n'}, 'text', node, [more]). Text is always text. */
export function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'style') el.style.cssText = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid == null || kid === false) continue;
    el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';

/** An SVG element: s('rect', {x: 1}, kid). */
export function s(tag, attrs, ...kids) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  for (const kid of kids) el.append(kid);
  return el;
}

/** Marks the page's state on `<body data-state>` (docs/dashboard.md, "For tests"). */
export function setState(state) { document.body.dataset.state = state; }

/** Shows `text` in the message line at the top, or hides it when there is none. */
export function showMessage(text) {
  const m = $('#message');
  m.textContent = text || '';
  m.hidden = !text;
}
