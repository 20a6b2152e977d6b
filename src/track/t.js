/* tally: <script async src="https://TALLY/t.js" data-site="ID" data-tz="Area/City"></script>
   One pixel per page view; tally('track') sends another (single-page apps), tally('event',
   name, {value, props}) a custom event, and a beacon reports time on site. docs/tracking.md */
(function (w, d, nav) {
  'use strict';
  var me = d.currentScript, site = me && me.getAttribute('data-site');
  if (!site) return;
  var tz = me.getAttribute('data-tz'), base = me.src.replace(/[^\/?#]*([?#].*)?$/, '');
  var first = true, GAP = 18e5; // a visit ends after 30 minutes without a hit
  var vt = 0, sent; // the start of this page's visit (0: none), and reported since hidden?

  // tally keeps no more than this; sending less keeps every request far below URL limits.
  function cut(s, n) { return String(s).slice(0, n); }

  function pad(n) { return (n < 10 ? '0' : '') + n; }

  function enc(q) {
    var parts = [], k;
    for (k in q) if (q[k] !== undefined && q[k] !== '') parts.push(k + '=' + encodeURIComponent(q[k]));
    return parts.join('&');
  }

  // This hour as YYYYMMDDHH on the site's clock (data-tz), else on the browser's.
  function hourKey(now) {
    if (tz && w.Intl) {
      try {
        var p = {};
        new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric',
          month: '2-digit', day: '2-digit', hour: '2-digit' }).formatToParts(now)
          .forEach(function (x) { p[x.type] = x.value; });
        return p.year + p.month + p.day + (p.hour === '24' ? '00' : p.hour);
      } catch (e) { /* unknown zone: fall back to the browser's clock */ }
    }
    return '' + now.getFullYear() + pad(now.getMonth() + 1) + pad(now.getDate()) +
      pad(now.getHours());
  }

  // ISO week (YYYY-Www, of the week-year) and month (YYYY-MM) of a key starting YYYYMMDD.
  function week(k) {
    var t = new Date(Date.UTC(k.slice(0, 4), k.slice(4, 6) - 1, k.slice(6, 8))), y;
    t.setUTCDate(t.getUTCDate() + 4 - (t.getUTCDay() || 7)); // that week's Thursday
    y = t.getUTCFullYear();
    return y + '-W' + pad(Math.ceil(((t - Date.UTC(y, 0, 1)) / 864e5 + 1) / 7));
  }
  function month(k) { return k.slice(0, 4) + '-' + k.slice(4, 6); }

  // One first-party cookie, _tally=HOUR.FIRST.VT.VP.LAST.PVD.VI: the last view's hour
  // (YYYYMMDDHH), the first visit's day (YYYYMMDD, empty if unknown), then in base 36 the
  // visit's start (ms), page count, last hit or report (ms), last reported duration (ms), and
  // a random visitor id (28 base-36 digits) for the people count (vi). An old cookie, HOUR
  // alone, reads as: first visit unknown, no visit; one without VI gets one.
  function read() {
    var m = d.cookie.match(/(?:^|; )_tally=(\d{10})([.\w]*)/), v;
    if (!m) return;
    v = m[2].split('.');
    function num(i) { return /^[0-9a-z]+$/.test(v[i] || '') ? parseInt(v[i], 36) : 0; }
    return { h: m[1], f: /^\d{8}$/.test(v[1]) ? v[1] : '', vt: num(2), vp: num(3), last: num(4),
      pvd: num(5), vi: /^[0-9a-z]{16,40}$/.test(v[6] || '') ? v[6] : '' };
  }
  // 128 random bits as 28 base-36 digits (Math.random only where crypto is missing).
  function newId() {
    var c = w.crypto, a = [], s = '', i;
    if (c && c.getRandomValues) a = c.getRandomValues(new Uint32Array(4));
    for (i = 0; i < 4; i++) {
      s += ('000000' + (a[i] !== undefined ? a[i] : Math.random() * 4294967296 >>> 0)
        .toString(36)).slice(-7);
    }
    return s;
  }
  function write(c) {
    var val = '_tally=' + [c.h, c.f].concat([c.vt, c.vp, c.last, c.pvd].map(function (x) {
      return x.toString(36); }), [c.vi]).join('.');
    d.cookie = val + '; max-age=63072000; path=/; SameSite=Lax' +
      (location.protocol === 'https:' ? '; Secure' : '');
    return nav.cookieEnabled && d.cookie.indexOf(val) >= 0;
  }

  // Gaug.es's flags (new this hour, day, month, year, ever: the last view's hour is in another
  // period), the visit (vp, vt), and on a week's or month's first view the first visit's week
  // or month (cw, cm). Without cookies: flags 0, nothing else.
  function visitor(t) {
    var now = hourKey(new Date(t)), c = read(), last = c && c.h, f = c ? c.f : now.slice(0, 8);
    var same = c && c.vt && c.vp && t >= c.vt && t - c.last <= GAP, vp = same ? c.vp + 1 : 1, on;
    var vi = c && c.vi || newId();
    vt = same ? c.vt : t;
    on = write({ h: now, f: f, vt: vt, vp: vp, last: t, pvd: same ? c.pvd : 0, vi: vi });
    function fresh(n) { return on && (!last || last.slice(0, n) !== now.slice(0, n)) ? 1 : 0; }
    var r = { uh: fresh(10), ud: fresh(8), um: fresh(6), uy: fresh(4), u: on && !last ? 1 : 0 };
    if (!on) vt = 0;
    else {
      r.vi = vi;
      r.vp = vp;
      r.vt = vt;
      if (f && (!last || week(last) !== week(now))) r.cw = week(f);
      if (f && (!last || r.um)) r.cm = month(f);
    }
    return r;
  }

  // People per page (pp): the pages this browser viewed this month, each with the last day it
  // was viewed on (same clock as HOUR), in localStorage: _tally_pp = YYYYMM|,h:DD,h:DD,… where
  // h is a 32-bit hash (FNV-1a) of the page's path and query without utm_ parameters, base 36.
  // 2: first view of the page this month (so also today); 1: first today; else no flag. At
  // most 1,000 pages a month: a page past them gets no flag (its views count, its visitor
  // not). No flag either when the storage cannot be read or written.
  function pageFlag(url, now) {
    var a = d.createElement('a'), m = now.slice(0, 6), dd = now.slice(6, 8), h, s, i, v, at;
    a.href = url;
    s = a.pathname.replace(/^\/?/, '/') + a.search.replace(/[?&]utm_[^&]*/g, '').replace(/^&/, '?');
    for (i = 0, h = 0x811c9dc5; i < s.length; i++) { // FNV-1a: × 16777619 in shifts, exact
      h ^= s.charCodeAt(i);
      h = (h + (h << 1) + (h << 4) + (h << 7) + (h << 8) + (h << 24)) >>> 0;
    }
    h = ',' + h.toString(36) + ':';
    try {
      v = w.localStorage.getItem('_tally_pp') || '';
      if (v.slice(0, 8) !== m + '|,') v = m + '|,'; // another month's, or damaged
      at = v.indexOf(h);
      i = at < 0 ? '' : v.substr(at + h.length, 2); // the day it was last viewed
      if (i === dd || (!i && v.split(',').length > 1001)) return;
      w.localStorage.setItem('_tally_pp', at < 0 ? v + h.slice(1) + dd + ',' :
        v.slice(0, at + h.length) + dd + v.slice(at + h.length + 2));
    } catch (e) { return; }
    return i ? 1 : 2;
  }

  function track(o) {
    o = o || {};
    var q = {
      site: site,
      url: cut(o.url || location.href.split('#')[0], 2048),
      ref: cut(o.referrer !== undefined ? o.referrer : first ? d.referrer : '', 2048),
      title: cut(o.title !== undefined ? o.title : d.title, 512),
      sw: screen.width, bw: w.innerWidth, bh: w.innerHeight
    }, t = Date.now(), v = visitor(t), k;
    first = false;
    for (k in v) q[k] = v[k];
    if (v.vp) q.pp = pageFlag(q.url, hourKey(new Date(t))); // only with cookies, as the flags
    new Image(1, 1).src = base + 't.gif?' + enc(q);
  }

  // Time on site: once per hide, report how long this page's visit has lasted (vd) and what
  // was last reported for it (pvd), and keep vd. Not once the visit ended while hidden.
  function hidden() {
    if (sent || !vt) return;
    sent = true;
    var t = Date.now(), c = read(), vd = t - vt, u;
    if (!c || c.vt !== vt || vd <= c.pvd) return;
    u = base + 'v?' + enc({ site: site, vt: vt, vd: vd, pvd: c.pvd, ts: t });
    c.pvd = vd;
    c.last = t;
    write(c);
    if (!(nav.sendBeacon && nav.sendBeacon(u))) new Image(1, 1).src = u; // empty POST, or GET
  }
  function shown() {
    var c = read();
    sent = false;
    if (!c || c.vt !== vt || Date.now() - c.last > GAP) vt = 0;
  }
  d.addEventListener('visibilitychange', function () {
    if (d.visibilityState === 'hidden') hidden(); else shown();
  });
  w.addEventListener('pagehide', hidden);
  w.addEventListener('pageshow', function (e) { if (e.persisted) shown(); });

  // A custom event, cut to tally's limits: name 200, value an integer (default 1), the first 5
  // props, keys cut to 100, values as strings to 200. POSTed as JSON, else a GET.
  function event(name, o) {
    if (name == null || name === '') return;
    o = o || {};
    var v = o.value, ps = o.props, p = {}, t = Date.now(), url = base + 'e', c = read(), body, k;
    var vi = c && c.vi || undefined;
    v = typeof v === 'number' && isFinite(v) ? Math.round(v) : 1;
    name = cut(name, 200);
    if (ps && typeof ps === 'object') {
      Object.keys(ps).slice(0, 5).forEach(function (k) { p[cut(k, 100)] = cut(ps[k], 200); });
    }
    body = JSON.stringify({ site: site, name: name, value: v, props: p, ts: t, vi: vi });
    if (nav.sendBeacon && nav.sendBeacon(url, body)) return;
    if (w.fetch) {
      fetch(url, { method: 'POST', body: body, keepalive: true })['catch'](function () {});
      return;
    }
    url += '?' + enc({ site: site, name: name, value: v, vi: vi });
    for (k in p) url += '&p.' + encodeURIComponent(k) + '=' + encodeURIComponent(p[k]);
    new Image(1, 1).src = url + '&ts=' + t;
  }

  var queued = (w.tally && w.tally.q) || [];
  w.tally = function (command, a, b) {
    if (command === 'track') track(a);
    else if (command === 'event') event(a, b);
  };

  function start() {
    if (me.getAttribute('data-auto') !== 'false') track();
    for (var i = 0; i < queued.length; i++) w.tally.apply(w, queued[i]);
  }
  if (d.visibilityState === 'prerender') {
    d.addEventListener('visibilitychange', function once() {
      if (d.visibilityState === 'prerender') return;
      d.removeEventListener('visibilitychange', once);
      start();
    });
  } else {
    start();
  }
})(window, document, navigator);
