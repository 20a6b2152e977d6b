/* tally's dashboard: the page served at `/`. Plain browser JavaScript, no framework, no build
   step, nothing loaded from elsewhere. It reads tally's JSON API (api/v1/sites/{id}/...), with
   the site's token when there is one, and the live stream (Server-Sent Events read through
   fetch, since EventSource cannot send an Authorization header). docs/dashboard.md describes
   each panel.

   Layout: first the pure helpers (numbers, dates, SSE parsing, chart geometry), which node can
   load as a module for tests; then the page: state, API calls, sign-in, the summary and its
   chart, the live panel, and the report tables. */
'use strict';

(function () {
  // ---------------------------------------------------------------------------------------
  // Pure helpers: no DOM, no globals. Exported for node when loaded with require().

  const numberFormats = new Map();

  /** An Intl.NumberFormat, cached per locale and options. */
  function numberFormat(locale, options) {
    const key = String(locale) + JSON.stringify(options || {});
    if (!numberFormats.has(key)) numberFormats.set(key, new Intl.NumberFormat(locale, options));
    return numberFormats.get(key);
  }

  /** A count in full, grouped for the reader's locale: 1234567 → "1,234,567". */
  function formatFull(n, locale) {
    return Number.isFinite(n) ? numberFormat(locale).format(n) : '–';
  }

  const UNITS = [[1e3, 'k'], [1e6, 'M'], [1e9, 'B'], [1e12, 'T']];

  /** A count for a tile: full below 10,000 ("9,999"), then "12.3k", "123k", "1.2M". */
  function formatCompact(n, locale) {
    if (!Number.isFinite(n)) return '–';
    const a = Math.abs(n);
    if (a < 1e4) return formatFull(n, locale);
    let u = 0;
    while (u + 1 < UNITS.length && a >= UNITS[u + 1][0]) u++;
    const mantissa = (i) => {
      const x = a / UNITS[i][0];
      return x >= 100 ? Math.round(x) : Math.round(x * 10) / 10;
    };
    let m = mantissa(u);
    if (m >= 1000 && u + 1 < UNITS.length) m = mantissa(++u); // 999,960 is "1M", not "1000k"
    const text = numberFormat(locale, { maximumFractionDigits: 1 }).format(m);
    return (n < 0 ? '-' : '') + text + UNITS[u][1];
  }

  /** `part` as a whole percentage of `whole`: "40%", "<1%" for a small non-zero share. */
  function formatPercent(part, whole) {
    if (!whole) return '–';
    const p = (part / whole) * 100;
    if (p > 0 && p < 1) return '<1%';
    return Math.round(p) + '%';
  }

  const DAY_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
  const pad2 = (n) => String(n).padStart(2, '0');

  /** "YYYY-MM-DD" → a Date at UTC midnight, or null. Calendar days only: no zone involved. */
  function parseDay(s) {
    const m = DAY_RE.exec(s || '');
    if (!m) return null;
    const d = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3]));
    return d.getUTCMonth() === +m[2] - 1 && d.getUTCDate() === +m[3] ? d : null;
  }

  const dayString = (d) =>
    d.getUTCFullYear() + '-' + pad2(d.getUTCMonth() + 1) + '-' + pad2(d.getUTCDate());

  function daysInMonth(year, month) {
    return new Date(Date.UTC(year, month, 0)).getUTCDate(); // month is 1-based here
  }

  /** The day `n` days after `day` ("2026-03-01", -1 → "2026-02-28"). */
  function addDays(day, n) {
    const d = parseDay(day);
    d.setUTCDate(d.getUTCDate() + n);
    return dayString(d);
  }

  /** The same day of the month `n` months later, clamped to the month's length
      ("2026-01-31", 1 → "2026-02-28"). */
  function addMonths(day, n) {
    const d = parseDay(day);
    const total = d.getUTCFullYear() * 12 + d.getUTCMonth() + n;
    const y = Math.floor(total / 12), m = total - y * 12 + 1;
    return y + '-' + pad2(m) + '-' + pad2(Math.min(d.getUTCDate(), daysInMonth(y, m)));
  }

  const monthOf = (day) => day.slice(0, 7);

  /** The period `dir` steps (±1) from `date` for a unit ("day" or "month"), never after
      `today`; and whether there is a next one. Days compare as strings: same fixed format. */
  function stepPeriod(unit, date, dir, today) {
    const next = unit === 'month' ? addMonths(date, dir) : addDays(date, dir);
    return next > today ? today : next;
  }

  function hasNext(unit, date, today) {
    return unit === 'month' ? monthOf(date) < monthOf(today) : date < today;
  }

  /** The `date` parameter of a report: the day, or its month for per-month reports. */
  function periodParam(unit, date, dayCapable) {
    return unit === 'day' && dayCapable ? date : monthOf(date);
  }

  /** Counts per slot `from`…`to` from a sparse list keyed by `key` (0 where missing; equal
      keys, such as an hour repeated on a DST day, added up). */
  function fillSeries(list, key, from, to) {
    const out = [];
    for (let k = from; k <= to; k++) out.push({ [key]: k, views: 0, people: 0 });
    for (const item of list || []) {
      const slot = out[item[key] - from];
      if (!slot) continue;
      slot.views += item.views || 0;
      slot.people += item.people || 0;
    }
    return out;
  }

  /** The segment (of `[name, count]` pairs, in segment order) that holds the median. */
  function medianSegment(pairs) {
    const total = pairs.reduce((s, p) => s + p[1], 0);
    if (!total) return null;
    let seen = 0;
    for (const [name, count] of pairs) {
      seen += count;
      if (seen * 2 >= total) return name;
    }
    return null;
  }

  /** Server-Sent Events, parsed as the HTML standard says: lines end in CR, LF or CRLF (also
      across chunks), `:` lines are comments, a blank line ends an event, several `data:`
      lines join with "\n". `onEvent({type, data, id})`; `parser.retry` holds a `retry:`. */
  function createSseParser(onEvent) {
    let buf = '', data = [], type = '', id = '', skipLF = false, first = true;
    const parser = { retry: null, push, end };

    function line(l) {
      if (l === '') {
        if (data.length) onEvent({ type: type || 'message', data: data.join('\n'), id });
        data = [];
        type = '';
        return;
      }
      if (l[0] === ':') return; // a comment: keep-alive
      const c = l.indexOf(':');
      const field = c < 0 ? l : l.slice(0, c);
      let value = c < 0 ? '' : l.slice(c + 1);
      if (value[0] === ' ') value = value.slice(1);
      if (field === 'data') data.push(value);
      else if (field === 'event') type = value;
      else if (field === 'id' && !value.includes('\0')) id = value;
      else if (field === 'retry' && /^\d+$/.test(value)) parser.retry = +value;
    }

    function push(chunk) {
      if (first && chunk) {
        if (chunk[0] === '\uFEFF') chunk = chunk.slice(1);
        first = false;
      }
      if (skipLF && chunk) {
        if (chunk[0] === '\n') chunk = chunk.slice(1);
        skipLF = false;
      }
      buf += chunk;
      let i;
      while ((i = buf.search(/[\r\n]/)) >= 0) {
        line(buf.slice(0, i));
        if (buf[i] === '\r') {
          if (i + 1 === buf.length) skipLF = true; // its LF may come with the next chunk
          else if (buf[i + 1] === '\n') i++;
        }
        buf = buf.slice(i + 1);
      }
    }

    // The stream ended: an event without its blank line is dropped, as a browser does.
    function end() {
      buf = '';
      data = [];
      type = '';
    }

    return parser;
  }

  /** The smallest of 1, 2, 5 × 10^k at or above `v` (at least 1): the top of a chart's axis. */
  function niceCeil(v) {
    if (!(v > 1)) return 1;
    const exp = Math.pow(10, Math.floor(Math.log10(v)));
    const f = v / exp;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * exp;
  }

  const num1 = (x) => String(Math.round(x * 10) / 10);

  /** An SVG path through points: "M10 20L30 40.5". */
  function linePath(points) {
    return points.map((p, i) => (i ? 'L' : 'M') + num1(p[0]) + ' ' + num1(p[1])).join('');
  }

  /** The geometry of a bar chart (views) with an optional line (people), in a
      `width` × `height` box: bars, the line's path, the y ticks, the labelled x slots. */
  function chartModel(views, people, opts) {
    const o = Object.assign({ width: 640, height: 220, left: 44, right: 8, top: 10,
      bottom: 24, maxLabels: 8 }, opts);
    const n = views.length;
    const pw = o.width - o.left - o.right, ph = o.height - o.top - o.bottom;
    const max = niceCeil(Math.max(1, ...views, ...(people || [])));
    const slot = n ? pw / n : pw;
    const bw = Math.max(1, slot * 0.72);
    const base = o.top + ph;
    const y = (v) => base - (v / max) * ph;
    const bars = views.map((v, i) => ({
      x: o.left + i * slot + (slot - bw) / 2, y: y(v), w: bw, h: base - y(v), value: v }));
    const line = people && n ? linePath(people.map((v, i) =>
      [o.left + i * slot + slot / 2, y(v)])) : '';
    const ticks = [0, max].concat(Number.isInteger(max / 2) ? [max / 2] : [])
      .sort((a, b) => a - b).map((v) => ({ value: v, y: y(v) }));
    const every = Math.max(1, Math.ceil(n / o.maxLabels));
    const labelled = [];
    for (let i = n - 1; i >= 0; i -= every) labelled.unshift(i); // the newest always labelled
    return { max, bars, line, ticks, labelled, slot, base, o };
  }

  const helpers = { formatFull, formatCompact, formatPercent, parseDay, addDays, addMonths,
    monthOf, stepPeriod, hasNext, periodParam, daysInMonth, fillSeries, medianSegment,
    createSseParser, niceCeil, linePath, chartModel };

  if (typeof module === 'object' && module.exports) {
    module.exports = helpers;
    return;
  }

  // ---------------------------------------------------------------------------------------
  // The page.

  const $ = (sel) => document.querySelector(sel);

  // The page is served with a strict Content-Security-Policy; anything it blocks marks the
  // page, so the browser test (tests/browser.rs) fails on it.
  document.addEventListener('securitypolicyviolation', (e) => {
    document.documentElement.setAttribute('data-csp-violation',
      e.violatedDirective + ' ' + (e.blockedURI || 'inline'));
  });
  const SITE_RE = /^[a-z0-9][a-z0-9_-]{0,31}$/;
  const SUMMARY_EVERY_MS = 5000; // live updates reload the summary at most this often
  const STALL_MS = 75000; // a stream silent this long (no keep-alive either) is reopened

  /** Everything about the open site. A new object per sign-in; `ctrl` aborts its requests. */
  let S = null;

  function newSession(site, token) {
    return { site, token, info: null, zone: 'UTC', today: null, unit: 'day', date: null,
      range: 'days', summary: null, ctrl: new AbortController(), summaryDone: false,
      liveDone: false, lastSummary: 0, summaryTimer: 0, liveTimer: 0, liveAttempts: 0,
      limits: Object.create(null), reportsGen: 0 };
  }

  // The token of a site lives in localStorage (which may be unavailable: then in memory only).
  const tokenKey = (site) => 'tally.token.' + site;
  function storeGet(k) { try { return localStorage.getItem(k); } catch (e) { return null; } }
  function storeSet(k, v) { try { localStorage.setItem(k, v); } catch (e) { /* memory only */ } }
  function storeDel(k) { try { localStorage.removeItem(k); } catch (e) { /* nothing kept */ } }

  /** A DOM element: h('td', {class: 'n'}, 'text', node, [more]). Text is always text. */
  function h(tag, attrs, ...kids) {
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

  function setState(state) { document.body.dataset.state = state; }

  function showMessage(text) {
    const m = $('#message');
    m.textContent = text || '';
    m.hidden = !text;
  }

  // ---- API ------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message) { super(message); this.status = status; this.code = code; }
  }

  const siteUrl = (path) =>
    'api/v1/sites/' + encodeURIComponent(S.site) + (path ? '/' + path : '');

  function headers(accept) {
    const hd = { Accept: accept };
    if (S.token) hd.Authorization = 'Bearer ' + S.token;
    return hd;
  }

  /** The `{"error": {"code", "message"}}` of a failed answer, as an ApiError. */
  async function errorOf(res) {
    let code = 'http_' + res.status, message = res.statusText || 'HTTP ' + res.status;
    try {
      const body = await res.json();
      if (body && body.error && body.error.code) code = body.error.code;
      if (body && body.error && body.error.message) message = body.error.message;
    } catch (e) { /* not JSON: keep the status */ }
    return new ApiError(res.status, code, message);
  }

  async function request(path, accept) {
    let res;
    try {
      res = await fetch(siteUrl(path), { headers: headers(accept), signal: S.ctrl.signal,
        cache: 'no-store' });
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new ApiError(0, 'network', 'Cannot reach tally (' + e.message + ').');
    }
    if (!res.ok) throw await errorOf(res);
    return res;
  }

  const getJson = async (path) => (await request(path, 'application/json')).json();

  /** A failure that concerns the whole site: 401 asks for a token; with `siteLevel` (the
      site's own and its summary's answers), 404 means there is no such site. Returns false for
      errors a panel shows itself. */
  function siteFailure(err, siteLevel) {
    if (err.name === 'AbortError') return true;
    if (err.status === 401) {
      signIn(S.site, S.token ? 'This token was not accepted: ' + err.message
        : 'This site is not public: sign in with its token.');
      return true;
    }
    if (err.status === 404 && siteLevel) {
      signIn(S.site, 'No such site for this token (' + err.message + ').');
      return true;
    }
    return false;
  }

  // ---- Sign-in ---------------------------------------------------------------------------

  /** Shows the sign-in form (site id prefilled) and stops whatever was running. */
  function signIn(site, message) {
    if (S) { S.ctrl.abort(); clearTimeout(S.summaryTimer); clearTimeout(S.liveTimer); }
    S = null;
    $('#dash').hidden = true;
    $('#sign-out').hidden = true;
    $('#site-meta').hidden = true;
    $('#site-name').textContent = 'tally';
    document.title = 'tally';
    $('#signin').hidden = false;
    showMessage(message);
    $('#signin-site').value = site || '';
    $('#signin-token').value = '';
    (site ? $('#signin-token') : $('#signin-site')).focus();
    setState('signin');
  }

  function onSignInSubmit(e) {
    e.preventDefault();
    const site = $('#signin-site').value.trim().toLowerCase();
    const token = $('#signin-token').value.trim();
    if (!SITE_RE.test(site)) {
      showMessage('A site id is 1–32 lower-case letters, digits, "-" or "_", e.g. acme.');
      $('#signin-site').focus();
      return;
    }
    // The form says it all: a token is kept for the site, an empty one tries it as public.
    if (token) storeSet(tokenKey(site), token); else storeDel(tokenKey(site));
    history.replaceState(null, '', '?site=' + encodeURIComponent(site));
    open(site, token || null, {});
  }

  function signOut() {
    const site = S && S.site;
    if (site) storeDel(tokenKey(site));
    signIn(site, 'Signed out. The token is no longer kept in this browser.');
  }

  // ---- Opening a site --------------------------------------------------------------------

  async function open(site, token, params) {
    if (S) S.ctrl.abort();
    S = newSession(site, token || null);
    const me = S;
    setState('loading');
    showMessage('');
    let info;
    try {
      info = await getJson('');
    } catch (err) {
      if (me !== S || siteFailure(err, true)) return;
      showMessage(err.message);
      setState('error');
      return;
    }
    if (me !== S) return;
    S.info = info;
    S.zone = info.zone || 'UTC';
    S.today = info.today;
    S.unit = params.unit === 'month' ? 'month' : 'day';
    S.date = parseDay(params.date) && params.date <= S.today ? params.date : S.today;

    $('#signin').hidden = true;
    $('#site-name').textContent = info.name || info.id;
    document.title = (info.name || info.id) + ' · tally';
    $('#signed-in-site').textContent = info.id;
    $('#site-zone').textContent = S.zone;
    $('#site-public').hidden = !info.public;
    $('#site-meta').hidden = false;
    $('#sign-out').hidden = false;
    $('#dash').hidden = false;
    for (const id of ['today', 'yesterday', 'days30', 'alltime']) {
      setTile(id + '-views', null);
      setTile(id + '-people', null);
    }
    $('#traffic-chart').replaceChildren();
    $('#live-pages').replaceChildren();
    buildReportCards();
    syncPeriodControls();
    loadSummary();
    loadReports();
    connectLive();
  }

  function maybeReady() {
    if (S && S.summaryDone && S.liveDone) setState('ready');
  }

  // ---- Summary: tiles and the traffic chart ----------------------------------------------

  function setTile(id, n) {
    const el = document.getElementById(id);
    el.textContent = n == null ? '–' : formatCompact(n);
    el.title = n == null ? '' : formatFull(n);
    if (n == null) delete el.dataset.value; else el.dataset.value = n;
  }

  async function loadSummary() {
    const me = S;
    clearTimeout(S.summaryTimer);
    S.summaryTimer = 0;
    S.lastSummary = Date.now();
    let sum;
    try {
      sum = await getJson('summary');
    } catch (err) {
      if (me === S && !siteFailure(err, true)) showMessage('Summary: ' + err.message);
      return;
    }
    if (me !== S) return;
    S.summary = sum;
    if (sum.today && sum.today.date && sum.today.date !== S.today) {
      const followToday = S.date === S.today; // past midnight: "today" moves on
      S.today = sum.today.date;
      if (followToday) { S.date = S.today; syncPeriodControls(); loadReports(); }
    }
    const add = (list, k) => (list || []).reduce((s, x) => s + (x[k] || 0), 0);
    setTile('today-views', sum.today.views);
    setTile('today-people', sum.today.people);
    setTile('yesterday-views', sum.yesterday.views);
    setTile('yesterday-people', sum.yesterday.people);
    setTile('days30-views', add(sum.days, 'views'));
    setTile('days30-people', add(sum.days, 'people'));
    setTile('alltime-views', sum.all_time.views);
    setTile('alltime-people', sum.all_time.people);
    drawTraffic();
    S.summaryDone = true;
    maybeReady();
  }

  /** Live updates ask for the summary again, at most every SUMMARY_EVERY_MS. */
  function scheduleSummary() {
    if (!S || S.summaryTimer) return;
    const wait = Math.max(0, S.lastSummary + SUMMARY_EVERY_MS - Date.now());
    S.summaryTimer = setTimeout(loadSummary, wait);
  }

  const dateFormats = new Map();
  /** A date label; date-only strings are read as UTC so that no zone shifts the day. */
  function dateLabel(iso, options) {
    const key = JSON.stringify(options);
    if (!dateFormats.has(key)) {
      dateFormats.set(key, new Intl.DateTimeFormat(undefined, Object.assign({ timeZone: 'UTC' },
        options)));
    }
    const [y, m = 1, d = 1, hh = 0] = iso.split(/[-T:]/).map(Number);
    return dateFormats.get(key).format(new Date(Date.UTC(y, m - 1, d, hh)));
  }

  const SHORT_DAY = { day: 'numeric', month: 'short' };
  const LONG_DAY = { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' };
  const HOUR = { hour: '2-digit', minute: '2-digit' };
  const LONG_HOUR = { weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit',
    minute: '2-digit' };
  const FULL_DAY = { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' };
  const DAY_OF_MONTH = { weekday: 'short', day: 'numeric', month: 'short' };
  const SHORT_MONTH = { month: 'short' };
  const LONG_MONTH = { month: 'long', year: 'numeric' };

  /** The summary's series for the chosen range: items and how to label them. */
  function trafficSeries() {
    const s = S.summary;
    if (S.range === 'hours') {
      return { items: s.hours, key: 'hour', head: 'Hour', what: 'last 24 hours by hour',
        short: (k) => dateLabel(k, HOUR), long: (k) => dateLabel(k, LONG_HOUR) };
    }
    if (S.range === 'months') {
      return { items: s.months, key: 'month', head: 'Month', what: 'last 12 months by month',
        short: (k) => dateLabel(k, SHORT_MONTH), long: (k) => dateLabel(k, LONG_MONTH) };
    }
    return { items: s.days, key: 'date', head: 'Day', what: 'last 30 days by day',
      short: (k) => dateLabel(k, SHORT_DAY), long: (k) => dateLabel(k, LONG_DAY) };
  }

  function drawTraffic() {
    if (!S.summary) return;
    const t = trafficSeries();
    const items = t.items || [];
    const box = $('#traffic-chart');
    box.dataset.range = S.range;
    drawChart(box, {
      views: items.map((x) => x.views), people: items.map((x) => x.people),
      short: items.map((x) => t.short(x[t.key])), long: items.map((x) => t.long(x[t.key])),
      label: 'Views and people, ' + t.what,
    });
    $('#traffic-table').replaceChildren(table(null, [t.head, 'Views', 'People'],
      items.slice().reverse().map((x) => ({ cells: [t.long(x[t.key]), x.views, x.people] }))));
    const empty = S.summary.all_time && S.summary.all_time.views === 0;
    const hint = $('#traffic-empty');
    if (hint) hint.remove();
    if (empty) box.before(h('p', { id: 'traffic-empty', class: 'empty' }, snippetHint()));
  }

  /** The site's snippet, as `tally site show` prints it, for this tally's address. */
  function snippetTag() {
    const base = new URL('.', location.href).href;
    return h('code', { class: 'snippet' }, '<script async src="' + base + 't.js" data-site="' +
      S.site + '" data-tz="' + S.zone + '"></script>');
  }

  /** "No views yet — add the snippet: <script …>". */
  function snippetHint() {
    return ['No views yet — add the snippet to your pages: ', snippetTag()];
  }

  const SVG = 'http://www.w3.org/2000/svg';
  function s(tag, attrs, ...kids) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
    for (const kid of kids) el.append(kid);
    return el;
  }

  // Charts are drawn at their box's own width, so that their text keeps its size on a phone,
  // and drawn again when that width changes (a box not yet in the page is drawn at 640).
  const chartBoxes = typeof ResizeObserver === 'function'
    ? new ResizeObserver((entries) => entries.forEach((e) => renderChart(e.target))) : null;

  function drawChart(box, spec) {
    box.tallyChart = spec;
    box.tallyWidth = 0;
    renderChart(box);
    if (chartBoxes) chartBoxes.observe(box);
  }

  function renderChart(box) {
    const width = Math.round(box.clientWidth) || 640;
    if (!box.tallyChart || box.tallyWidth === width) return;
    box.tallyWidth = width;
    box.replaceChildren(chartSvg(box.tallyChart, width));
  }

  /** A bar chart of views with a line of people. Each bar's <title> says its numbers; the
      data is also in a table next to it for screen readers and keyboards. */
  function chartSvg(c, width) {
    const m = chartModel(c.views, c.people, Object.assign({ width,
      maxLabels: Math.max(2, Math.floor(width / 72)) }, c.opts));
    const { height, left } = m.o;
    const svg = s('svg', { viewBox: '0 0 ' + width + ' ' + height, role: 'img',
      'aria-label': c.label, preserveAspectRatio: 'xMidYMid meet' });
    for (const t of m.ticks) {
      svg.append(s('line', { class: 'gridline', x1: left, x2: width - m.o.right, y1: t.y, y2: t.y }));
      svg.append(s('text', { class: 'tick', x: left - 6, y: t.y + 4, 'text-anchor': 'end' },
        formatCompact(t.value)));
    }
    m.bars.forEach((b, i) => {
      const what = c.long[i] + ': ' + formatFull(b.value) + (b.value === 1 ? ' view' : ' views') +
        (c.people ? ', ' + formatFull(c.people[i]) + (c.people[i] === 1 ? ' person' : ' people')
          : '');
      // A transparent full-height rect makes small bars easy to point at.
      const g = s('g', { class: 'bar' }, s('title', {}, what),
        s('rect', { class: 'hit', x: left + i * m.slot, y: m.o.top, width: m.slot,
          height: m.base - m.o.top }),
        s('rect', { class: 'views', x: b.x, y: b.y, width: b.w, height: Math.max(0, b.h) }));
      svg.append(g);
    });
    if (m.line) svg.append(s('path', { class: 'people', d: m.line }));
    for (const i of m.labelled) {
      svg.append(s('text', { class: 'tick', x: left + (i + 0.5) * m.slot, y: height - 6,
        'text-anchor': 'middle' }, c.short[i]));
    }
    return svg;
  }

  // ---- Live panel ------------------------------------------------------------------------

  /** Reads the live stream; on its end or failure reconnects after 1, 2, 4 … 30 s. */
  async function connectLive() {
    const me = S;
    const status = $('#live-status');
    const setStatus = (st, text) => { status.dataset.status = st; status.textContent = text; };
    setStatus('connecting', 'connecting…');
    const stall = new AbortController();
    const abort = () => stall.abort();
    me.ctrl.signal.addEventListener('abort', abort);
    let watchdog = setTimeout(abort, STALL_MS);
    let parser, failure = 'the stream ended';
    try {
      const res = await fetch(siteUrl('live'), { headers: headers('text/event-stream'),
        signal: stall.signal, cache: 'no-store' });
      if (!res.ok) throw await errorOf(res);
      setStatus('open', 'live');
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      parser = createSseParser((ev) => onLiveEvent(me, ev));
      for (;;) {
        const { done, value } = await reader.read();
        if (done || me !== S) break;
        clearTimeout(watchdog);
        watchdog = setTimeout(abort, STALL_MS);
        parser.push(decoder.decode(value, { stream: true }));
      }
      parser.end();
    } catch (err) {
      if (me !== S) return;
      if (err.name !== 'AbortError' && siteFailure(err)) return;
      if (err.status === 404) { setStatus('closed', 'no live stream: ' + err.message); return; }
      failure = err.name === 'AbortError' ? 'no data for ' + STALL_MS / 1000 + ' s' : err.message;
    } finally {
      clearTimeout(watchdog);
      me.ctrl.signal.removeEventListener('abort', abort);
    }
    if (me !== S) return;
    const base = (parser && parser.retry) || 1000;
    const jitter = 0.8 + Math.random() * 0.4;
    const wait = Math.min(30000, base * Math.pow(2, me.liveAttempts++)) * jitter;
    setStatus('closed', failure + '; reconnecting in ' + Math.round(wait / 1000) + ' s…');
    me.liveTimer = setTimeout(() => { if (me === S) connectLive(); }, wait);
  }

  function onLiveEvent(me, ev) {
    if (me !== S || (ev.type !== 'snapshot' && ev.type !== 'update')) return;
    let d;
    try { d = JSON.parse(ev.data); } catch (e) { return; }
    me.liveAttempts = 0; // the stream works: the next reconnect starts from 1 s again
    renderLive(d);
    if (ev.type === 'update') scheduleSummary();
    S.liveDone = true;
    maybeReady();
  }

  function renderLive(d) {
    const mins = d.views_last_minutes || [];
    const pages = d.pages_now || [];
    const win = d.window_minutes || 5;
    const hm = (m) => String(m.minute).slice(11, 16);
    drawChart($('#live-chart'), {
      views: mins.map((m) => m.views), people: null,
      short: mins.map(hm), long: mins.map(hm),
      label: 'Views per minute, last ' + mins.length + ' minutes',
      opts: { height: 120, left: 32, bottom: 20 } });
    const total = pages.reduce((sum, p) => sum + (p.views || 0), 0);
    const summary = $('#live-summary');
    summary.dataset.value = total;
    summary.textContent = total
      ? formatFull(total) + (total === 1 ? ' view' : ' views') + ' in the last ' + win +
        ' minutes, on ' + pages.length + (pages.length === 1 ? ' page.' : ' pages.')
      : 'Nobody in the last ' + win + ' minutes.';
    updateLivePages(pages);
    let at = d.at || '';
    try {
      at = new Intl.DateTimeFormat(undefined, { timeZone: S.zone, hour: '2-digit',
        minute: '2-digit', second: '2-digit' }).format(new Date(d.at));
    } catch (e) { /* unknown zone or time: show it as sent */ }
    const status = $('#live-status');
    status.dataset.status = 'open';
    status.textContent = 'live · ' + at;
  }

  /** Updates the list in place (same page, same item), so that aria-live announces what
      changed rather than the whole list. */
  function updateLivePages(pages) {
    const ol = $('#live-pages');
    const old = new Map();
    for (const li of ol.children) if (li.dataset.page != null) old.set(li.dataset.page, li);
    const items = pages.map((p) => {
      let li = old.get(p.page);
      if (!li) {
        li = h('li', { 'data-page': p.page }, h('span', { class: 'lp-title' }),
          h('code', { class: 'lp-path' }, p.page), h('span', { class: 'n' }));
      }
      const title = li.querySelector('.lp-title');
      if (title.textContent !== (p.title || '')) title.textContent = p.title || '';
      const n = li.querySelector('.n');
      if (li.dataset.views !== String(p.views)) {
        li.dataset.views = p.views;
        n.textContent = formatFull(p.views);
      }
      return li;
    });
    const kids = ol.children;
    if (items.length !== kids.length || items.some((li, i) => kids[i] !== li)) {
      ol.replaceChildren(...items);
    }
  }

  // ---- Period navigation -----------------------------------------------------------------

  function syncPeriodControls() {
    const day = S.unit === 'day';
    $('#unit-day').setAttribute('aria-pressed', day);
    $('#unit-month').setAttribute('aria-pressed', !day);
    const label = $('#period-label');
    label.dataset.unit = S.unit;
    label.dataset.date = day ? S.date : monthOf(S.date);
    label.textContent = day ? dateLabel(S.date, FULL_DAY) : dateLabel(monthOf(S.date), LONG_MONTH);
    $('#period-prev').setAttribute('aria-label', day ? 'Previous day' : 'Previous month');
    $('#period-next').setAttribute('aria-label', day ? 'Next day' : 'Next month');
    $('#period-next').disabled = !hasNext(S.unit, S.date, S.today);
    $('#period-today').disabled = day ? S.date === S.today : monthOf(S.date) === monthOf(S.today);
    const input = $('#period-date');
    input.value = S.date;
    input.max = S.today;
    $('#reports-note').textContent = day ? 'Search, campaigns, technology, sizes, countries ' +
      'and retention are kept per month: they show ' + dateLabel(monthOf(S.date), LONG_MONTH) +
      '.' : '';
    // The period is part of the address, so that a reload or a shared link shows it again.
    const q = new URLSearchParams(location.search);
    q.set('site', S.site);
    if (S.date === S.today) q.delete('date'); else q.set('date', S.date);
    if (day) q.delete('unit'); else q.set('unit', 'month');
    history.replaceState(null, '', '?' + q.toString());
  }

  function goTo(unit, date) {
    if (!S || !S.today) return;
    const changed = unit !== S.unit || date !== S.date;
    S.unit = unit;
    S.date = date > S.today ? S.today : date;
    syncPeriodControls();
    if (changed) loadReports();
  }

  function onKey(e) {
    if (!S || !S.today || $('#dash').hidden || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.target.closest('input, textarea, select, [contenteditable]')) return;
    const act = { p: () => goTo(S.unit, stepPeriod(S.unit, S.date, -1, S.today)),
      n: () => goTo(S.unit, stepPeriod(S.unit, S.date, 1, S.today)),
      t: () => goTo(S.unit, S.today), d: () => goTo('day', S.date),
      m: () => goTo('month', S.date) }[e.key];
    if (act) { e.preventDefault(); act(); }
  }

  // ---- Report tables ---------------------------------------------------------------------

  /** The reports, in page order. `day`: also kept per day; `limit`: ranked lists, with
      "show more". */
  const REPORTS = [
    { name: 'traffic', title: 'Views and people', day: true, render: renderTraffic },
    { name: 'content', title: 'Pages', day: true, limit: 20, render: renderContent },
    { name: 'referrers', title: 'Referrers', day: true, limit: 20, render: renderReferrers },
    { name: 'events', title: 'Events', day: true, render: renderEvents },
    { name: 'engagement', title: 'Visits', day: true, render: renderEngagement },
    { name: 'terms', title: 'Search', day: false, limit: 20, render: renderTerms },
    { name: 'campaigns', title: 'Campaigns', day: false, limit: 20, render: renderCampaigns },
    { name: 'technology', title: 'Technology', day: false, render: renderTechnology },
    { name: 'resolutions', title: 'Screen and window sizes', day: false,
      render: renderResolutions },
    { name: 'locations', title: 'Countries', day: false, render: renderLocations },
    { name: 'retention', title: 'Retention', day: false, wide: true, render: renderRetention },
  ];

  function buildReportCards() {
    $('#report-grid').replaceChildren(...REPORTS.map((r) => {
      S.limits[r.name] = r.limit || null;
      return h('section', { class: 'panel report' + (r.wide ? ' wide' : ''),
        id: 'report-' + r.name, 'data-report': r.name, 'data-state': 'loading',
        'aria-labelledby': 'report-' + r.name + '-h' },
      h('div', { class: 'panel-head' },
        h('h3', { id: 'report-' + r.name + '-h' }, r.title),
        h('span', { class: 'period-tag muted' }),
        h('a', { class: 'csv', href: '#', 'aria-label': 'Download ' + r.title + ' as CSV',
          onclick: (e) => downloadCsv(e, r) }, 'CSV')),
      h('div', { class: 'body', 'aria-busy': 'true' }, h('p', { class: 'muted' }, 'Loading…')),
      h('button', { type: 'button', class: 'more', hidden: true,
        onclick: () => showMore(r) }, 'Show more'));
    }));
  }

  function showMore(r) {
    S.limits[r.name] = Math.min(1000, S.limits[r.name] * 5);
    loadReport(r);
  }

  function reportPath(r, format) {
    const q = new URLSearchParams({ date: periodParam(S.unit, S.date, r.day) });
    if (S.limits[r.name]) q.set('limit', S.limits[r.name]);
    if (format) q.set('format', format);
    return 'reports/' + r.name + '?' + q.toString();
  }

  function loadReports() {
    S.reportsGen++;
    for (const r of REPORTS) loadReport(r);
  }

  async function loadReport(r) {
    const me = S, gen = S.reportsGen;
    const card = document.getElementById('report-' + r.name);
    const body = card.querySelector('.body');
    const period = periodParam(S.unit, S.date, r.day);
    const csv = card.querySelector('.csv');
    csv.href = siteUrl(reportPath(r, 'csv'));
    csv.setAttribute('download', 'tally-' + S.site + '-' + r.name + '-' + period + '.csv');
    card.dataset.state = 'loading';
    body.setAttribute('aria-busy', 'true');
    let answer;
    try {
      answer = await getJson(reportPath(r));
    } catch (err) {
      if (me !== S || gen !== S.reportsGen || siteFailure(err)) return;
      card.dataset.state = 'error';
      body.removeAttribute('aria-busy');
      body.replaceChildren(h('p', { class: 'error' }, err.message));
      return;
    }
    if (me !== S || gen !== S.reportsGen) return; // the period changed meanwhile
    const ctx = { unit: r.day ? S.unit : 'month', period: answer.period || period };
    card.dataset.period = ctx.period;
    card.querySelector('.period-tag').textContent = ctx.period.length === 7
      ? dateLabel(ctx.period, LONG_MONTH) : dateLabel(ctx.period, LONG_DAY);
    const nodes = r.render(answer.data || {}, ctx);
    const empty = nodes.empty;
    card.dataset.state = empty ? 'empty' : 'loaded';
    body.replaceChildren(...(empty ? [h('p', { class: 'empty' }, empty)] : nodes));
    body.removeAttribute('aria-busy');
    const more = card.querySelector('.more');
    more.hidden = !(S.limits[r.name] && nodes.full && S.limits[r.name] < 1000);
  }

  /** Fetches the report as CSV with the token and saves it (a link cannot send the header). */
  async function downloadCsv(e, r) {
    e.preventDefault();
    const link = e.currentTarget;
    try {
      const blob = await (await request(reportPath(r, 'csv'), 'text/csv')).blob();
      const url = URL.createObjectURL(blob);
      const a = h('a', { href: url, download: link.getAttribute('download'), hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (err) {
      if (!siteFailure(err)) showMessage('CSV of ' + r.title + ': ' + err.message);
    }
  }

  /** A table: columns (strings; all but the first are numbers, right-aligned unless marked
      {label, text: true}), rows `{cells, cls, key, views, share}`; the first cell of a row is
      its header. Numbers are written in full. */
  function table(caption, cols, rows, foot) {
    cols = cols.map((c) => (typeof c === 'string' ? { label: c } : c));
    const cell = (v, i, tag) => {
      const numeric = i > 0 && !cols[i].text;
      const attrs = { class: numeric ? 'n' : null, scope: tag === 'th' ? 'row' : null };
      return h(tag, attrs, typeof v === 'number' ? formatFull(v) : v);
    };
    const tr = (row) => h('tr', { class: row.cls, 'data-key': row.key, 'data-views': row.views,
      style: row.share != null ? '--share:' + row.share + '%' : null },
    row.cells.map((v, i) => cell(v, i, i ? 'td' : 'th')));
    return h('table', {},
      caption ? h('caption', {}, caption) : null,
      h('thead', {}, h('tr', {}, cols.map((c, i) =>
        h('th', { scope: 'col', class: i && !c.text ? 'n' : null }, c.label)))),
      h('tbody', {}, rows.map(tr)),
      foot ? h('tfoot', {}, tr(foot)) : null);
  }

  const OTHER = 'other (not itemised)';
  const OTHER_KEYS = new Set(['(other)', 'other']);

  /** A name cell: "(other)" and "unknown" shown as such; a cut name ends in "…". */
  function nameCell(name, pretty) {
    if (OTHER_KEYS.has(name)) return h('span', { class: 'other-name' }, OTHER);
    if (name === 'unknown') return h('span', { class: 'muted' }, 'unknown');
    return pretty ? pretty(name) : name;
  }

  /** A ranked list ({entries, other}) as a table; rows carry data-key and data-views. */
  function rankedTable(caption, label, ranked, opts) {
    const o = opts || {};
    const entries = (ranked && ranked.entries) || [];
    const other = (ranked && ranked.other) || 0;
    const top = Math.max(1, ...entries.map((e) => e.views), other);
    const rows = entries.map((e) => ({
      key: e.key, views: e.views, share: Math.round((e.views / top) * 100),
      cells: [[o.cell ? o.cell(e) : nameCell(e.key), e.truncated
        ? h('span', { class: 'cut', title: 'cut: longer than tally keeps' }, '…') : null],
      e.views] }));
    if (other) {
      rows.push({ key: '(other)', views: other, cls: 'other', share: Math.round(other / top * 100),
        cells: [h('span', { title: 'views of names that came after the month was full' }, OTHER),
          other] });
    }
    if (!rows.length) return null;
    return table(caption, [label, 'Views'], rows);
  }

  /** Name–count pairs ([["chrome", 5]]) as a table with each one's share. */
  function pairsTable(caption, label, pairs, pretty) {
    const total = (pairs || []).reduce((sum, p) => sum + p[1], 0);
    if (!total) return null;
    const top = Math.max(...pairs.map((p) => p[1]));
    return table(caption, [label, 'Views', 'Share'], pairs.map(([name, n]) => ({
      key: name, views: n, cls: OTHER_KEYS.has(name) ? 'other' : null,
      share: Math.round((n / top) * 100),
      cells: [nameCell(name, pretty), n, formatPercent(n, total)] })));
  }

  /** Rendered nodes, or `.empty` (what to say and do instead) when none has data. */
  function result(nodes, empty, full) {
    const list = nodes.filter(Boolean);
    if (!list.length) list.empty = empty;
    list.full = !!full;
    return list;
  }

  const isFull = (ranked, limit) => !!ranked && !!limit && ranked.entries.length >= limit;

  function renderTraffic(d, ctx) {
    const total = d.total || { views: 0, people: 0 };
    if (!total.views) {
      return result([], ['No views on this ' + ctx.unit + '. Views show up here within a ' +
        'second of arriving; if none ever do, add the snippet to the site’s pages: ',
      snippetTag()]);
    }
    let series, head, short, long;
    if (ctx.unit === 'month') {
      const [y, m] = ctx.period.split('-').map(Number);
      series = fillSeries(d.days, 'day', 1, daysInMonth(y, m));
      head = 'Day';
      long = (x) => dateLabel(ctx.period + '-' + pad2(x.day), DAY_OF_MONTH);
      short = (x) => String(x.day);
    } else {
      series = fillSeries(d.hours, 'hour', 0, 23);
      head = 'Hour';
      long = (x) => pad2(x.hour) + ':00';
      short = long;
    }
    const chart = h('div', { class: 'chart' });
    drawChart(chart, {
      views: series.map((x) => x.views), people: series.map((x) => x.people),
      short: series.map(short), long: series.map(long),
      label: 'Views and people by ' + head.toLowerCase() });
    return result([chart, table(null, [head, 'Views', 'People'],
      series.filter((x) => x.views || x.people).map((x) => ({ key: String(x[head === 'Day'
        ? 'day' : 'hour']), views: x.views, cells: [long(x), x.views, x.people] })),
      { cls: 'total', cells: ['Total', total.views, total.people] })]);
  }

  function renderContent(d) {
    const t = rankedTable(null, 'Page', d.pages, {
      cell: (e) => (e.title
        ? [h('span', { class: 'page-title' }, e.title), h('code', { class: 'path' }, e.key)]
        : h('code', { class: 'path' }, e.key)) });
    return result([t], ['No page views in this period. If the site has none at all yet, add ' +
      'the snippet: ', snippetTag()], isFull(d.pages, S.limits.content));
  }

  function renderReferrers(d) {
    const link = (e) => (/^https?:\/\//i.test(e.key) && !e.truncated
      ? h('a', { href: e.key, rel: 'noopener noreferrer nofollow', target: '_blank' }, e.key)
      : e.key);
    return result([rankedTable('Sites', 'Host', d.hosts),
      rankedTable('Links', 'Address', d.links, { cell: (e) => nameCell(e.key, () => link(e)) })],
    'No referred views: visitors came directly, or from the site’s own pages.',
    isFull(d.hosts, S.limits.referrers) || isFull(d.links, S.limits.referrers));
  }

  function renderTerms(d) {
    return result([pairsTable('Search engines', 'Engine', d.engines, capitalise),
      rankedTable('Search terms', 'Term', d.terms)],
    'No visits from search engines this month.', isFull(d.terms, S.limits.terms));
  }

  function renderCampaigns(d) {
    const l = S.limits.campaigns;
    return result([rankedTable('Sources', 'utm_source', d.sources),
      rankedTable('Mediums', 'utm_medium', d.mediums),
      rankedTable('Campaigns', 'utm_campaign', d.campaigns)],
    'No campaign views this month. Tag the links you share with utm_source, utm_medium and ' +
      'utm_campaign, e.g. ?utm_source=newsletter&utm_medium=email&utm_campaign=launch.',
    isFull(d.sources, l) || isFull(d.mediums, l) || isFull(d.campaigns, l));
  }

  function renderEvents(d) {
    const events = d.events || [];
    const t = events.length ? table(null, ['Event', 'Count', 'Total'], events.map((e) => ({
      key: e.name, views: e.count, cls: OTHER_KEYS.has(e.name) ? 'other' : null,
      cells: [nameCell(e.name), e.count, e.total] }))) : null;
    return result([t], ['No custom events. Send one from a page with ',
      h('code', {}, "tally('event', 'signup')"), ', or from a server with POST /e.']);
  }

  const PAGE_SEGMENTS = ['1', '2', '3', '4', '5-9', '10-19', '20-49', '50+'];
  const DURATION_SEGMENTS = ['0-3s', '3-10s', '10-30s', '30-60s', '1-3m', '3-10m', '10-30m',
    '30m+'];

  /** Adds up segment pairs over days, in segment order. */
  function sumSegments(days, field, order) {
    const m = new Map(order.map((k) => [k, 0]));
    for (const day of days) for (const [k, n] of day[field] || []) m.set(k, (m.get(k) || 0) + n);
    return [...m];
  }

  function renderEngagement(d, ctx) {
    const entries = Object.entries(d.days || {}).sort((a, b) => a[0] - b[0]);
    const days = entries.map((e) => e[1]);
    const add = (k) => days.reduce((sum, x) => sum + (x[k] || 0), 0);
    const visits = add('visits');
    if (!visits) {
      return result([], 'No visits recorded. The snippet reports visits when its cookie works; ' +
        'views sent as a bare pixel have none.');
    }
    const bounces = add('bounces');
    const pages = sumSegments(days, 'pages', PAGE_SEGMENTS);
    const durations = sumSegments(days, 'durations', DURATION_SEGMENTS);
    const mp = medianSegment(pages), md = medianSegment(durations);
    const fact = (k, v, id) => [h('dt', {}, k), h('dd', { 'data-fact': id }, v)];
    const facts = h('dl', { class: 'facts' },
      fact('Visits', formatFull(visits), 'visits'),
      fact('Bounce rate', formatPercent(bounces, visits), 'bounce-rate'),
      fact('Median pages per visit', mp || '–', 'median-pages'),
      fact('Median visit length', md || '–', 'median-duration'),
      fact('New people', formatFull(add('new')), 'new'),
      fact('Returning people', formatFull(add('returning')), 'returning'));
    const segTable = (caption, label, pairs) => table(caption, [label, 'Visits', 'Share'],
      pairs.map(([k, n]) => ({ key: k, views: n, cells: [k, n, formatPercent(n, visits)] })));
    const perDay = ctx.unit === 'month' ? table('By day', ['Day', 'Visits', 'Bounce rate', 'New',
      'Returning'], entries.map(([day, x]) => ({ key: day, views: x.visits,
      cells: [dateLabel(ctx.period + '-' + pad2(day), DAY_OF_MONTH), x.visits,
        formatPercent(x.bounces, x.visits), x.new, x.returning] }))) : null;
    return result([facts, segTable('Pages per visit', 'Pages', pages),
      segTable('Visit length', 'Length', durations), perDay]);
  }

  function capitalise(name) {
    return name ? name[0].toUpperCase() + name.slice(1) : name;
  }

  function renderTechnology(d) {
    const browsers = d.browsers || [];
    const total = browsers.reduce((sum, b) => sum + b.views, 0);
    const bt = total ? table('Browsers', ['Browser', { label: 'Versions', text: true }, 'Views',
      'Share'], browsers.map((b) => ({ key: b.name, views: b.views,
      cells: [nameCell(b.name, capitalise), (b.versions || []).slice(0, 4)
        .map(([v, n]) => v.replace(/-/g, '.') + ' (' + formatFull(n) + ')').join(', ') +
        ((b.versions || []).length > 4 ? ', …' : ''), b.views, formatPercent(b.views, total)] })))
      : null;
    return result([bt, pairsTable('Platforms', 'Platform', d.platforms, capitalise),
      pairsTable('Devices', 'Device', d.devices, capitalise)], 'No views this month.');
  }

  const WIDTHS = [320, 480, 800, 1024, 1280, 1440, 1600, 2000];
  const HEIGHTS = [480, 600, 768, 900, 1024];

  /** Sorts range pairs by range ("unknown" last) and names them "1280–1439 px". */
  function rangesTable(caption, pairs, bounds) {
    const low = (k) => (k === 'unknown' ? Infinity : parseInt(k, 10));
    const sorted = (pairs || []).slice().sort((a, b) => low(a[0]) - low(b[0]));
    return pairsTable(caption, 'Pixels', sorted, (k) => {
      const i = bounds.indexOf(parseInt(k, 10));
      return i < 0 || i === bounds.length - 1 ? k.replace(/\+?$/, '+') + ' px'
        : k + '–' + (bounds[i + 1] - 1) + ' px';
    });
  }

  function renderResolutions(d) {
    return result([rangesTable('Screen width', d.screen_widths, WIDTHS),
      rangesTable('Browser width', d.browser_widths, WIDTHS),
      rangesTable('Browser height', d.browser_heights, HEIGHTS)], 'No views this month.');
  }

  let regionNames = null;
  function countryName(code) {
    try {
      regionNames = regionNames || new Intl.DisplayNames(undefined, { type: 'region' });
      const name = regionNames.of(code);
      return name && name !== code ? [name, ' ', h('span', { class: 'muted' }, code)] : code;
    } catch (e) {
      return code; // no Intl.DisplayNames, or not a region code
    }
  }

  function renderLocations(d) {
    return result([pairsTable(null, 'Country', d.countries, countryName)],
      'No countries this month. tally records countries only when it runs with a country ' +
      'database (tally serve --geoip-db FILE).');
  }

  /** A cohort table: each cell the share of the cohort seen again k weeks (months) later,
      shaded by that share. */
  function cohortTable(caption, unit, cohorts) {
    const cols = ['Cohort', 'People'];
    for (let k = 1; k <= 12; k++) cols.push({ label: '+' + k, text: false });
    return table(caption, cols, cohorts.map((c) => ({
      key: c.cohort, views: c.size,
      cells: [c.cohort, c.size].concat((c.returned || []).map((n, i) => {
        const p = c.size ? n / c.size : 0;
        return h('span', { class: 'heat', 'data-returned': n,
          style: '--p:' + (n ? (0.1 + 0.6 * Math.min(1, p)).toFixed(2) : 0),
          title: formatFull(n) + ' of ' + formatFull(c.size) + ' back ' + (i + 1) + ' ' + unit +
            (i ? 's' : '') + ' later' }, c.size ? formatPercent(n, c.size) : '–');
      })) })));
  }

  function renderRetention(d) {
    const weeks = (d.weeks || []).filter((c) => c.size);
    const month = d.month && d.month.size ? [d.month] : [];
    const wrap = (t) => (t ? h('div', { class: 'scroll', tabindex: '0', role: 'region',
      'aria-label': t.querySelector('caption').textContent }, t) : null);
    return result([
      wrap(weeks.length ? cohortTable('Weekly cohorts: back 1–12 weeks later', 'week', weeks)
        : null),
      wrap(month.length ? cohortTable('Monthly cohort: back 1–12 months later', 'month', month)
        : null)],
    'No cohorts for this month yet. The snippet reports a visitor’s first week and month when ' +
      'its cookie works.');
  }

  // ---- Start -----------------------------------------------------------------------------

  function start() {
    $('#signin-form').addEventListener('submit', onSignInSubmit);
    $('#sign-out').addEventListener('click', signOut);
    for (const b of document.querySelectorAll('#traffic .toggle button')) {
      b.addEventListener('click', () => {
        S.range = b.dataset.range;
        for (const o of document.querySelectorAll('#traffic .toggle button')) {
          o.setAttribute('aria-pressed', o === b);
        }
        drawTraffic();
      });
    }
    $('#unit-day').addEventListener('click', () => goTo('day', S.date));
    $('#unit-month').addEventListener('click', () => goTo('month', S.date));
    $('#period-prev').addEventListener('click', () =>
      goTo(S.unit, stepPeriod(S.unit, S.date, -1, S.today)));
    $('#period-next').addEventListener('click', () =>
      goTo(S.unit, stepPeriod(S.unit, S.date, 1, S.today)));
    $('#period-today').addEventListener('click', () => goTo(S.unit, S.today));
    $('#period-date').addEventListener('change', (e) => {
      if (parseDay(e.target.value)) goTo(S.unit, e.target.value);
    });
    document.addEventListener('keydown', onKey);

    // ?site=ID opens a site; #token=T is kept for it and taken out of the address bar.
    const q = new URLSearchParams(location.search);
    const raw = (q.get('site') || '').trim(), site = raw.toLowerCase();
    const fragment = new URLSearchParams(location.hash.slice(1));
    const given = fragment.get('token');
    if (location.hash) history.replaceState(null, '', location.pathname + location.search);
    if (!SITE_RE.test(site)) {
      signIn('', raw ? 'No site "' + raw + '": a site id is 1–32 lower-case letters, digits,' +
        ' "-" or "_".' : '');
      if (given) $('#signin-token').value = given;
      return;
    }
    if (given) storeSet(tokenKey(site), given);
    open(site, given || storeGet(tokenKey(site)), { date: q.get('date'), unit: q.get('unit') });
  }

  start();
})();
