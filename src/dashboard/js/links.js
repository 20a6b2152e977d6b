/* links.js: the addresses the page makes: a site's API paths, a report's query and CSV file
   name, and where a referrer's row links to.
   Pure: no DOM, no page state; node imports it in test/links.test.mjs. Every address is
   relative, so the page also works behind a proxy that serves tally under a path. */

/** A path under the site's API: siteUrl("acme", "summary") → "api/v1/sites/acme/summary". */
export function siteUrl(site, path) {
  return 'api/v1/sites/' + encodeURIComponent(site) + (path ? '/' + path : '');
}

/** The path of a report (`{name}`) for the range shown (`{from, to}`), under the site's API:
    "reports/content?from=2026-11-02&to=2026-11-08&limit=20", with `&format=csv` for its CSV.
    `limit` is left out for reports that take none (null). */
export function reportPath(report, range, limit, format) {
  const q = new URLSearchParams({ from: range.from, to: range.to });
  if (limit) q.set('limit', limit);
  if (format) q.set('format', format);
  return 'reports/' + report.name + '?' + q.toString();
}

/** The name a report's CSV is saved as: "tally-acme-content-2026-11-02_2026-11-08.csv", one
    day's "tally-acme-content-2026-11-02.csv". */
export function csvFileName(site, report, range) {
  const period = range.from === range.to ? range.from : range.from + '_' + range.to;
  return 'tally-' + site + '-' + report.name + '-' + period + '.csv';
}

// A host as tally keeps it (lower-case, no "www.", punycode, maybe ":port"): dotted labels of
// letters, digits and inner hyphens, or a bracketed IPv6 address.
const LABEL = '[a-z0-9](?:[a-z0-9-]*[a-z0-9])?';
const HOST_RE = new RegExp('^(?:(?:' + LABEL + '\\.)+' + LABEL + '|\\[[0-9a-f:.]+\\])' +
  '(?::\\d{1,5})?$');

// A path segment keeps what RFC 3986 allows in one (unreserved, sub-delims, ":" and "@");
// anything else, "?", "#" and "%" included, is percent-encoded.
const KEEP = { '%24': '$', '%26': '&', '%2B': '+', '%2C': ',', '%3B': ';', '%3D': '=',
  '%3A': ':', '%40': '@' };
const segment = (s) => encodeURIComponent(s).replace(/%(?:24|26|2B|2C|3B|3D|3A|40)/g,
  (m) => KEEP[m]);

/** Where a referrer's row links to: tally keeps a referrer as "host" or "host/path" (no
    scheme, no query; the path decoded), so "news.ycombinator.com/item" →
    "https://news.ycombinator.com/item". Null for anything that is not a host with a dot (or an
    IPv6 address) followed by nothing or a path: "(other)", "(direct)", "localhost", a cut key
    … The scheme is always ours, so no key can make a `javascript:` or any other link. */
export function referrerHref(key) {
  if (typeof key !== 'string') return null;
  const slash = key.indexOf('/');
  const host = slash < 0 ? key : key.slice(0, slash);
  if (!HOST_RE.test(host)) return null;
  const path = slash < 0 ? '/' : key.slice(slash);
  try {
    return 'https://' + host + path.split('/').map(segment).join('/');
  } catch (e) {
    return null; // a lone surrogate cannot be encoded
  }
}
