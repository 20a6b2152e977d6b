/* dates.js: calendar arithmetic on "YYYY-MM-DD" strings, and the periods of the report bar.
   Pure: no DOM, no page state, no time zone (a site's days are calendar days, computed in UTC
   so that the browser's zone never shifts one); node imports it in test/dates.test.mjs. */

const DAY_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** 7 → "07". */
export const pad2 = (n) => String(n).padStart(2, '0');

/** "YYYY-MM-DD" → a Date at UTC midnight, or null. Calendar days only: no zone involved. */
export function parseDay(s) {
  const m = DAY_RE.exec(s || '');
  if (!m) return null;
  const d = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3]));
  return d.getUTCMonth() === +m[2] - 1 && d.getUTCDate() === +m[3] ? d : null;
}

const dayString = (d) =>
  d.getUTCFullYear() + '-' + pad2(d.getUTCMonth() + 1) + '-' + pad2(d.getUTCDate());

/** The days of a month; `month` is 1-based (2026, 2 → 28). */
export function daysInMonth(year, month) {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** The day `n` days after `day` ("2026-03-01", -1 → "2026-02-28"). */
export function addDays(day, n) {
  const d = parseDay(day);
  d.setUTCDate(d.getUTCDate() + n);
  return dayString(d);
}

/** The same day of the month `n` months later, clamped to the month's length
    ("2026-01-31", 1 → "2026-02-28"). */
export function addMonths(day, n) {
  const d = parseDay(day);
  const total = d.getUTCFullYear() * 12 + d.getUTCMonth() + n;
  const y = Math.floor(total / 12), m = total - y * 12 + 1;
  return y + '-' + pad2(m) + '-' + pad2(Math.min(d.getUTCDate(), daysInMonth(y, m)));
}

/** "2026-11-02" → "2026-11". */
export const monthOf = (day) => day.slice(0, 7);

/** The period `dir` steps (±1) from `date` for a unit ("day" or "month"), never after
    `today`. Days compare as strings: same fixed format. */
export function stepPeriod(unit, date, dir, today) {
  const next = unit === 'month' ? addMonths(date, dir) : addDays(date, dir);
  return next > today ? today : next;
}

/** Whether there is a period after the one of `date` that is not after `today`. */
export function hasNext(unit, date, today) {
  return unit === 'month' ? monthOf(date) < monthOf(today) : date < today;
}

/** The `date` parameter of a report: the day, or its month for per-month reports. */
export function periodParam(unit, date, dayCapable) {
  return unit === 'day' && dayCapable ? date : monthOf(date);
}
