/* period.js: the period bar of the reports (day or month, previous, next, today, a date), its
   keys, and the period kept in the address (`date`, `unit`) so that a reload or a shared link
   shows it again. Moving to another period reloads the reports. */

import { $ } from './dom.js';
import { hasNext, monthOf, stepPeriod } from './dates.js';
import { FULL_DAY, LONG_MONTH, dateLabel } from './format.js';
import { loadReports } from './reports.js';
import { S } from './state.js';

/** Shows the session's period in the bar, the note and the address. */
export function syncPeriodControls() {
  const day = S.unit === 'day';
  $('#unit-day').setAttribute('aria-pressed', day);
  $('#unit-month').setAttribute('aria-pressed', !day);
  const label = $('#period-label');
  label.dataset.unit = S.unit;
  label.dataset.date = day ? S.date : monthOf(S.date);
  label.textContent = day ? dateLabel(S.date, FULL_DAY) : dateLabel(monthOf(S.date), LONG_MONTH);
  $('#period-prev').setAttribute('aria-label', day ? 'Previous day' : 'Previous month');
  $('#period-next').setAttribute('aria-label', day ? 'Next day' : 'Next month');
  $('#period-next').disabled = !hasNext(S.unit, S.date, S.today);
  $('#period-today').disabled = day ? S.date === S.today : monthOf(S.date) === monthOf(S.today);
  const input = $('#period-date');
  input.value = S.date;
  input.max = S.today;
  $('#reports-note').textContent = day ? 'Search, campaigns, technology, sizes, countries ' +
    'and retention are kept per month: they show ' + dateLabel(monthOf(S.date), LONG_MONTH) +
    '.' : '';
  // The period is part of the address, so that a reload or a shared link shows it again.
  const q = new URLSearchParams(location.search);
  q.set('site', S.site);
  if (S.date === S.today) q.delete('date'); else q.set('date', S.date);
  if (day) q.delete('unit'); else q.set('unit', 'month');
  history.replaceState(null, '', '?' + q.toString());
}

/** Shows `unit` ("day", "month") around `date` (never after today). */
export function goTo(unit, date) {
  if (!S || !S.today) return;
  const changed = unit !== S.unit || date !== S.date;
  S.unit = unit;
  S.date = date > S.today ? S.today : date;
  syncPeriodControls();
  if (changed) loadReports();
}

/** The previous (-1) or next (1) period. */
export const step = (dir) => goTo(S.unit, stepPeriod(S.unit, S.date, dir, S.today));

/** p, n, t, d, m when no text field has the focus. */
export function onKey(e) {
  if (!S || !S.today || $('#dash').hidden || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.target.closest('input, textarea, select, [contenteditable]')) return;
  const act = { p: () => step(-1), n: () => step(1),
    t: () => goTo(S.unit, S.today), d: () => goTo('day', S.date),
    m: () => goTo('month', S.date) }[e.key];
  if (act) { e.preventDefault(); act(); }
}
