/* format.js: how numbers, percentages, dates and tally's fixed ranges read on the page.
   Pure: no DOM, no page state; node imports it in test/format.test.mjs. Every function takes
   an optional locale (the reader's when left out), so tests can pin one. */

const numberFormats = new Map();

/** An Intl.NumberFormat, cached per locale and options. */
function numberFormat(locale, options) {
  const key = String(locale) + JSON.stringify(options || {});
  if (!numberFormats.has(key)) numberFormats.set(key, new Intl.NumberFormat(locale, options));
  return numberFormats.get(key);
}

/** A count in full, grouped for the reader's locale: 1234567 → "1,234,567". */
export function formatFull(n, locale) {
  return Number.isFinite(n) ? numberFormat(locale).format(n) : '–';
}

const UNITS = [[1e3, 'k'], [1e6, 'M'], [1e9, 'B'], [1e12, 'T']];

/** A count for a tile: full below 10,000 ("9,999"), then "12.3k", "123k", "1.2M". */
export function formatCompact(n, locale) {
  if (!Number.isFinite(n)) return '–';
  const a = Math.abs(n);
  if (a < 1e4) return formatFull(n, locale);
  let u = 0;
  while (u + 1 < UNITS.length && a >= UNITS[u + 1][0]) u++;
  const mantissa = (i) => {
    const x = a / UNITS[i][0];
    return x >= 100 ? Math.round(x) : Math.round(x * 10) / 10;
  };
  let m = mantissa(u);
  if (m >= 1000 && u + 1 < UNITS.length) m = mantissa(++u); // 999,960 is "1M", not "1000k"
  const text = numberFormat(locale, { maximumFractionDigits: 1 }).format(m);
  return (n < 0 ? '-' : '') + text + UNITS[u][1];
}

/** `part` as a whole percentage of `whole`: "40%", "<1%" for a small non-zero share. */
export function formatPercent(part, whole) {
  if (!whole) return '–';
  const p = (part / whole) * 100;
  if (p > 0 && p < 1) return '<1%';
  return Math.round(p) + '%';
}

const dateFormats = new Map();

/** A date label; date-only strings are read as UTC so that no zone shifts the day:
    "2026-11-02" or "2026-11-02T14" (an hour), "2026-11" (a month). */
export function dateLabel(iso, options, locale) {
  const key = String(locale) + JSON.stringify(options);
  if (!dateFormats.has(key)) {
    dateFormats.set(key, new Intl.DateTimeFormat(locale, Object.assign({ timeZone: 'UTC' },
      options)));
  }
  const [y, m = 1, d = 1, hh = 0] = iso.split(/[-T:]/).map(Number);
  return dateFormats.get(key).format(new Date(Date.UTC(y, m - 1, d, hh)));
}

export const SHORT_DAY = { day: 'numeric', month: 'short' };
export const LONG_DAY = { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' };
export const HOUR = { hour: '2-digit', minute: '2-digit' };
export const LONG_HOUR = { weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit',
  minute: '2-digit' };
export const FULL_DAY = { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' };
export const DAY_OF_MONTH = { weekday: 'short', day: 'numeric', month: 'short' };
export const SHORT_MONTH = { month: 'short' };
export const LONG_MONTH = { month: 'long', year: 'numeric' };

/** How a traffic series (series.js's trafficSeries) names its slots: column head, chart
    label, table label. */
export const SERIES_LABELS = {
  hour: { head: 'Hour', short: (k) => k.slice(11) + ':00', long: (k) => k.slice(11) + ':00' },
  day: { head: 'Day', short: (k) => dateLabel(k, SHORT_DAY), long: (k) => dateLabel(k, LONG_DAY) },
  month: { head: 'Month', short: (k) => dateLabel(k, SHORT_MONTH),
    long: (k) => dateLabel(k, LONG_MONTH) },
};

/** "chrome" → "Chrome". */
export function capitalise(name) {
  return name ? name[0].toUpperCase() + name.slice(1) : name;
}

/** A browser's versions, most viewed first: "120.0 (5), 119.0 (2)", the first four, then
    ", …" when there are more. tally keeps "120-0" for "120.0". */
export function formatVersions(versions, locale) {
  const list = versions || [];
  return list.slice(0, 4).map(([v, n]) => v.replace(/-/g, '.') + ' (' + formatFull(n, locale) +
    ')').join(', ') + (list.length > 4 ? ', …' : '');
}

/** One of tally's fixed size ranges by its lower bound, among `bounds`: "1280" → "1280–1439
    px"; the last bound ("2000" or "2000+"), or a key that is none, → "2000+ px". ("unknown"
    never gets here: the tables show it as such.) */
export function rangeLabel(k, bounds) {
  const i = bounds.indexOf(parseInt(k, 10));
  return i < 0 || i === bounds.length - 1 ? k.replace(/\+?$/, '+') + ' px'
    : k + '–' + (bounds[i + 1] - 1) + ' px';
}
