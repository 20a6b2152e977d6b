/* summary.js: the tiles (today, yesterday, 30 days, all time) and the traffic chart, from
   the site's summary; asked for again after live updates, at most every SUMMARY_EVERY_MS.
   When the summary's today has moved past midnight, a period that followed today moves on. */

import { getJson, siteFailure } from './api.js';
import { drawChart } from './chart-svg.js';
import { $, h, showMessage } from './dom.js';
import { HOUR, LONG_DAY, LONG_HOUR, LONG_MONTH, SHORT_DAY, SHORT_MONTH, dateLabel, formatCompact,
  formatFull } from './format.js';
import { syncPeriodControls } from './period.js';
import { loadReports } from './reports.js';
import { S, SUMMARY_EVERY_MS, maybeReady } from './state.js';
import { snippetTag, table } from './tables.js';

/** A tile's number: shortened, in full in its title and `data-value`; "–" for none. */
export function setTile(id, n) {
  const el = document.getElementById(id);
  el.textContent = n == null ? '–' : formatCompact(n);
  el.title = n == null ? '' : formatFull(n);
  if (n == null) delete el.dataset.value; else el.dataset.value = n;
}

export async function loadSummary() {
  const me = S;
  clearTimeout(S.summaryTimer);
  S.summaryTimer = 0;
  S.lastSummary = Date.now();
  let sum;
  try {
    sum = await getJson('summary');
  } catch (err) {
    if (me === S && !siteFailure(err, true)) showMessage('Summary: ' + err.message);
    return;
  }
  if (me !== S) return;
  S.summary = sum;
  if (sum.today && sum.today.date && sum.today.date !== S.today) {
    const followToday = S.date === S.today; // past midnight: "today" moves on
    S.today = sum.today.date;
    if (followToday) { S.date = S.today; syncPeriodControls(); loadReports(); }
  }
  const add = (list, k) => (list || []).reduce((s, x) => s + (x[k] || 0), 0);
  setTile('today-views', sum.today.views);
  setTile('today-people', sum.today.people);
  setTile('yesterday-views', sum.yesterday.views);
  setTile('yesterday-people', sum.yesterday.people);
  setTile('days30-views', add(sum.days, 'views'));
  setTile('days30-people', add(sum.days, 'people'));
  setTile('alltime-views', sum.all_time.views);
  setTile('alltime-people', sum.all_time.people);
  drawTraffic();
  S.summaryDone = true;
  maybeReady();
}

/** Live updates ask for the summary again, at most every SUMMARY_EVERY_MS. */
export function scheduleSummary() {
  if (!S || S.summaryTimer) return;
  const wait = Math.max(0, S.lastSummary + SUMMARY_EVERY_MS - Date.now());
  S.summaryTimer = setTimeout(loadSummary, wait);
}

/** The summary's series for the chosen range: items and how to label them. */
function trafficSeries() {
  const s = S.summary;
  if (S.range === 'hours') {
    return { items: s.hours, key: 'hour', head: 'Hour', what: 'last 24 hours by hour',
      short: (k) => dateLabel(k, HOUR), long: (k) => dateLabel(k, LONG_HOUR) };
  }
  if (S.range === 'months') {
    return { items: s.months, key: 'month', head: 'Month', what: 'last 12 months by month',
      short: (k) => dateLabel(k, SHORT_MONTH), long: (k) => dateLabel(k, LONG_MONTH) };
  }
  return { items: s.days, key: 'date', head: 'Day', what: 'last 30 days by day',
    short: (k) => dateLabel(k, SHORT_DAY), long: (k) => dateLabel(k, LONG_DAY) };
}

/** The traffic chart and its table for the chosen range (S.range). */
export function drawTraffic() {
  if (!S.summary) return;
  const t = trafficSeries();
  const items = t.items || [];
  const box = $('#traffic-chart');
  box.dataset.range = S.range;
  drawChart(box, {
    views: items.map((x) => x.views), people: items.map((x) => x.people),
    short: items.map((x) => t.short(x[t.key])), long: items.map((x) => t.long(x[t.key])),
    label: 'Views and people, ' + t.what,
  });
  $('#traffic-table').replaceChildren(table(null, [t.head, 'Views', 'People'],
    items.slice().reverse().map((x) => ({ cells: [t.long(x[t.key]), x.views, x.people] }))));
  const empty = S.summary.all_time && S.summary.all_time.views === 0;
  const hint = $('#traffic-empty');
  if (hint) hint.remove();
  if (empty) {
    box.before(h('p', { id: 'traffic-empty', class: 'empty' },
      'No views yet — add the snippet to your pages: ', snippetTag()));
  }
}
