/* ranges.js: the range picker's presets as calendar ranges, the period a range is compared
   with, and the range kept in the address (`range`, `from`, `to`, `compare`) so that a view can
   be shared. Pure: no DOM, no page state; days are "YYYY-MM-DD" in the site's zone, computed
   with dates.js; node imports it in test/ranges.test.mjs. */

import { addDays, addMonths, daysInMonth, pad2, parseDay } from './dates.js';

/** The longest range the API answers, in days (3 years, leap days included). */
export const MAX_DAYS = 3 * 366;

/** The presets, in the picker's order. "N days" are the N days ending today, today included. */
export const PRESETS = [
  ['today', 'Today'], ['yesterday', 'Yesterday'], ['7d', '7 days'], ['28d', '28 days'],
  ['30d', '30 days'], ['90d', '90 days'], ['month', 'This month'],
  ['last-month', 'Last month'], ['ytd', 'Year to date'], ['12m', '12 months'],
  ['all', 'All time'], ['custom', 'Custom'],
];

const N_DAYS = { '7d': 7, '28d': 28, '30d': 30, '90d': 90 };

/** Days from `from` to `to`, both included ("2026-11-01", "2026-11-30" → 30). */
export function lengthInDays(from, to) {
  return Math.round((parseDay(to) - parseDay(from)) / 86400000) + 1;
}

/** The calendar range of preset `name` on the site's `today`; `first` is the first day the
    site has data for (all time starts there, and never more than MAX_DAYS back). `null` for an
    unknown preset or for "custom", whose days the reader picks. */
export function presetRange(name, today, first) {
  if (name === 'today') return { from: today, to: today };
  if (name === 'yesterday') {
    const y = addDays(today, -1);
    return { from: y, to: y };
  }
  if (N_DAYS[name]) return { from: addDays(today, 1 - N_DAYS[name]), to: today };
  const y = +today.slice(0, 4);
  if (name === 'month') return { from: today.slice(0, 8) + '01', to: today };
  if (name === 'last-month') {
    const start = addMonths(today.slice(0, 8) + '01', -1);
    const [ly, lm] = [+start.slice(0, 4), +start.slice(5, 7)];
    return { from: start, to: ly + '-' + pad2(lm) + '-' + pad2(daysInMonth(ly, lm)) };
  }
  if (name === 'ytd') return { from: y + '-01-01', to: today };
  if (name === '12m') return { from: addDays(addMonths(today, -12), 1), to: today };
  if (name === 'all') {
    const floor = addDays(today, 1 - MAX_DAYS);
    const from = first && parseDay(first) && first <= today ? first : floor;
    return { from: from < floor ? floor : from, to: today };
  }
  return null;
}

/** The same date a year earlier; 29 February becomes 28 February. */
export function yearEarlier(day) {
  const y = +day.slice(0, 4) - 1;
  const md = day.slice(5);
  return y + '-' + (md === '02-29' ? '02-28' : md);
}

/** The period `range` is compared with: "previous" (as many days, just before) or "year"
    (the same dates a year earlier). `null` for no comparison. */
export function comparedWith(range, compare) {
  if (compare === 'previous') {
    const n = lengthInDays(range.from, range.to);
    return { from: addDays(range.from, -n), to: addDays(range.from, -1) };
  }
  if (compare === 'year') return { from: yearEarlier(range.from), to: yearEarlier(range.to) };
  return null;
}

/** Whether a from–to pair is a range the API answers: real days, in order, not after
    `today`, at most MAX_DAYS long. */
export function validRange(from, to, today) {
  return !!(parseDay(from) && parseDay(to) && from <= to && to <= today &&
    lengthInDays(from, to) <= MAX_DAYS);
}

const COMPARES = ['previous', 'year'];

/** The range an address asks for (`?range=28d&compare=previous`, or
    `?range=custom&from=…&to=…`), on `today`; a missing or unusable one is today's. */
export function rangeFromQuery(search, today, first) {
  const q = new URLSearchParams(search);
  const name = q.get('range') || 'today';
  const compare = COMPARES.includes(q.get('compare')) ? q.get('compare') : null;
  if (name === 'custom') {
    const from = q.get('from'), to = q.get('to');
    if (validRange(from, to, today)) return { name, from, to, compare };
  } else {
    const r = presetRange(name, today, first);
    if (r) return { name, ...r, compare };
  }
  return { name: 'today', ...presetRange('today', today), compare };
}

/** Writes `r` into the address's parameters `q` (a URLSearchParams), leaving the others;
    today without comparison is the default and writes nothing. */
export function rangeToQuery(r, q) {
  for (const k of ['range', 'from', 'to', 'compare']) q.delete(k);
  if (r.name !== 'today') q.set('range', r.name);
  if (r.name === 'custom') {
    q.set('from', r.from);
    q.set('to', r.to);
  }
  if (r.compare) q.set('compare', r.compare);
  return q;
}

/** The API's query for a range: `from`, `to` and, when set, `compare`. */
export function rangeParams(r) {
  const q = new URLSearchParams({ from: r.from, to: r.to });
  if (r.compare) q.set('compare', r.compare);
  return q.toString();
}
