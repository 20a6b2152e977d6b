/* state.js: the open site's session (`S`), the tokens this browser keeps, and the few limits
   the page works by. Every module reads `S`; only session.js replaces it (setSession).
   No DOM here beyond marking the page ready. */

import { setState } from './dom.js';

/** A site id, as tally accepts one. */
export const SITE_RE = /^[a-z0-9][a-z0-9_-]{0,31}$/;
/** Live updates reload the summary at most this often. */
export const SUMMARY_EVERY_MS = 5000;
/** A stream silent this long (no keep-alive either) is reopened. */
export const STALL_MS = 75000;

/** Everything about the open site, or null. A new object per sign-in; `ctrl` aborts its
    requests, so that answers for a site no longer shown are dropped (`me !== S`). */
export let S = null;

/** Replaces the session (null: none open). */
export function setSession(session) { S = session; }

/** A fresh session for `site` with `token` (or null). */
export function newSession(site, token) {
  return { site, token, info: null, zone: 'UTC', today: null, first: null, range: null,
    summary: null, previous: null, ctrl: new AbortController(), summaryDone: false,
    liveDone: false, lastSummary: 0, summaryTimer: 0, liveTimer: 0, liveAttempts: 0,
    limits: Object.create(null), reportsGen: 0 };
}

/** Marks the page ready once both the summary and the first live event are drawn. */
export function maybeReady() {
  if (S && S.summaryDone && S.liveDone) setState('ready');
}

// The token of a site lives in localStorage (which may be unavailable: then in memory only).
export const tokenKey = (site) => 'tally.token.' + site;
export function storeGet(k) {
  try { return localStorage.getItem(k); } catch (e) { return null; }
}
export function storeSet(k, v) {
  try { localStorage.setItem(k, v); } catch (e) { /* memory only */ }
}
export function storeDel(k) {
  try { localStorage.removeItem(k); } catch (e) { /* nothing kept */ }
}
