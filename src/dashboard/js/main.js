/* main.js: the dashboard's entry, the one module app.html loads (under its hashed address;
   tally rewrites the imports between modules to theirs, see src/dashboard/assets.rs). Plain
   browser modules, no framework, no build step, nothing loaded from elsewhere: the page reads
   tally's JSON API (api/v1/sites/{id}/...) with the site's token when there is one, and its
   live stream. docs/dashboard.md describes each panel and the modules.

   It marks CSP violations for the browser test, wires the page's controls, and opens the site
   the address names (?site=ID, #token=T, and the range: &range=, &from=, &to=, &compare=, or
   older links' &date=, &unit=). */

import { onSignInNeeded } from './api.js';
import { $ } from './dom.js';
import { buildPicker, followToday, onCompare, onCustomDays, onKey, onPreset, step }
  from './period.js';
import { open, onSignInSubmit, signIn, signOut } from './session.js';
import { SITE_RE, storeGet, storeSet, tokenKey } from './state.js';
import { onTodayMoved } from './summary.js';

// The page is served with a strict Content-Security-Policy; anything it blocks marks the
// page, so the browser test (tests/browser.rs) fails on it.
document.addEventListener('securitypolicyviolation', (e) => {
  document.documentElement.setAttribute('data-csp-violation',
    e.violatedDirective + ' ' + (e.blockedURI || 'inline'));
});

function start() {
  onSignInNeeded(signIn);
  onTodayMoved(followToday);
  $('#signin-form').addEventListener('submit', onSignInSubmit);
  $('#sign-out').addEventListener('click', signOut);
  buildPicker();
  $('#range-preset').addEventListener('change', (e) => onPreset(e.target.value));
  $('#range-compare').addEventListener('change', (e) => onCompare(e.target.value));
  $('#range-from').addEventListener('change', onCustomDays);
  $('#range-to').addEventListener('change', onCustomDays);
  $('#period-prev').addEventListener('click', () => step(-1));
  $('#period-next').addEventListener('click', () => step(1));
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
  open(site, given || storeGet(tokenKey(site)), location.search);
}

start();
