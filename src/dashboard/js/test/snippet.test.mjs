// The snippet's page flag (src/track/t.js, `pp`): the snippet runs here against a stand-in
// page (cookie, localStorage, links, the pixel's Image), so what it would send can be read.
// The browser test (tests/browser.rs) runs it in Chromium; this one walks the calendar.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

const SOURCE = readFileSync(new URL('../../../track/t.js', import.meta.url), 'utf8');

/** A page of https://acme.example running the snippet, the clock at `now` (ms): `view(url)`
    tracks a view and returns the pixel's parameters; `storage` is its localStorage. */
function page(opts) {
  const o = opts || {};
  const sent = [];
  let jar = '';
  const storage = o.storage || new Map();
  const localStorage = o.noStorage ? undefined : {
    getItem: (k) => (storage.has(k) ? storage.get(k) : null),
    setItem: (k, v) => {
      if (o.full) throw new Error('QuotaExceededError');
      storage.set(k, String(v));
    },
  };
  const script = { src: 'https://tally.example/t.js',
    getAttribute: (k) => ({ 'data-site': 'acme', 'data-tz': 'Europe/Berlin',
      'data-auto': 'false' })[k] ?? null };
  const document = {
    currentScript: script, referrer: '', title: 'T', visibilityState: 'visible',
    get cookie() { return jar; },
    set cookie(v) { if (!o.noCookies) jar = v.split(';')[0]; },
    addEventListener() {},
    createElement: () => {
      const a = {};
      Object.defineProperty(a, 'href', { set(v) {
        const u = new URL(v, 'https://acme.example/');
        a.pathname = u.pathname;
        a.search = u.search;
      } });
      return a;
    },
  };
  const window = { addEventListener() {}, innerWidth: 1280, innerHeight: 800,
    crypto: globalThis.crypto, Intl };
  Object.defineProperty(window, 'localStorage', { get() {
    if (o.blocked) throw new Error('SecurityError');
    return localStorage;
  } });
  function Image() {}
  Object.defineProperty(Image.prototype, 'src', { set(v) { sent.push(v); } });
  const location = { href: 'https://acme.example/', protocol: 'https:' };
  new Function('window', 'document', 'navigator', 'location', 'screen', 'Image', SOURCE)(
    window, document, { cookieEnabled: !o.noCookies }, location, { width: 1920 }, Image);
  const clock = { now: 0 };
  return {
    storage,
    at(iso) { clock.now = Date.parse(iso); return this; },
    view(url) {
      const real = Date.now;
      Date.now = () => clock.now;
      try { window.tally('track', { url }); } finally { Date.now = real; }
      return new URL(sent[sent.length - 1]).searchParams;
    },
  };
}

test('2 on a page’s first view of the month, 1 on its first of a day, else none', () => {
  const p = page().at('2026-11-10T09:00:00Z');
  const pp = (url) => p.view(url).get('pp');
  assert.equal(pp('https://acme.example/a'), '2');
  assert.equal(pp('https://acme.example/a'), null);
  assert.equal(pp('https://acme.example/b'), '2');
  // The query is part of the page, utm_ parameters are not; the fragment is never sent.
  assert.equal(pp('https://acme.example/a?utm_source=news&utm_medium=mail'), null);
  assert.equal(pp('https://acme.example/a?id=7'), '2');
  assert.equal(pp('https://acme.example/a?utm_source=x&id=7'), null);
  assert.equal(pp('https://acme.example/a?id=7&utm_source=x'), null);
  // Berlin's next day starts at 23:00 UTC.
  p.at('2026-11-10T22:59:00Z');
  assert.equal(pp('https://acme.example/a'), null);
  p.at('2026-11-10T23:00:00Z');
  assert.equal(pp('https://acme.example/a'), '1');
  assert.equal(pp('https://acme.example/a'), null);
  assert.equal(pp('https://acme.example/b'), '1');
  // A new month forgets the old one's pages.
  p.at('2026-12-01T09:00:00Z');
  assert.equal(pp('https://acme.example/a'), '2');
  assert.match(p.storage.get('_tally_pp'), /^202612\|,[0-9a-z]+:01,$/);
});

test('no page flag without cookies or without storage, views still sent', () => {
  for (const opts of [{ noCookies: true }, { blocked: true }, { noStorage: true },
    { full: true }]) {
    const q = page(opts).at('2026-11-10T09:00:00Z').view('https://acme.example/a');
    assert.equal(q.get('pp'), null, JSON.stringify(opts));
    assert.equal(q.get('url'), 'https://acme.example/a');
  }
});

test('past 1,000 pages in a month a new page gets no flag, known ones still do', () => {
  const storage = new Map();
  const p = page({ storage }).at('2026-11-10T09:00:00Z');
  for (let i = 0; i < 1000; i++) assert.equal(p.view('/p' + i).get('pp'), '2', 'page ' + i);
  assert.equal(p.view('/one-too-many').get('pp'), null);
  assert.ok(storage.get('_tally_pp').length < 12000, 'about 11 bytes a page');
  p.at('2026-11-11T09:00:00Z');
  assert.equal(p.view('/p0').get('pp'), '1');
  assert.equal(p.view('/one-too-many').get('pp'), null);
  // A damaged value starts the month afresh; nothing throws.
  storage.set('_tally_pp', '202611|garbage');
  assert.equal(p.view('/p1').get('pp'), '2');
  assert.equal(p.view('/p1').get('pp'), null);
});
