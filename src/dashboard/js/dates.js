/* dates.js: calendar arithmetic on "YYYY-MM-DD" strings (ranges.js builds the picker's
   ranges with it).
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
