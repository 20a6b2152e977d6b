/* summary.js: the tiles (views and people of the range, and their change against the period
   compared with) and the traffic chart, from the site's summary for the range shown; asked for
   again after live updates, at most every SUMMARY_EVERY_MS, while the range includes today.
   A day is drawn by hour, a year or more by month (bars), anything between by day; with a
   comparison, the period compared with is a faint line over the bars. When the site's today
   has moved past midnight, a preset that ends today moves on (period.js, through
   onTodayMoved). */

import { getJson, siteFailure } from './api.js';
import { drawChart } from './chart-svg.js';
import { $, h, showMessage } from './dom.js';
import { trafficSeries } from './series.js';
import { LONG_DAY, SERIES_LABELS, dateLabel, formatCompact, formatFull } from './format.js';
import { changePercent, comparedWith, lengthInDays, peopleNote, rangeParams } from './ranges.js';
import { S, SUMMARY_EVERY_MS, maybeReady } from './state.js';
import { snippetTag, table } from './tables.js';

/** A tile's number: shortened, in full in its title and `data-value`; "–" for none. */
export function setTile(id, n) {
  const el = document.getElementById(id);
  el.textContent = n == null ? '–' : formatCompact(n);
  el.title = n == null ? '' : formatFull(n);
  if (n == null) delete el.dataset.value; else el.dataset.value = n;
}

/** A tile's change against the period compared with: "▲ 12%", said in full for screen
    readers; empty without a comparison. */
function setChange(id, now, before, what) {
  const el = document.getElementById(id);
  const p = before == null ? null : changePercent(now, before);
  el.hidden = before == null;
  el.dataset.change = p == null ? '' : p;
  el.className = 'change' + (p > 0 ? ' up' : p < 0 ? ' down' : '');
  if (before == null) { el.replaceChildren(); return; }
  // From none to some is new; from none to none no change.
  const fresh = p == null && now > 0;
  const said = fresh ? 'new: no ' + what + ' in the period compared with'
    : !p ? 'no change from ' + formatFull(before)
      : (p > 0 ? 'up ' : 'down ') + Math.abs(p) + '% from ' + formatFull(before);
  const shown = fresh ? 'new' : (p > 0 ? '▲ +' : p < 0 ? '▼ −' : '±') + Math.abs(p || 0) + '%';
  el.title = said;
  el.replaceChildren(h('span', { 'aria-hidden': 'true' }, shown), h('span', { class: 'vh' },
    said));
}

/** Clears the tiles and the chart (a new site). */
export function clearSummary() {
  for (const id of ['range-views', 'range-people']) setTile(id, null);
  for (const id of ['views-change', 'people-change']) setChange(id, 0, null);
  $('#traffic-chart').replaceChildren();
}

let todayMoved = () => {};

/** Who moves the range on (`todayMoved()`) when the site's today is past the one shown. */
export function onTodayMoved(f) { todayMoved = f; }

export async function loadSummary() {
  const me = S, r = S.range;
  // A preset ending today, asked for again: is it still today on the site's clock?
  const follow = S.summary && r.name !== 'custom' && r.to === S.today;
  clearTimeout(S.summaryTimer);
  S.summaryTimer = 0;
  S.lastSummary = Date.now();
  const before = comparedWith(r, r.compare);
  let sum, prev = null, site = null;
  try {
    // The period compared with is asked for on its own for its days (the answer's `previous`
    // has its totals only).
    [sum, prev, site] = await Promise.all([getJson('summary?' + rangeParams(r)),
      before ? getJson('summary?' + rangeParams(before)) : null, follow ? getJson('') : null]);
  } catch (err) {
    if (me === S && !siteFailure(err, true)) showMessage('Summary: ' + err.message);
    return;
  }
  if (me !== S || r !== S.range) return; // another site or range meanwhile
  if (site && site.today && site.today > S.today) { // past midnight: "today" moves on
    S.today = site.today;
    todayMoved();
    return;
  }
  S.summary = sum;
  S.previous = prev;
  const d = sum; // the summary of a range: the traffic report's `data`, at the top level
  const total = d.total || {}, was = d.previous || null;
  $('#tiles').dataset.from = r.from;
  $('#tiles').dataset.to = r.to;
  setTile('range-views', total.views);
  setTile('range-people', total.people);
  setChange('views-change', total.views, was && was.views, 'views');
  setChange('people-change', total.people, was && was.people, 'people');
  const note = peopleNote(d.people_from, lengthInDays(r.from, r.to));
  $('#people-note').textContent = note;
  $('#people-note').hidden = !note;
  $('#compared-with').textContent = sum.previous_period
    ? 'Compared with ' + periodText(sum.previous_period) : '';
  drawTraffic();
  S.summaryDone = true;
  maybeReady();
}

const periodText = (p) => (p.from === p.to ? dateLabel(p.from, LONG_DAY)
  : dateLabel(p.from, LONG_DAY) + ' – ' + dateLabel(p.to, LONG_DAY));

/** Live updates ask for the summary again, at most every SUMMARY_EVERY_MS, when the range
    shown includes today. */
export function scheduleSummary() {
  if (!S || S.summaryTimer || !S.range || S.range.to !== S.today) return;
  const wait = Math.max(0, S.lastSummary + SUMMARY_EVERY_MS - Date.now());
  S.summaryTimer = setTimeout(loadSummary, wait);
}

/** The traffic chart and its table for the range shown. */
export function drawTraffic() {
  if (!S.summary) return;
  const r = S.range;
  const t = trafficSeries(S.summary, r);
  const before = S.previous ? trafficSeries(S.previous, comparedWith(r, r.compare)) : null;
  const items = t.items, l = SERIES_LABELS[t.unit];
  const box = $('#traffic-chart');
  box.dataset.unit = t.unit;
  box.dataset.from = r.from;
  box.dataset.to = r.to;
  $('#traffic-what').textContent = (t.unit === 'hour' ? 'by hour, ' : t.unit === 'month'
    ? 'by month, ' : 'by day, ') + periodText(r);
  $('#legend-previous').hidden = !before;
  drawChart(box, {
    views: items.map((x) => x.views), people: items.map((x) => x.people),
    previous: before ? before.items.slice(0, items.length).map((x) => x.views) : null,
    short: items.map((x) => l.short(x.k)), long: items.map((x) => l.long(x.k)),
    label: 'Views and people by ' + t.unit + ', ' + periodText(r) +
      (before ? ', with the views of the period compared with as a faint line' : ''),
  });
  const cols = [l.head, 'Views', 'People'].concat(before ? ['Views before'] : []);
  $('#traffic-table').replaceChildren(table(null, cols,
    items.map((x, i) => ({ key: x.k, views: x.views, cells: [l.long(x.k), x.views, x.people]
      .concat(before ? [before.items[i] ? before.items[i].views : '–'] : []) })).reverse()));
  const empty = (S.summary.total || {}).views === 0;
  const hint = $('#traffic-empty');
  if (hint) hint.remove();
  if (empty) {
    box.before(h('p', { id: 'traffic-empty', class: 'empty' },
      'No views in this range. If the site has none at all yet, add the snippet to its pages: ',
      snippetTag()));
  }
}
