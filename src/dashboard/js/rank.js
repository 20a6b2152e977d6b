/* rank.js: the rows of the report tables before they are drawn: ranked lists with their
   `(other)` row, name–count pairs with their shares, size ranges in order.
   Pure: no DOM, no page state; node imports it in test/rank.test.mjs. tables.js draws them. */

import { formatPercent } from './format.js';

/** What `(other)` is called on the page: views of names a full month did not itemise. */
export const OTHER = 'other (not itemised)';

const OTHER_KEYS = new Set(['(other)', 'other']);

/** Whether a name is tally's `(other)` (or a fixed vocabulary's `other`). */
export const isOther = (name) => OTHER_KEYS.has(name);

/** Whether a ranked list counts people too (pages: the API gives it `other_people`). */
export const countsPeople = (ranked) => !!ranked && ranked.other_people != null;

/** A ranked list (`{entries, other}`, largest first) as rows `{key, views, share, entry}`,
    then, when some views were not itemised, `{key: "(other)", views, share, other: true}`
    last. `share` is the whole percentage of the largest row, for the bar behind the name.
    A list that counts people (countsPeople) gives each row its `people` too, 0 if absent. */
export function rankedRows(ranked) {
  const entries = (ranked && ranked.entries) || [];
  const other = (ranked && ranked.other) || 0;
  const people = countsPeople(ranked);
  const top = Math.max(1, ...entries.map((e) => e.views), other);
  const rows = entries.map((e) => ({
    key: e.key, views: e.views, share: Math.round((e.views / top) * 100), entry: e }));
  if (other) {
    rows.push({ key: '(other)', views: other, share: Math.round((other / top) * 100),
      other: true });
  }
  if (people) {
    rows.forEach((r) => { r.people = (r.other ? ranked.other_people : r.entry.people) || 0; });
  }
  return rows;
}

/** Whether a ranked list came back as long as asked for (`limit`): there may be more. */
export const isFull = (ranked, limit) => !!ranked && !!limit && ranked.entries.length >= limit;

/** Name–count pairs (`[["chrome", 5]]`, in the API's order) as rows `{key, views, share,
    percent, other}`: `share` of the largest, `percent` of all. None when all are 0. */
export function pairRows(pairs) {
  const list = pairs || [];
  const total = list.reduce((sum, p) => sum + p[1], 0);
  if (!total) return [];
  const top = Math.max(...list.map((p) => p[1]));
  return list.map(([name, n]) => ({ key: name, views: n, share: Math.round((n / top) * 100),
    percent: formatPercent(n, total), other: isOther(name) }));
}

/** Range pairs (`[["1280", 3], ["unknown", 1]]`) sorted by their lower bound, "unknown"
    last. */
export function sortRanges(pairs) {
  const low = (k) => (k === 'unknown' ? Infinity : parseInt(k, 10));
  return (pairs || []).slice().sort((a, b) => low(a[0]) - low(b[0]));
}
