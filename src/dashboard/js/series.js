/* series.js: counts laid out for charts and segment tables: a sparse list filled to every
   slot, segments summed over days, and the segment that holds the median.
   A traffic answer's series for a range: by hour, day or month.
   Pure: no DOM, no page state; node imports it in test/series.test.mjs. */

import { pad2 } from './dates.js';
import { isYearView } from './ranges.js';

/** Counts per slot `from`…`to` from a sparse list keyed by `key` (0 where missing; equal
    keys, such as an hour repeated on a DST day, added up). */
export function fillSeries(list, key, from, to) {
  const out = [];
  for (let k = from; k <= to; k++) out.push({ [key]: k, views: 0, people: 0 });
  for (const item of list || []) {
    const slot = out[item[key] - from];
    if (!slot) continue;
    slot.views += item.views || 0;
    slot.people += item.people || 0;
  }
  return out;
}

/** The segment (of `[name, count]` pairs, in segment order) that holds the median. */
export function medianSegment(pairs) {
  const total = pairs.reduce((s, p) => s + p[1], 0);
  if (!total) return null;
  let seen = 0;
  for (const [name, count] of pairs) {
    seen += count;
    if (seen * 2 >= total) return name;
  }
  return null;
}

/** The segments of the engagement report, in order: pages per visit, visit length. */
export const PAGE_SEGMENTS = ['1', '2', '3', '4', '5-9', '10-19', '20-49', '50+'];
export const DURATION_SEGMENTS = ['0-3s', '3-10s', '10-30s', '30-60s', '1-3m', '3-10m',
  '10-30m', '30m+'];

/** Adds up segment pairs over days, in segment order (`order`, then any other segment). */
export function sumSegments(days, field, order) {
  const m = new Map(order.map((k) => [k, 0]));
  for (const day of days) for (const [k, n] of day[field] || []) m.set(k, (m.get(k) || 0) + n);
  return [...m];
}

/** The series of a traffic answer (`data`) for range `r`: hours for a day, months for a year
    or more, else days; each item `{k, views, people}`. */
export function trafficSeries(data, r) {
  const d = data || {};
  if (r.from === r.to) {
    return { unit: 'hour', items: fillSeries(d.hours, 'hour', 0, 23).map((x) =>
      ({ k: r.from + 'T' + pad2(x.hour), views: x.views, people: x.people })) };
  }
  if (isYearView(r)) {
    return { unit: 'month', items: (d.months || []).map((x) =>
      ({ k: x.month, views: x.views, people: x.people })) };
  }
  return { unit: 'day', items: (d.days || []).map((x) =>
    ({ k: x.day, views: x.views, people: x.people })) };
}
