/* period.js: the range picker (a preset, a custom from–to, a comparison, previous and next),
   its keys, and the range kept in the address (ranges.js's `range`, `from`, `to`, `compare`)
   so that a reload or a shared link shows it again. Choosing another range reloads the
   summary and the reports; the live panel is not ranged. */

import { $, h } from './dom.js';
import { LONG_DAY, dateLabel } from './format.js';
import { PRESETS, customRange, presetRange, rangeToQuery, stepRange, validRange }
  from './ranges.js';
import { loadReports } from './reports.js';
import { S } from './state.js';
import { loadSummary } from './summary.js';

/** "Tue, 3 Mar 2026", or "Tue, 3 Mar 2026 – Mon, 9 Mar 2026". */
export function rangeText(r) {
  const a = dateLabel(r.from, LONG_DAY);
  return r.from === r.to ? a : a + ' – ' + dateLabel(r.to, LONG_DAY);
}

/** The picker's choices, once per page. */
export function buildPicker() {
  $('#range-preset').replaceChildren(...PRESETS.map(([value, label]) =>
    h('option', { value }, label)));
}

/** Shows the session's range in the picker, the label and the address. */
export function syncPeriodControls() {
  const r = S.range;
  $('#range-preset').value = r.name;
  $('#range-compare').value = r.compare || '';
  $('#range-custom').hidden = r.name !== 'custom';
  for (const id of ['#range-from', '#range-to']) $(id).max = S.today;
  $('#range-from').value = r.from;
  $('#range-to').value = r.to;
  const label = $('#period-label');
  label.dataset.range = r.name;
  label.dataset.compare = r.compare || '';
  label.dataset.from = r.from;
  label.dataset.to = r.to;
  label.textContent = rangeText(r);
  $('#period-prev').disabled = !stepRange(r, -1, S.today);
  $('#period-next').disabled = !stepRange(r, 1, S.today);
  const q = new URLSearchParams(location.search);
  q.set('site', S.site);
  history.replaceState(null, '', '?' + rangeToQuery(r, q).toString());
}

/** Shows range `r` ({name, from, to, compare}) everywhere. */
export function goTo(r) {
  if (!S || !S.today || !r) return;
  const same = S.range && r.from === S.range.from && r.to === S.range.to &&
    r.compare === S.range.compare;
  S.range = r;
  syncPeriodControls();
  if (!same) { loadSummary(); loadReports(); }
}

/** The preset chosen in the picker; "custom" keeps the days shown until others are picked. */
export function onPreset(name) {
  const c = S.range.compare;
  if (name === 'custom') {
    S.range = { ...S.range, name: 'custom' };
    syncPeriodControls();
    $('#range-from').focus();
    return;
  }
  goTo({ name, ...presetRange(name, S.today, S.first), compare: c });
}

/** A custom day picked: applied when from–to is a range the API answers. */
export function onCustomDays() {
  const from = $('#range-from').value, to = $('#range-to').value;
  if (validRange(from, to, S.today)) {
    const r = customRange(from, to, S.today, S.range.compare);
    goTo({ ...r, name: 'custom' });
  }
}

/** The site's today moved on: the same preset on the new today. */
export const followToday = () => onPreset(S.range.name);

export const onCompare = (value) => goTo({ ...S.range, compare: value || null });

/** The previous (-1) or next (1) range of the same length. */
export const step = (dir) => goTo(stepRange(S.range, dir, S.today));

/** p, n: previous, next; t: today; m: this month; y: 12 months; c: compare with the previous
    period or not; when no text field has the focus. */
export function onKey(e) {
  if (!S || !S.today || $('#dash').hidden || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.target.closest('input, textarea, select, [contenteditable]')) return;
  const act = { p: () => step(-1), n: () => step(1), t: () => onPreset('today'),
    m: () => onPreset('month'), y: () => onPreset('12m'),
    c: () => onCompare(S.range.compare ? null : 'previous') }[e.key];
  if (act) { e.preventDefault(); act(); }
}
