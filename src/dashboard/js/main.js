/* main.js: the dashboard's entry, the one module app.html loads (under its hashed address;
   tally rewrites the imports between modules to theirs, see src/dashboard/assets.rs). Plain
   browser modules, no framework, no build step, nothing loaded from elsewhere: the page reads
   tally's JSON API (api/v1/sites/{id}/...) with the site's token when there is one, and its
   live stream. docs/dashboard.md describes each panel and the modules.

   It marks CSP violations for the browser test, wires the page's controls, and opens the site
   the address names (?site=ID, #token=T, &date=, &unit=). */

import { onSignInNeeded } from './api.js';
import { $ } from './dom.js';
import { parseDay } from './dates.js';
import { goTo, onKey, step } from './period.js';
import { open, onSignInSubmit, signIn, signOut } from './session.js';
import { S, SITE_RE, storeGet, storeSet, tokenKey } from './state.js';
import { drawTraffic } from './summary.js';

// The page is served with a strict Content-Security-Policy; anything it blocks marks the
// page, so the browser test (tests/browser.rs) fails on it.
document.addEventListener('securitypolicyviolation', (e) => {
  document.documentElement.setAttribute('data-csp-violation',
    e.violatedDirective + ' ' + (e.blockedURI || 'inline'));
});

function start() {
  onSignInNeeded(signIn);
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
  $('#period-prev').addEventListener('click', () => step(-1));
  $('#period-next').addEventListener('click', () => step(1));
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
