/* The --demo page's script (demo.html): shows the demo site's counters, re-read every second
   from /demo/stats. Loaded in the head, before anything else, so it also sees any
   Content-Security-Policy violation of the page. */
(function () {
  // A blocked script, style or request marks the page, for the browser test to see.
  document.addEventListener('securitypolicyviolation', function (e) {
    document.documentElement.setAttribute('data-csp-violation',
      e.violatedDirective + ' ' + (e.blockedURI || 'inline'));
  });
  var fmt = new Intl.NumberFormat();
  function set(id, text) { document.getElementById(id).textContent = text; }
  function people(c) { return fmt.format(c.people) + (c.people === 1 ? ' person' : ' people'); }
  function rows(id, list) {
    var body = document.getElementById(id);
    body.replaceChildren.apply(body, list.map(function (cells) {
      var tr = document.createElement('tr');
      cells.forEach(function (c, i) {
        var td = document.createElement('td');
        td.textContent = typeof c === 'number' ? fmt.format(c) : c;
        if (i === cells.length - 1) td.className = 'n';
        tr.appendChild(td);
      });
      return tr;
    }));
  }
  function refresh() {
    fetch('/demo/stats', { cache: 'no-store' }).then(function (r) { return r.json(); }).then(function (s) {
      [['hour', s.this_hour], ['today', s.today], ['month', s.this_month], ['year', s.this_year]]
        .forEach(function (p) { set(p[0], fmt.format(p[1].views)); set(p[0] + '-u', people(p[1])); });
      var b = [];
      s.technology.browsers.forEach(function (x) {
        x.versions.forEach(function (v) { b.push([x.name, v[0].replace('-', '.'), v[1]]); });
      });
      rows('browsers', b);
      rows('platforms', s.technology.platforms);
      rows('devices', s.technology.devices);
      set('cmds', 'tally doc ' + s.traffic_collection + ' ' + s.traffic_id + '\n' +
        'tally doc ' + s.technology_collection + ' ' + s.traffic_id);
    }).catch(function () {});
  }
  document.addEventListener('DOMContentLoaded', function () {
    refresh();
    setInterval(refresh, 1000);
  });
})();
