/* render-audience.js: the report panels about the visitors: visits (engagement), technology,
   screen and window sizes, countries and retention. Each renderer takes the API's `data` and
   the period shown (`ctx`: the range asked, the period answered) and returns tables.js's
   result. Browser and platform keys are shown by their names (names.js). */

import { h } from './dom.js';
import { DAY_OF_MONTH, dateLabel, formatFull, formatPercent, formatVersions,
  rangeLabel } from './format.js';
import { browserName, deviceName, platformName } from './names.js';
import { sortRanges } from './rank.js';
import { DURATION_SEGMENTS, PAGE_SEGMENTS, medianSegment, sumSegments } from './series.js';
import { nameCell, pairsTable, result, table } from './tables.js';

export function renderEngagement(d, ctx) {
  // A range's days are keyed by date ("2026-10-05"), in order as strings.
  const entries = Object.entries(d.days || {}).sort((a, b) => (a[0] < b[0] ? -1 : 1));
  const days = entries.map((e) => e[1]);
  const add = (k) => days.reduce((sum, x) => sum + (x[k] || 0), 0);
  const visits = add('visits');
  if (!visits) {
    return result([], 'No visits recorded. The snippet reports visits when its cookie works; ' +
      'views sent as a bare pixel have none.');
  }
  const bounces = add('bounces');
  const pages = sumSegments(days, 'pages', PAGE_SEGMENTS);
  const durations = sumSegments(days, 'durations', DURATION_SEGMENTS);
  const mp = medianSegment(pages), md = medianSegment(durations);
  const fact = (k, v, id) => [h('dt', {}, k), h('dd', { 'data-fact': id }, v)];
  const facts = h('dl', { class: 'facts' },
    fact('Visits', formatFull(visits), 'visits'),
    fact('Bounce rate', formatPercent(bounces, visits), 'bounce-rate'),
    fact('Median pages per visit', mp || '–', 'median-pages'),
    fact('Median visit length', md || '–', 'median-duration'),
    fact('New people', formatFull(add('new')), 'new'),
    fact('Returning people', formatFull(add('returning')), 'returning'));
  const segTable = (caption, label, pairs) => table(caption, [label, 'Visits', 'Share'],
    pairs.map(([k, n]) => ({ key: k, views: n, cells: [k, n, formatPercent(n, visits)] })));
  const perDay = ctx.range.from !== ctx.range.to ? table('By day', ['Day', 'Visits',
    'Bounce rate', 'New', 'Returning'], entries.filter(([, x]) => x.visits).map(([day, x]) =>
    ({ key: day, views: x.visits, cells: [dateLabel(day, DAY_OF_MONTH), x.visits,
      formatPercent(x.bounces, x.visits), x.new, x.returning] }))) : null;
  return result([facts, segTable('Pages per visit', 'Pages', pages),
    segTable('Visit length', 'Length', durations), perDay]);
}

export function renderTechnology(d) {
  const browsers = d.browsers || [];
  const total = browsers.reduce((sum, b) => sum + b.views, 0);
  const bt = total ? table('Browsers', ['Browser', { label: 'Versions', text: true }, 'Views',
    'Share'], browsers.map((b) => ({ key: b.name, views: b.views,
    cells: [nameCell(b.name, browserName), formatVersions(b.versions), b.views,
      formatPercent(b.views, total)] })))
    : null;
  return result([bt, pairsTable('Platforms', 'Platform', d.platforms, platformName),
    pairsTable('Devices', 'Device', d.devices, deviceName)], 'No views in these months.');
}

// The lower bounds of tally's size ranges, in pixels.
const WIDTHS = [320, 480, 800, 1024, 1280, 1440, 1600, 2000];
const HEIGHTS = [480, 600, 768, 900, 1024];

/** Range pairs sorted by range ("unknown" last), named "1280–1439 px". */
function rangesTable(caption, pairs, bounds) {
  return pairsTable(caption, 'Pixels', sortRanges(pairs), (k) => rangeLabel(k, bounds));
}

export function renderResolutions(d) {
  return result([rangesTable('Screen width', d.screen_widths, WIDTHS),
    rangesTable('Browser width', d.browser_widths, WIDTHS),
    rangesTable('Browser height', d.browser_heights, HEIGHTS)], 'No views in these months.');
}

let regionNames = null;
/** A country by name in the reader's language, with its code; the code alone without
    Intl.DisplayNames. */
function countryName(code) {
  try {
    regionNames = regionNames || new Intl.DisplayNames(undefined, { type: 'region' });
    const name = regionNames.of(code);
    return name && name !== code ? [name, ' ', h('span', { class: 'muted' }, code)] : code;
  } catch (e) {
    return code; // no Intl.DisplayNames, or not a region code
  }
}

export function renderLocations(d) {
  const countries = d.countries || [];
  const table = pairsTable(null, 'Country', countries, countryName);
  const unknown = countries.some((c) => c[0] === 'unknown');
  return result([table, table && unknown ? h('p', { class: 'muted', 'data-note': 'no-country' },
    'Views from loopback or a private network have no country and count as unknown: so do ' +
    'the demo page\'s own views, opened on the machine that runs tally.') : null],
  'No views in these months, or tally runs without countries (tally serve --geoip-db none).');
}

/** A cohort table: each cell the share of the cohort seen again k weeks (months) later,
    shaded by that share. */
function cohortTable(caption, unit, cohorts) {
  const cols = ['Cohort', 'People'];
  for (let k = 1; k <= 12; k++) cols.push({ label: '+' + k, text: false });
  return table(caption, cols, cohorts.map((c) => ({
    key: c.cohort, views: c.size,
    cells: [c.cohort, c.size].concat((c.returned || []).map((n, i) => {
      const p = c.size ? n / c.size : 0;
      return h('span', { class: 'heat', 'data-returned': n,
        style: '--p:' + (n ? (0.1 + 0.6 * Math.min(1, p)).toFixed(2) : 0),
        title: formatFull(n) + ' of ' + formatFull(c.size) + ' back ' + (i + 1) + ' ' + unit +
          (i ? 's' : '') + ' later' }, c.size ? formatPercent(n, c.size) : '–');
    })) })));
}

export function renderRetention(d) {
  const weeks = (d.weeks || []).filter((c) => c.size);
  // One month's cohort (`month`), or a range's months (`months`).
  const month = (d.months || (d.month ? [d.month] : [])).filter((c) => c && c.size);
  const wrap = (t) => (t ? h('div', { class: 'scroll', tabindex: '0', role: 'region',
    'aria-label': t.querySelector('caption').textContent }, t) : null);
  return result([
    wrap(weeks.length ? cohortTable('Weekly cohorts: back 1–12 weeks later', 'week', weeks)
      : null),
    wrap(month.length ? cohortTable('Monthly cohorts: back 1–12 months later', 'month', month)
      : null)],
  'No cohorts for these months yet. The snippet reports a visitor’s first week and month when ' +
    'its cookie works.');
}
