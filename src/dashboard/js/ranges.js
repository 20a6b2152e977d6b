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

/** A custom range, named for a preset when it is one on `today` ("this month", "today"). */
export function customRange(from, to, today, compare) {
  for (const name of ['today', 'yesterday', '7d', '28d', '30d', '90d', 'month', 'last-month',
    'ytd', '12m']) {
    const r = presetRange(name, today);
    if (r.from === from && r.to === to) return { name, from, to, compare: compare || null };
  }
  return { name: 'custom', from, to, compare: compare || null };
}

/** The range of the links from before the picker: `date=YYYY-MM-DD` (a day), with
    `unit=month` its month, `date=YYYY-MM` a month, `date=YYYY` a year (up to `today`). Null
    when `date` is none of these or is after today. */
export function legacyRange(date, unit, today) {
  let from, to;
  if (/^\d{4}$/.test(date || '')) {
    [from, to] = [date + '-01-01', date + '-12-31'];
  } else if (/^\d{4}-\d{2}$/.test(date || '') || (unit === 'month' && parseDay(date))) {
    const [y, m] = [+date.slice(0, 4), +date.slice(5, 7)];
    [from, to] = [date.slice(0, 7) + '-01', date.slice(0, 7) + '-' + pad2(daysInMonth(y, m))];
  } else if (parseDay(date)) {
    [from, to] = [date, date];
  } else {
    return null;
  }
  if (to > today) to = today;
  return validRange(from, to, today) ? customRange(from, to, today, null) : null;
}

/** Whether `from`…`to` is whole calendar months (1 March–30 April). */
function wholeMonths(from, to) {
  const [y, m] = [+to.slice(0, 4), +to.slice(5, 7)];
  return from.slice(8) === '01' && +to.slice(8) === daysInMonth(y, m);
}

/** The range `dir` (±1) steps from `r`: whole months (this month and last month included)
    by as many months, anything else by its length in days; never past `today` (a step that
    would end after it ends today, and a range already ending today has no next). Null when
    there is no such range. */
export function stepRange(r, dir, today) {
  if (dir > 0 && r.to >= today) return null;
  let from, to;
  const monthStart = r.from.slice(8) === '01';
  const thisMonth = r.name === 'month' || (monthStart && r.to === today &&
    r.from.slice(0, 7) === today.slice(0, 7));
  if (monthStart && (thisMonth || wholeMonths(r.from, r.to))) {
    const months = (+r.to.slice(0, 4) - +r.from.slice(0, 4)) * 12 +
      (+r.to.slice(5, 7) - +r.from.slice(5, 7)) + 1;
    from = addMonths(r.from, dir * months);
    const end = addMonths(from, months - 1);
    to = end.slice(0, 8) + pad2(daysInMonth(+end.slice(0, 4), +end.slice(5, 7)));
  } else {
    const n = lengthInDays(r.from, r.to);
    [from, to] = [addDays(r.from, dir * n), addDays(r.to, dir * n)];
  }
  if (to > today) to = today;
  if (from > to || !validRange(from, to, today)) return null;
  return customRange(from, to, today, r.compare);
}

/** Whether a range is shown as a year: months as bars (a year or more). */
export const isYearView = (r) => lengthInDays(r.from, r.to) >= 365;

/** The change from `before` to `now` as a whole percentage (12, -5), or null when there is
    nothing to compare with (no earlier figure, or it was 0). */
export function changePercent(now, before) {
  if (before == null || now == null || before === 0) return null;
  return Math.round(((now - before) / before) * 100);
}

/** The range an address asks for (`?range=28d&compare=previous`, or
    `?range=custom&from=…&to=…`; older links' `date=`/`unit=` as legacyRange reads them), on
    `today`; a missing or unusable one is today's. */
export function rangeFromQuery(search, today, first) {
  const q = new URLSearchParams(search);
  const compare = COMPARES.includes(q.get('compare')) ? q.get('compare') : null;
  if (!q.get('range') && q.get('date')) {
    const old = legacyRange(q.get('date'), q.get('unit'), today);
    if (old) return { ...old, compare };
  }
  const name = q.get('range') || 'today';
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
  for (const k of ['range', 'from', 'to', 'compare', 'date', 'unit']) q.delete(k);
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

/** What the People tile says under its figure, from the answer's `people_from` over a range
    of `days` days: nothing for one day; with the sketches, that each person counts once (an
    estimate: standard error 1.6%); otherwise how the figure was added up. */
export function peopleNote(from, days) {
  if (days <= 1 || !from) return '';
  if (from === 'sketches') {
    return 'each person counted once over the range (an estimate, typically within 1.6%)';
  }
  if (from === 'flags') {
    return 'each day’s or month’s people, added up (from before people were counted once ' +
      'over a range): someone who came in two months counts twice';
  }
  return 'partly from before people were counted once over a range: those days’ or ' +
    'months’ people are added up';
}
