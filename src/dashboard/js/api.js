/* api.js: talking to tally's JSON API for the open site: requests with its token, errors as
   the API words them (`{"error": {"code", "message"}}`), and what a failure means for the
   whole site. It never draws anything: a failure that needs the sign-in form goes to the
   function session.js registers with onSignInNeeded. */

import { S } from './state.js';
import { siteUrl } from './links.js';

/** A failed answer: its HTTP status (0: tally not reached), the API's code and message. */
export class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

/** A path under the open site's API. */
export const apiUrl = (path) => siteUrl(S.site, path);

/** The headers of a request: what to accept, and the token when there is one. */
export function headers(accept) {
  const hd = { Accept: accept };
  if (S.token) hd.Authorization = 'Bearer ' + S.token;
  return hd;
}

/** The `{"error": {"code", "message"}}` of a failed answer, as an ApiError. */
export async function errorOf(res) {
  let code = 'http_' + res.status, message = res.statusText || 'HTTP ' + res.status;
  try {
    const body = await res.json();
    if (body && body.error && body.error.code) code = body.error.code;
    if (body && body.error && body.error.message) message = body.error.message;
  } catch (e) { /* not JSON: keep the status */ }
  return new ApiError(res.status, code, message);
}

/** The answer to GET `path` (under the site's API), or an ApiError. */
export async function request(path, accept) {
  let res;
  try {
    res = await fetch(apiUrl(path), { headers: headers(accept), signal: S.ctrl.signal,
      cache: 'no-store' });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'Cannot reach tally (' + e.message + ').');
  }
  if (!res.ok) throw await errorOf(res);
  return res;
}

export const getJson = async (path) => (await request(path, 'application/json')).json();

let signIn = () => {};

/** Who shows the sign-in form (`signIn(site, message)`) when a failure calls for it. */
export function onSignInNeeded(f) { signIn = f; }

/** A failure that concerns the whole site: 401 asks for a token; with `siteLevel` (the
    site's own and its summary's answers), 404 means there is no such site. Returns false for
    errors a panel shows itself. */
export function siteFailure(err, siteLevel) {
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
