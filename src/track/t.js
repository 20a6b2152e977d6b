/* tally: <script async src="https://TALLY/t.js" data-site="ID" data-tz="Area/City"></script>
   Sends one pixel per page view; tally('track') sends another (single-page apps).
   See docs/tracking.md. */
(function (w, d) {
  'use strict';
  var me = d.currentScript, site = me && me.getAttribute('data-site');
  if (!site) return;
  var tz = me.getAttribute('data-tz'), gif = me.src.replace(/[^\/?#]*([?#].*)?$/, 't.gif');
  var first = true, NAME = '_tally';

  // tally keeps no more than this; sending less keeps every request far below URL limits.
  function cut(s, n) { return String(s).slice(0, n); }

  function pad(n) { return (n < 10 ? '0' : '') + n; }

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

  // Gaug.es's flags: is this visitor new this hour, day, month, year, ever? One first-party
  // cookie keeps the hour of the last view; a flag is 1 when that hour is in another period.
  // Without cookies every flag is 0.
  function flags() {
    var now = hourKey(new Date()), m = d.cookie.match(/(?:^|; )_tally=(\d{10})/);
    var last = m && m[1];
    d.cookie = NAME + '=' + now + '; max-age=63072000; path=/; SameSite=Lax' +
      (location.protocol === 'https:' ? '; Secure' : '');
    var on = navigator.cookieEnabled && d.cookie.indexOf(NAME + '=' + now) >= 0;
    function fresh(n) { return on && (!last || last.slice(0, n) !== now.slice(0, n)) ? 1 : 0; }
    return { uh: fresh(10), ud: fresh(8), um: fresh(6), uy: fresh(4), u: on && !last ? 1 : 0 };
  }

  function track(o) {
    o = o || {};
    var q = {
      site: site,
      url: cut(o.url || location.href.split('#')[0], 2048),
      ref: cut(o.referrer !== undefined ? o.referrer : first ? d.referrer : '', 2048),
      title: cut(o.title !== undefined ? o.title : d.title, 512),
      sw: screen.width, bw: w.innerWidth, bh: w.innerHeight
    }, f = flags(), parts = [], k;
    first = false;
    for (k in f) q[k] = f[k];
    for (k in q) if (q[k] !== undefined && q[k] !== '') parts.push(k + '=' + encodeURIComponent(q[k]));
    new Image(1, 1).src = gif + '?' + parts.join('&');
  }

  var queued = (w.tally && w.tally.q) || [];
  w.tally = function (command, options) { if (command === 'track') track(options); };

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
})(window, document);
