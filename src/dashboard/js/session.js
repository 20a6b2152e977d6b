/* session.js: signing in and out, and opening a site: the sign-in form, the token kept per
   site, reading the site, then starting its summary, reports and live stream. Opening
   another site (or signing out) aborts everything the last one had running. */

import { getJson, siteFailure } from './api.js';
import { $, setState, showMessage } from './dom.js';
import { connectLive } from './live.js';
import { syncPeriodControls } from './period.js';
import { rangeFromQuery } from './ranges.js';
import { buildReportCards, loadReports } from './reports.js';
import { S, SITE_RE, newSession, setSession, storeDel, storeSet, tokenKey } from './state.js';
import { clearSummary, loadSummary } from './summary.js';

/** Shows the sign-in form (site id prefilled) and stops whatever was running. */
export function signIn(site, message) {
  if (S) { S.ctrl.abort(); clearTimeout(S.summaryTimer); clearTimeout(S.liveTimer); }
  setSession(null);
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

export function onSignInSubmit(e) {
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
  open(site, token || null, '');
}

export function signOut() {
  const site = S && S.site;
  if (site) storeDel(tokenKey(site));
  signIn(site, 'Signed out. The token is no longer kept in this browser.');
}

/** Opens `site` with `token` (or none), on the range the address's `search` asks for
    (ranges.js's rangeFromQuery; today's when none, or not a usable one). */
export async function open(site, token, search) {
  if (S) S.ctrl.abort();
  setSession(newSession(site, token || null));
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
  S.first = info.first_day || null;
  S.range = rangeFromQuery(search, S.today, S.first);

  $('#signin').hidden = true;
  $('#site-name').textContent = info.name || info.id;
  document.title = (info.name || info.id) + ' · tally';
  $('#signed-in-site').textContent = info.id;
  $('#site-zone').textContent = S.zone;
  $('#site-public').hidden = !info.public;
  $('#site-meta').hidden = false;
  $('#sign-out').hidden = false;
  $('#dash').hidden = false;
  clearSummary();
  $('#live-pages').replaceChildren();
  buildReportCards();
  syncPeriodControls();
  loadSummary();
  loadReports();
  connectLive();
}
