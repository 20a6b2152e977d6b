/* links.js: the addresses the page makes: a site's API paths, a report's query and CSV file
   name.
   Pure: no DOM, no page state; node imports it in test/links.test.mjs. Every address is
   relative, so the page also works behind a proxy that serves tally under a path. */

import { periodParam } from './dates.js';

/** A path under the site's API: siteUrl("acme", "summary") → "api/v1/sites/acme/summary". */
export function siteUrl(site, path) {
  return 'api/v1/sites/' + encodeURIComponent(site) + (path ? '/' + path : '');
}

/** The path of a report (`{name, day}`, `day`: also kept per day) for the period shown, under
    the site's API: "reports/content?date=2026-11-02&limit=20", with `&format=csv` for its
    CSV. `limit` is left out for reports that take none (null). */
export function reportPath(report, unit, date, limit, format) {
  const q = new URLSearchParams({ date: periodParam(unit, date, report.day) });
  if (limit) q.set('limit', limit);
  if (format) q.set('format', format);
  return 'reports/' + report.name + '?' + q.toString();
}

/** The name a report's CSV is saved as: "tally-acme-content-2026-11-02.csv". */
export function csvFileName(site, report, period) {
  return 'tally-' + site + '-' + report.name + '-' + period + '.csv';
}
